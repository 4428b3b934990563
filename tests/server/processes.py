"""Real processes for the job tests: the server as a user starts it, a Dask cluster, a gql client.

:func:`start_server` runs ``spheroseg server serve --port 0`` with ``SPHEROSEG_*`` settings in the
environment and reads the port it chose from its log; :class:`ServerProcess.kill` is a SIGKILL, as a
crash or an out-of-memory kill would be. :func:`subscribe` follows a subscription with gql over
``graphql-transport-ws``, authenticated in ``connection_init`` as the workbench does.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from PIL import Image

__all__ = [
    "ServerProcess",
    "alive",
    "disc_png",
    "graphql",
    "login",
    "start_server",
    "subscribe",
    "wait_until",
]

SPHEROSEG = str(Path(sys.executable).parent / "spheroseg")
_LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"

    def children(self) -> set[int]:
        """Processes the server started (thumbnail renderers, multiprocessing's resource tracker)."""
        found: set[int] = set()
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            found |= {int(pid) for pid in (task / "children").read_text().split()}
        return found

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine loses power or the kernel kills it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(env: Mapping[str, str], log: Path, timeout: float = 60.0) -> ServerProcess:
    """``spheroseg server migrate`` then ``serve --port 0``; returns once ``/health/live`` answers."""
    full_env = {**os.environ, **env}
    subprocess.run([SPHEROSEG, "server", "migrate"], env=full_env, check=True, capture_output=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [SPHEROSEG, "server", "serve", "--port", "0"], env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _LISTENING.findall(log.read_text(errors="replace"))
        if found and process.poll() is None:
            server = ServerProcess(process, found[-1], log)
            if httpx.get(server.url + "/health/live", timeout=5).status_code == 200:
                return server
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the server did not start; its log:\n{log.read_text(errors='replace')[-3000:]}")


def disc_png(seed: int, size: int = 384) -> bytes:
    """A brightfield-like 8-bit image: a dark disc (the spheroid) on an uneven light background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    radius = rng.uniform(0.12, 0.22) * size
    image = 200 + 20 * xx / size + rng.normal(0, 4, (size, size))
    image[(xx - cx) ** 2 + (yy - cy) ** 2 < radius**2] -= 110
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def graphql(url: str, token: str | None, query: str, **variables: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        url + "/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=60
    )
    body: dict[str, Any] = response.json()
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data


def login(url: str, username: str, password: str) -> str:
    data = graphql(
        url,
        None,
        "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { "
        "... on LoginSuccess { token } } }",
        u=username,
        p=password,
    )
    token: str = data["login"]["token"]
    return token


async def subscribe(
    server: ServerProcess, token: str, query: str, **variables: Any
) -> AsyncIterator[dict[str, Any]]:
    """Each result of a subscription, as the server sends it, until it ends."""
    transport = WebsocketsTransport(
        url=server.ws_url,
        init_payload={"authorization": f"Bearer {token}"},
        subprotocols=["graphql-transport-ws"],
    )
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        async for result in session.subscribe(GraphQLRequest(query, variable_values=variables)):
            yield result


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)
