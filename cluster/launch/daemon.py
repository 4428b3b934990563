"""The process that keeps a deployed cluster running after ``spheroseg cluster deploy`` returns.

``deploy`` starts ``python -m cluster.launch.daemon`` detached (its own session, output to a log file). The
daemon launches the cluster, records it in the state file and then serves control messages that operator
commands send through the scheduler's event log (topic :data:`CONTROL_TOPIC`): ``scale``, ``adapt`` and
``stop``. Each gets a reply on :data:`REPLY_TOPIC`. SIGTERM and SIGINT stop it too. On the way out it closes
the cluster (workers retire, jobs are cancelled) and removes the state file.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.exceptions import SpherosegError
from cluster.launch import launch
from cluster.launch.deployment import Deployment, close_client, connect
from cluster.launch.spec import ClusterSpec
from cluster.launch.state import ClusterState, clear_state, save_state

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["CONTROL_TOPIC", "REPLY_TOPIC", "ControlServer", "main", "serve"]

log = logging.getLogger(__name__)

CONTROL_TOPIC = "spheroseg-cluster-control"
REPLY_TOPIC = "spheroseg-cluster-reply"


class ControlServer:
    """Carries out control messages on a deployment and says how each went."""

    def __init__(self, deployment: Deployment, client: Client) -> None:
        self.deployment = deployment
        self.client = client
        self.stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[dict[str, Any]]] = set()

    def handle(self, event: tuple[float, Any]) -> None:
        """Event handler for :data:`CONTROL_TOPIC`; long operations run as tasks."""
        _, message = event
        if not isinstance(message, dict):
            return
        task = asyncio.ensure_future(self.run(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, message: dict[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        try:
            if op == "scale":
                n = await self.deployment.scale(int(message["n"]))
                reply = {"ok": True, "message": f"scaled to {n} workers", "n": n}
            elif op == "adapt":
                self.deployment.adapt(int(message["minimum"]), int(message["maximum"]))
                bounds = f"{message['minimum']} and {message['maximum']}"
                reply = {"ok": True, "message": f"adapting between {bounds} workers"}
            elif op == "stop":
                self.stopped.set()
                reply = {"ok": True, "message": "stopping"}
            else:
                reply = {"ok": False, "message": f"unknown operation {op!r}"}
        except (SpherosegError, ValueError, KeyError, OSError, TimeoutError) as exc:
            log.warning("control message %s failed: %s", message, exc)
            reply = {"ok": False, "message": str(exc)}
        reply["request"] = message.get("request")
        await self._reply(reply)
        return reply

    async def _reply(self, reply: dict[str, Any]) -> None:
        try:
            await self.client.log_event(REPLY_TOPIC, reply)
        except (OSError, TimeoutError) as exc:
            log.warning("could not send reply %s: %s", reply, exc)


async def serve(spec: ClusterSpec, state_path: Path, log_file: str | None = None) -> None:
    """Launch ``spec``, record it at ``state_path`` and serve control messages until told to stop."""
    deployment = await launch(spec)
    client = await connect(deployment.scheduler_address, deployment.security)
    server = ControlServer(deployment, client)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stopped.set)
    try:
        client.subscribe_topic(CONTROL_TOPIC, server.handle)  # type: ignore[no-untyped-call]
        state = ClusterState(
            scheduler_address=deployment.scheduler_address,
            spec=spec,
            pid=os.getpid(),
            dashboard_link=deployment.dashboard_link,
            log_file=log_file,
        )
        save_state(state, state_path)
        log.info("cluster running at %s (state in %s)", deployment.scheduler_address, state_path)
        await server.stopped.wait()
        log.info("stopping the cluster at %s", deployment.scheduler_address)
    finally:
        clear_state(state_path, pid=os.getpid())
        await close_client(client)
        await deployment.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.launch.daemon", description=__doc__)
    parser.add_argument("--spec", required=True, help="the ClusterSpec as JSON")
    parser.add_argument("--state", required=True, type=Path, help="the state file to write")
    parser.add_argument("--log-file", default=None, help="recorded in the state file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(ClusterSpec.from_json(args.spec), args.state, args.log_file))
    except SpherosegError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
