"""An ASGI app in uvicorn on 127.0.0.1, in the caller's event loop (so it shares the caller's services)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

__all__ = ["ASGIApp", "serve"]

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, port: int, **options: Any) -> AsyncIterator[str]:
    """The app on ``port`` (no lifespan: the caller starts its services), stopped on leaving; ``options``
    go to ``uvicorn.Config`` (the proxy options of ``spheroseg server serve``, say)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **options)
    )
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
