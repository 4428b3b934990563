"""The secret key: production refuses to start without one, development keeps the one it made, so signed
image URLs survive a restart (real ``spheroseg server serve`` processes, SQLite)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from server.keys import SECRET_KEY_FILE
from tests.server.conftest import png_bytes
from tests.server.processes import SPHEROSEG, graphql, login, start_server

pytestmark = pytest.mark.timeout(180)

PASSWORD = "a long enough password"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "SPHEROSEG_SECRET_KEY"}
    env.update(
        SPHEROSEG_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
        SPHEROSEG_STORAGE_URL=str(tmp_path / "blobs"),
        SPHEROSEG_DATA_DIR=str(tmp_path / "data"),
        SPHEROSEG_PASSWORD_TIME_COST="1",
        SPHEROSEG_PASSWORD_MEMORY_KIB="1024",
        SPHEROSEG_DELIVERY_BACKGROUND_PROCESSES="0",
        SPHEROSEG_CLUSTER_WORKERS="1",
    )
    env.update(extra)
    return env


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    env = _env(tmp_path, SPHEROSEG_ENVIRONMENT="production")
    process = subprocess.Popen(
        [SPHEROSEG, "server", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("a production server started without SPHEROSEG_SECRET_KEY")
    assert process.returncode != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: SPHEROSEG_SECRET_KEY must be set in production")
    assert not (tmp_path / "data" / SECRET_KEY_FILE).exists()


def _image_url(url: str, token: str) -> str:
    created = graphql(
        url,
        token,
        'mutation { createProject(input: {name: "P"}) { ... on ProjectSuccess { project { id } } } }',
    )
    project_id = created["createProject"]["project"]["id"]
    response = httpx.post(
        f"{url}/api/projects/{project_id}/images",
        files=[("files", ("a.png", png_bytes(), "image/png"))],
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    image_id = response.json()["files"][0]["imageId"]
    image = graphql(url, token, "query($i: Int!) { image(id: $i) { originalUrl } }", i=image_id)
    original: str = image["image"]["originalUrl"]
    return original


def test_development_keeps_its_key_so_signed_urls_survive_a_restart(tmp_path: Path) -> None:
    env = _env(tmp_path)
    subprocess.run([SPHEROSEG, "server", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run(
        [SPHEROSEG, "server", "create-user", "ana", "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    first = start_server(env, tmp_path / "first.log")
    try:
        image_url = _image_url(first.url, login(first.url, "ana", PASSWORD))
        assert image_url.startswith(first.url + "/img/")  # absolute, from the request's own host
        assert httpx.get(image_url, timeout=30).status_code == 200
        image_path = image_url.removeprefix(first.url)
    finally:
        first.stop()
    second = start_server(env, tmp_path / "second.log")
    try:
        again = httpx.get(second.url + image_path, timeout=30)
        assert again.status_code == 200, again.text
    finally:
        second.stop()
    kept = tmp_path / "data" / SECRET_KEY_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and len(kept.read_text().strip()) >= 32
