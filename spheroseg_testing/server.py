"""The server as a user starts it: ``spheroseg server serve --port 0`` in its own process.

:func:`start_server` sets ``SPHEROSEG_*`` settings in the environment, reads the port the server chose from
its log and returns once ``/health/live`` answers; :meth:`ServerProcess.kill` is a SIGKILL, as a crash or
an out-of-memory kill would be. :func:`graphql` and :func:`login` are the calls every caller needs first.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["SPHEROSEG", "ServerProcess", "graphql", "login", "start_server"]

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


def graphql(url: str, token: str | None, query: str, **variables: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        url + "/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=60
    )
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        raise AssertionError(body)  # what a test fails with; a benchmark stops
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
