"""The offline start as the desktop uses it: real ``spheroseg server serve --offline`` processes on one data
folder (SQLite in it, as on a user's machine).

The server is started from an intermediate process that stands for the desktop, so that killing it is the
desktop crashing: the server must notice, stop cleanly and remove its lock file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.instance import LOCK_FILE
from server.keys import SECRET_KEY_FILE
from tests.server.conftest import png_bytes
from tests.server.processes import SPHEROSEG, alive, graphql

pytestmark = pytest.mark.timeout(240)

EXCHANGE = (
    "mutation($t: String!) { exchangeBootstrapToken(token: $t) { __typename "
    "... on LoginSuccess { token user { username role } } ... on InvalidCredentials { message } } }"
)

DESKTOP = """
import os, subprocess, sys, time
out, err = open(sys.argv[1], "wb"), open(sys.argv[2], "wb")
command = [sys.argv[3], "server", "serve", "--offline", "--parent-pid", str(os.getpid())]
subprocess.Popen(command, stdout=out, stderr=err)
time.sleep(3600)
"""
"""The desktop: starts the offline server with itself as the parent, and waits."""


def _env(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPHEROSEG_")}
    env.update(
        SPHEROSEG_DATA_DIR=str(data_dir),
        SPHEROSEG_PASSWORD_TIME_COST="1",
        SPHEROSEG_PASSWORD_MEMORY_KIB="1024",
        SPHEROSEG_DELIVERY_BACKGROUND_PROCESSES="0",
        SPHEROSEG_CLUSTER_WORKERS="1",
    )
    return env


def _lines(path: Path, timeout: float, process: subprocess.Popen[bytes], log: Path) -> list[dict[str, Any]]:
    """The JSON lines written to ``path``, once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if text.endswith("\n"):
            return [json.loads(line) for line in text.splitlines()]
        if process.poll() is not None and not text:
            break
        time.sleep(0.1)
    raise AssertionError(f"no ready line; the server's log:\n{log.read_text(errors='replace')[-3000:]}")


def _session(url: str, bootstrap_token: str) -> str:
    answer = graphql(url, None, EXCHANGE, t=bootstrap_token)["exchangeBootstrapToken"]
    assert answer["__typename"] == "LoginSuccess", answer
    token: str = answer["token"]
    return token


def _project_with_image(url: str, token: str) -> str:
    """A project with one image; the image's signed original URL."""
    created = graphql(
        url,
        token,
        'mutation { createProject(input: {name: "Plate"}) { ... on ProjectSuccess { project { id } } } }',
    )
    project_id = created["createProject"]["project"]["id"]
    response = httpx.post(
        f"{url}/api/projects/{project_id}/images",
        files=[("files", ("a.png", png_bytes(), "image/png"))],
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    image_id = response.json()["files"][0]["imageId"]
    original: str = graphql(url, token, "query($i: Int!) { image(id: $i) { originalUrl } }", i=image_id)[
        "image"
    ]["originalUrl"]
    return original


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"the server (pid {pid}) still runs {timeout:.0f} s after its parent died")
        time.sleep(0.1)


