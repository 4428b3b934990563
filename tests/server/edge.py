"""Real edges for the delivery tests: nginx as a caching reverse proxy, the origin in uvicorn, a CDN API fake.

nginx and uvicorn are started by :mod:`spheroseg_testing` (the benchmarks use them too). Tests skip without
nginx, unless SPHEROSEG_REQUIRE_SERVICES is set (CI), where a missing nginx fails them.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from spheroseg_testing import nginx
from spheroseg_testing.nginx import Nginx, find_nginx
from spheroseg_testing.ports import free_port
from spheroseg_testing.serving import ASGIApp, serve

__all__ = [
    "ApiFake",
    "Nginx",
    "OriginCounter",
    "api_fake",
    "find_nginx",
    "require_nginx",
    "serve",
    "start_nginx",
]


def require_nginx() -> str:
    binary = find_nginx()
    if binary is None:
        if os.environ.get("SPHEROSEG_REQUIRE_SERVICES"):
            pytest.fail("nginx is required (SPHEROSEG_REQUIRE_SERVICES is set): apt-get install nginx")
        pytest.skip("nginx is not installed here (apt-get install nginx)")
    return binary


def start_nginx(origin_port: int, port: int | None = None, root: Path | None = None) -> Nginx:
    """:func:`spheroseg_testing.start_nginx`, skipped (or failed, see :func:`require_nginx`) without nginx."""
    require_nginx()
    return nginx.start_nginx(origin_port, port, root)


Scope = MutableMapping[str, Any]


class OriginCounter:
    """An ASGI wrapper that records the path of every HTTP request the origin receives."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)

    def images(self) -> list[str]:
        return [p for p in self.paths if p.startswith("/img/")]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ApiFake:
    """A local HTTP server standing in for Cloudflare's or Fastly's API: records, answers as configured."""

    port: int
    requests: list[Recorded] = field(default_factory=list)
    status: int = 200
    body: dict[str, Any] = field(
        default_factory=lambda: {"success": True, "errors": [], "result": {"id": "x"}}
    )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def api_fake() -> Iterator[ApiFake]:
    fake = ApiFake(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            fake.requests.append(
                Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            payload = json.dumps(fake.body).encode()
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", fake.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
