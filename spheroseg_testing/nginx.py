"""nginx as a caching reverse proxy on 127.0.0.1, in front of an origin on another local port.

nginx is Debian's package, started with a configuration written to a temporary folder (pid file, temp
paths, cache and error log all inside it, ``daemon off`` so the caller owns the process, ``user`` set to
whoever runs it so it is harmless as root) and stopped again by :meth:`Nginx.stop`. ``proxy_cache_key`` is
``$request_uri``, which the server's nginx purger matches; the response header ``X-Cache-Status`` says HIT
or MISS.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from spheroseg_testing.ports import free_port

__all__ = ["Nginx", "find_nginx", "start_nginx"]

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
    binary = find_nginx()
    if binary is None:
        raise FileNotFoundError("nginx is not installed here (apt-get install nginx)")
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
