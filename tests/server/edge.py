"""Real edges for the delivery tests: nginx as a caching reverse proxy, the origin in uvicorn, a CDN API fake.

nginx is Debian's package, started here on 127.0.0.1 with a configuration written to a temporary folder
(pid file, temp paths, cache and error log all inside it, ``daemon off`` so this process owns it, ``user``
set to whoever runs the tests so it is harmless as root) and stopped again by :meth:`Nginx.stop`.
``proxy_cache_key`` is ``$request_uri``, which the server's nginx purger matches; the response header
``X-Cache-Status`` says HIT or MISS. Tests skip without nginx, unless SPHEROSEG_REQUIRE_SERVICES is set
(CI), where a missing nginx fails them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.server.services import free_port

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

CONFIG = """
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy_temp;
    fastcgi_temp_path {root}/fastcgi_temp;
    uwsgi_temp_path {root}/uwsgi_temp;
    scgi_temp_path {root}/scgi_temp;
    proxy_cache_path {root}/cache levels=1:2 keys_zone=images:10m max_size=1g inactive=7d use_temp_path=off;
    server {{
        listen 127.0.0.1:{port};
        location /img/ {{
            proxy_pass http://127.0.0.1:{origin};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache images;
            proxy_cache_key $request_uri;
            proxy_cache_lock on;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
        location / {{
            proxy_pass http://127.0.0.1:{origin};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (str(p) for p in (Path("/usr/sbin/nginx"), Path("/usr/local/sbin/nginx")) if p.exists()), None
    )


def require_nginx() -> str:
    binary = find_nginx()
    if binary is None:
        if os.environ.get("SPHEROSEG_REQUIRE_SERVICES"):
            pytest.fail("nginx is required (SPHEROSEG_REQUIRE_SERVICES is set): apt-get install nginx")
        pytest.skip("nginx is not installed here (apt-get install nginx)")
    return binary


@dataclass
class Nginx:
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cache_path(self) -> Path:
        return self.root / "cache"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}: {log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError("nginx did not start listening within 10 s")


def start_nginx(origin_port: int, port: int | None = None, root: Path | None = None) -> Nginx:
    binary = require_nginx()
    root = root or Path(tempfile.mkdtemp(prefix="spheroseg-nginx-"))
    (root / "cache").mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    config = CONFIG.format(root=root, port=port, origin=origin_port, user=user)
    (root / "nginx.conf").write_text(config)
    process = subprocess.Popen(
        [binary, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process, root / "error.log")
    except RuntimeError:
        process.kill()
        process.wait()
        raise
    return Nginx(root, port, process)


Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


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


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, port: int) -> AsyncIterator[str]:
    """The app in uvicorn on 127.0.0.1:``port``, in this event loop (so it shares the test's services)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
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