def test_the_desktop_starts_reuses_loses_and_restarts_its_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _env(data_dir)
    out, err = tmp_path / "out.jsonl", tmp_path / "err.log"
    desktop = subprocess.Popen([sys.executable, "-c", DESKTOP, str(out), str(err), SPHEROSEG], env=env)
    try:
        (ready,) = _lines(out, 90, desktop, err)  # one line on stdout, nothing else
        assert ready["event"] == "ready" and ready["data_dir"] == str(data_dir)
        url, pid = ready["url"], ready["pid"]
        assert url.startswith("http://127.0.0.1:")
        lock_file = data_dir / LOCK_FILE
        lock = json.loads(lock_file.read_text())
        assert (lock["url"], lock["pid"], lock["state"]) == (url, pid, "ready")
        assert lock_file.stat().st_mode & 0o777 == 0o600
        assert data_dir.stat().st_mode & 0o777 == 0o700  # made by the server: its user's only

        # the token gives a session of the local user, an administrator; it works once
        token = _session(url, ready["bootstrap_token"])
        assert graphql(url, token, "{ me { username role } }")["me"]["role"] == "ADMIN"
        again = graphql(url, None, EXCHANGE, t=ready["bootstrap_token"])["exchangeBootstrapToken"]
        assert again["__typename"] == "InvalidCredentials"
        original = _project_with_image(url, token)
        assert httpx.get(original, timeout=30).status_code == 200
        # production's defaults: no introspection
        schema = httpx.post(url + "/graphql", json={"query": "{ __schema { types { name } } }"}, timeout=30)
        assert schema.json().get("errors")

        # a second start on the same folder refuses, naming the running one
        second = subprocess.run(
            [SPHEROSEG, "server", "serve", "--offline"], env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 3
        (refusal,) = [json.loads(line) for line in second.stdout.splitlines()]
        assert refusal["event"] == "already_running" and refusal["pid"] == pid and refusal["url"] == url
        assert refusal["parent_pid"] == desktop.pid  # so a client sees when the server is about to stop
        assert f"pid {pid}" in second.stderr and url in second.stderr
        # a client that finds it running gets a new token without a password
        issued = subprocess.run(
            [SPHEROSEG, "server", "bootstrap-token"], env=env, capture_output=True, text=True, timeout=60
        )
        assert issued.returncode == 0, issued.stderr
        line = json.loads(issued.stdout)
        assert line["url"] == url and line["pid"] == pid
        second_token = _session(url, line["bootstrap_token"])
        assert graphql(url, second_token, "{ projects { name } }")["projects"] == [{"name": "Plate"}]

        # the desktop dies: the server stops by itself, cleanly
        desktop.send_signal(signal.SIGKILL)
        desktop.wait(timeout=30)
        _wait_gone(pid, 30)
        assert not lock_file.exists()
        assert "Application shutdown complete" in err.read_text()
    finally:
        if desktop.poll() is None:
            desktop.kill()
            desktop.wait()

    # a lock file left by a server that died (its pid gone) is taken over
    lock_file.write_text(json.dumps({"pid": pid, "url": url, "state": "ready"}))
    nobody = subprocess.run(
        [SPHEROSEG, "server", "bootstrap-token"], env=env, capture_output=True, text=True, timeout=60
    )
    assert nobody.returncode == 1 and nobody.stdout == ""
    assert f"no SpheroSeg server is running on the data folder {data_dir}" in nobody.stderr
    out2, err2 = tmp_path / "out2.jsonl", tmp_path / "err2.log"
    with out2.open("wb") as stdout, err2.open("wb") as stderr:
        restarted = subprocess.Popen(
            [SPHEROSEG, "server", "serve", "--offline"], env=env, stdout=stdout, stderr=stderr
        )
    try:
        (ready2,) = _lines(out2, 90, restarted, err2)
        assert ready2["event"] == "ready" and ready2["pid"] == restarted.pid
        # the signing key was kept: a URL signed by the first run still works; the data is still there
        assert (data_dir / SECRET_KEY_FILE).stat().st_mode & 0o777 == 0o600
        assert httpx.get(original.replace(url, ready2["url"]), timeout=30).status_code == 200
        token = _session(ready2["url"], ready2["bootstrap_token"])
        assert graphql(ready2["url"], token, "{ projects { name } }")["projects"] == [{"name": "Plate"}]
        assert graphql(ready2["url"], token, "{ me { username } }")["me"]["username"] == ready["username"]
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=60) == 0
        assert not lock_file.exists()
    finally:
        if restarted.poll() is None:
            restarted.kill()
            restarted.wait()


def test_offline_listens_on_loopback_only(tmp_path: Path) -> None:
    refused = subprocess.run(
        [SPHEROSEG, "server", "serve", "--offline", "--host", "0.0.0.0"],
        env=_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "127.0.0.1 only" in refused.stderr
    assert refused.stdout == "" and not (tmp_path / "data" / LOCK_FILE).exists()
