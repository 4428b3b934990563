"""Real processes for the job tests: the server as a user starts it, a Dask cluster, a gql client.

:func:`start_server` (kept in :mod:`spheroseg_testing.server`, which the benchmarks use too) runs
``spheroseg server serve --port 0`` with ``SPHEROSEG_*`` settings in the environment and reads the port it
chose from its log; :class:`ServerProcess.kill` is a SIGKILL, as a crash or an out-of-memory kill would be.
:func:`subscribe` follows a subscription with gql over ``graphql-transport-ws``, authenticated in
``connection_init`` as the workbench does.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from PIL import Image

from spheroseg_testing.server import SPHEROSEG, ServerProcess, graphql, login, start_server

__all__ = [
    "SPHEROSEG",
    "ServerProcess",
    "alive",
    "disc_png",
    "graphql",
    "login",
    "start_server",
    "subscribe",
    "wait_until",
]


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
