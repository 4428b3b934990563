"""Rotating the image URL key: an administrator (GraphQL) or the command line retires every URL handed out
before, on every replica; old URLs get 403 (clients then ask for new ones) and fresh URLs work at once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from server.app import create_app
from server.composition import Services
from server.settings import Settings
from tests.server.conftest import Api, png_bytes
from tests.server.exports import exported
from tests.server.processes import SPHEROSEG

pytestmark = pytest.mark.anyio

ROTATE = "mutation { rotateSigningKey { message } }"
URL = "query($i: Int!) { image(id: $i) { originalUrl } }"


async def _image(api: Api) -> tuple[str, int]:
    token = await api.user("owner")
    project = await api.project(token)
    response = await api.upload(token, project, [("a.png", png_bytes())])
    image_id: int = response.json()["files"][0]["imageId"]
    return token, image_id


async def _url(api: Api, token: str, image_id: int) -> str:
    url: str = (await api.ok(URL, token, i=image_id))["image"]["originalUrl"]
    return url


@contextlib.asynccontextmanager
async def _replica(settings: Settings, refresh_seconds: float) -> AsyncIterator[httpx.AsyncClient]:
    """A second server on the same database, started as the app's lifespan starts it (no dispatcher)."""
    other = Services.create(
        settings.model_copy(
            update={"dispatcher": False, "delivery_signing_key_refresh_seconds": refresh_seconds}
        )
    )
    await other.start()
    transport = httpx.ASGITransport(app=create_app(services=other))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
            yield client
    finally:
        await other.close()


async def test_an_admin_rotates_the_key_and_old_urls_are_refused(api: Api) -> None:
    token, image_id = await _image(api)
    old = await _url(api, token, image_id)
    assert (await api.client.get(old)).status_code == 200
    refused = await api.gql(ROTATE, token)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    admin = await api.user("root", admin=True)
    assert "now signed with key" in (await api.ok(ROTATE, admin))["rotateSigningKey"]["message"]
    stale = await api.client.get(old)
    assert stale.status_code == 403 and "ask the server for a new one" in stale.text
    fresh = await _url(api, token, image_id)
    assert fresh != old and (await api.client.get(fresh)).status_code == 200
    await api.ok(ROTATE, admin)
    assert (await api.client.get(fresh)).status_code == 403  # a second rotation retires the first


async def test_a_replica_takes_up_a_rotation_made_elsewhere(api: Api, settings: Settings) -> None:
    token, image_id = await _image(api)
    old = await _url(api, token, image_id)
    admin = await api.user("root", admin=True)
    async with _replica(settings, refresh_seconds=3600) as replica:
        assert (await replica.get(old)).status_code == 200
        await api.ok(ROTATE, admin)
        fresh = await _url(api, token, image_id)
        # the replica has not looked yet: a URL of a newer key makes it look at once
        assert (await replica.get(fresh)).status_code == 200
        assert (await replica.get(old)).status_code == 403


async def test_the_command_line_rotates_the_key_of_running_servers(api: Api, settings: Settings) -> None:
    token, image_id = await _image(api)
    old = await _url(api, token, image_id)
    async with _replica(settings, refresh_seconds=0.2) as replica:
        assert (await replica.get(old)).status_code == 200
        rotated = subprocess.run(
            [SPHEROSEG, "server", "rotate-signing-key"],
            env={**os.environ, "SPHEROSEG_DATABASE_URL": settings.database_url},
            capture_output=True,
            text=True,
            check=False,
        )
        assert rotated.returncode == 0, rotated.stderr
        assert "now signed with key r1" in rotated.stdout
        deadline = time.monotonic() + 30
        while (status := (await replica.get(old)).status_code) == 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert status == 403, "the running server kept accepting URLs of the retired key"


def _path(export: dict[str, Any]) -> str:
    """The export link without the server's address (the same on every replica)."""
    url = httpx.URL(export["url"])
    return f"{url.path}?{url.query.decode()}"


async def test_a_rotation_retires_download_links_too_on_every_replica(api: Api, settings: Settings) -> None:
    """A local store's export links are signed by the same key ring as image URLs."""
    token = await api.user("owner")
    project = await api.project(token)
    await api.upload(token, project, [("a.png", png_bytes())])
    old = _path(await exported(api, token, project, formats=["CSV"]))
    assert old.startswith("/api/blobs/exports/")
    assert (await api.client.get(old)).status_code == 200
    forged = old.replace("kid=k0", "kid=k9")
    assert (await api.client.get(forged)).status_code == 403
    admin = await api.user("root", admin=True)
    async with _replica(settings, refresh_seconds=3600) as replica:
        await api.ok(ROTATE, admin)
        stale = await api.client.get(old)
        assert stale.status_code == 403 and "ask for a new one" in stale.text
        fresh = _path(await exported(api, token, project, formats=["CSV"]))
        assert "kid=r1" in fresh and (await api.client.get(fresh)).status_code == 200
        # the replica has not looked yet: a link of a newer key makes it look at once
        assert (await replica.get(fresh)).status_code == 200
        assert (await replica.get(old)).status_code == 403
