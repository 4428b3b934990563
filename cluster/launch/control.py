"""Operating a deployed cluster from later commands: start its daemon, find it, tell it to scale or stop.

``deploy`` starts the daemon (:mod:`cluster.launch.daemon`) detached and waits until it has recorded the
running cluster in the state file; ``scale`` and ``stop`` send it control messages through the scheduler's
event log and wait for the reply. A cluster that only points at an existing scheduler (the ``address``
backend) has no daemon: its record is written here, and ``stop`` just forgets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.exceptions import ClusterError, ClusterNotFoundError
from cluster.launch.daemon import CONTROL_TOPIC, REPLY_TOPIC
from cluster.launch.deployment import close_client, connect, security_for
from cluster.launch.spec import ClusterSpec, TlsFiles
from cluster.launch.state import (
    ClusterState,
    clear_state,
    default_state_path,
    load_state,
    process_alive,
    save_state,
)

if TYPE_CHECKING:
    from distributed import Client
    from distributed.security import Security

__all__ = ["DEPLOYED", "Target", "deploy", "resolve_target", "send_control", "stop"]

DEPLOYED = "deployed"
"""The scheduler "address" that means: the cluster recorded by ``spheroseg cluster deploy``."""


@dataclass(frozen=True)
class Target:
    """A scheduler to talk to, and the deployment record it came from (if any)."""

    address: str
    tls: TlsFiles | None = None
    state: ClusterState | None = None

    @property
    def security(self) -> Security | None:
        return security_for(self.tls)

    async def client(self, timeout: float = 10.0) -> Client:
        try:
            return await connect(self.address, self.security, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ClusterNotFoundError(f"no Dask scheduler answers at {self.address}: {exc}") from exc


def resolve_target(
    scheduler: str | None = None, tls: TlsFiles | None = None, state_path: Path | None = None
) -> Target:
    """``--scheduler ADDR`` when given (``deployed`` or none: the cluster recorded in the state file)."""
    if scheduler and scheduler != DEPLOYED:
        return Target(scheduler, tls)
    state = load_state(state_path)
    if state.pid is not None and not process_alive(state.pid):
        raise ClusterNotFoundError(
            f"the cluster deployed at {state.scheduler_address} is gone (its daemon, pid {state.pid}, "
            "has exited); run 'spheroseg cluster stop' to clear the record, then deploy again"
        )
    return Target(state.scheduler_address, state.spec.tls or tls, state)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def deploy(spec: ClusterSpec, state_path: Path | None = None, timeout: float = 120.0) -> ClusterState:
    """Start the cluster ``spec`` describes so that it outlives this process; return its record."""
    state_path = state_path or default_state_path()
    with contextlib.suppress(ClusterNotFoundError):
        existing = load_state(state_path)
        if existing.pid is None or process_alive(existing.pid):
            raise ClusterError(
                f"a cluster is already deployed at {existing.scheduler_address} (state {state_path}); "
                "stop it first with 'spheroseg cluster stop'"
            )
        clear_state(state_path)
    if spec.backend == "address":
        return _record_address(spec, state_path)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    log_path = state_path.with_suffix(".log")
    command = [
        sys.executable,
        "-m",
        "cluster.launch.daemon",
        "--spec",
        spec.to_json(),
        "--state",
        str(state_path),
    ]
    command += ["--log-file", str(log_path)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(
                f"the cluster did not start (exit {process.returncode}):\n{_log_tail(log_path)}"
            )
        with contextlib.suppress(ClusterNotFoundError):
            state = load_state(state_path)
            if state.pid == process.pid:
                return state
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGTERM)
    raise ClusterError(f"the cluster did not start within {timeout:.0f} s:\n{_log_tail(log_path)}")


def _record_address(spec: ClusterSpec, state_path: Path) -> ClusterState:
    from cluster.launch import address

    deployment = asyncio.run(address.start(spec))
    state = ClusterState(deployment.scheduler_address, spec, None, deployment.dashboard_link)
    save_state(state, state_path)
    return state


async def send_control(target: Target, message: dict[str, Any], timeout: float = 180.0) -> dict[str, Any]:
    """Send ``message`` to the deployed cluster's daemon and return its reply."""
    if target.state is None or target.state.pid is None:
        raise ClusterError(
            f"the scheduler at {target.address} was not started by 'spheroseg cluster deploy'; "
            "scale its workers where they were started"
        )
    request = uuid.uuid4().hex
    replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    client = await target.client()
    try:
        client.subscribe_topic(REPLY_TOPIC, lambda event: replies.put_nowait(event[1]))  # type: ignore[no-untyped-call]
        await asyncio.sleep(0.05)  # let the subscription reach the scheduler before the request
        await client.log_event(CONTROL_TOPIC, {**message, "request": request})
        async with asyncio.timeout(timeout):
            while True:
                reply = await replies.get()
                if isinstance(reply, dict) and reply.get("request") == request:
                    return reply
    except TimeoutError:
        raise ClusterError(f"the cluster daemon did not answer within {timeout:.0f} s") from None
    finally:
        await close_client(client)


def stop(state_path: Path | None = None, timeout: float = 60.0) -> ClusterState:
    """Stop the deployed cluster (or forget a scheduler we only pointed at); return what was stopped."""
    state_path = state_path or default_state_path()
    state = load_state(state_path)
    if state.pid is None:
        clear_state(state_path)
        return state
    if process_alive(state.pid):
        with contextlib.suppress(ClusterError, OSError, TimeoutError):
            target = Target(state.scheduler_address, state.spec.tls, state)
            asyncio.run(send_control(target, {"op": "stop"}, timeout=10.0))
        if not _wait_exit(state.pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(state.pid, signal.SIGTERM)
            if not _wait_exit(state.pid, 10.0):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(state.pid, signal.SIGKILL)
    clear_state(state_path)
    return state


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    return not process_alive(pid)
