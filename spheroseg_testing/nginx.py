"""nginx as a caching reverse proxy on 127.0.0.1, in front of an origin on another local port.

nginx is Debian's package, started with a configuration written to a temporary folder (pid file, temp
paths, cache and error log all inside it, ``daemon off`` so the caller owns the process, ``user`` set to
whoever runs it so it is harmless as root) and stopped again by :meth:`Nginx.stop`. That configuration
is :func:`nginx_command`'s, which ``packaging/lab/local.py`` runs the lab's edge with too (its site from
``packaging/lab/nginx/spheroseg.conf.template``). ``proxy_cache_key`` is
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

__all__ = ["Nginx", "find_nginx", "nginx_command", "start_nginx"]

MAIN = """worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
{user}
events {{ worker_connections 512; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy_temp;
    fastcgi_temp_path {root}/fastcgi_temp;
    uwsgi_temp_path {root}/uwsgi_temp;
    scgi_temp_path {root}/scgi_temp;
    include {root}/site.conf;
}}
"""
"""Everything nginx writes stays in ``root``; the site (what it serves) is included from ``site.conf``."""

PROXY = """
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
"""
"""The site of :func:`start_nginx`: one origin, its signed image URLs cached."""


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (str(p) for p in (Path("/usr/sbin/nginx"), Path("/usr/local/sbin/nginx")) if p.exists()), None
    )


def nginx_command(root: Path, site: str) -> list[str]:
    """Write ``root/nginx.conf`` serving ``site`` (http-level directives: ``server`` blocks, caches,
    upstreams) and return the command line that runs it in the foreground.

    Used by :func:`start_nginx` and by ``packaging/lab/local.py`` (the lab's edge), so both run nginx
    the same way: as whoever runs them (a ``user`` line only as root, else nginx would switch to
    nobody), with every file it writes inside ``root``."""
    binary = find_nginx()
    if binary is None:
        raise FileNotFoundError("nginx is not installed here (apt-get install nginx)")
    root.mkdir(parents=True, exist_ok=True)
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    (root / "site.conf").write_text(site)
    (root / "nginx.conf").write_text(MAIN.format(root=root, user=user))
    return [binary, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")]


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
    """nginx caching ``origin_port`` on ``port`` (a free one by default), its files in ``root``."""
    root = root or Path(tempfile.mkdtemp(prefix="spheroseg-nginx-"))
    (root / "cache").mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    command = nginx_command(root, PROXY.format(root=root, port=port, origin=origin_port))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process, root / "error.log")
    except RuntimeError:
        process.kill()
        process.wait()
        raise
    return Nginx(root, port, process)
