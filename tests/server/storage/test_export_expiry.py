"""Exports expire: a periodic sweep deletes old zips from the store (local or S3), counted in /metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.app import create_app
from server.composition import Services
from server.storage import image_key
from tests.server.conftest import Api, make_settings, png_bytes
from tests.server.exports import exported
from tests.server.storage.test_storage import _download, _sha
from tests.server.storage.test_storage import stored_api as stored_api  # a fixture: the app on a folder or S3

pytestmark = pytest.mark.anyio


async def _metric(api: Api, name: str) -> float:
    text = (await api.client.get("/metrics")).text
    (line,) = [line for line in text.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])


async def _export(api: Api, token: str, project_id: int) -> dict[str, Any]:
    return await exported(api, token, project_id, formats=["CSV"])


async def test_expired_exports_are_swept_from_the_store_and_counted(stored_api: Api) -> None:
    api = stored_api
    owner = await api.user("owner")
    project_id = await api.project(owner)
    image = png_bytes()
    assert (await api.upload(owner, project_id, [("a.png", image)])).json()["accepted"] == 1
    made = dt.datetime.now(dt.UTC)
    exports = [await _export(api, owner, project_id) for _ in range(3)]
    expiry = dt.timedelta(seconds=api.services.settings.export_expiry_seconds)
    for export in exports:  # the URL ends when the zip does
        assert dt.datetime.fromisoformat(export["expiresAt"]) <= made + expiry + dt.timedelta(seconds=5)
        assert (await _download(api, export["url"])).status_code == 200
    assert await _metric(api, "spheroseg_stored_exports") == 3
    assert await _metric(api, "spheroseg_stored_export_bytes") > 0

    sweeper = api.services.exports
    assert (await sweeper.sweep()).deleted == 0  # nothing has expired yet
    sweeper.clock = lambda: dt.datetime.now(dt.UTC) + expiry + dt.timedelta(seconds=1)
    report = await sweeper.sweep()
    assert (report.deleted, report.kept) == (3, 0)
    for export in exports:
        assert (await _download(api, export["url"])).status_code in (403, 404)
    assert await _metric(api, "spheroseg_stored_exports") == 0
    assert await api.services.store.exists(image_key(_sha(image)))  # only exports are swept
    assert (await _download(api, (await _export(api, owner, project_id))["url"])).status_code == 200
    assert await _metric(api, "spheroseg_stored_exports") == 1


async def test_the_running_server_sweeps_by_itself(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        database_url,
        str(tmp_path / "blobs"),
        dispatcher=False,
        export_expiry_seconds=0,
        export_sweep_seconds=0.05,
    )
    services = Services.create(settings)
    await services.start()  # as the app's lifespan does
    transport = httpx.ASGITransport(app=create_app(services=services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            api = Api(client, services)
            owner = await api.user("owner")
            export = await _export(api, owner, await api.project(owner))
            for _ in range(200):  # a few sweeps; the first after the export deletes it
                if not await services.store.listing("exports/"):
                    break
                await asyncio.sleep(0.05)
            assert await services.store.listing("exports/") == []
            assert export["url"] is None  # expired at once: its link is never handed out
            assert await _metric(api, "spheroseg_stored_exports") == 0
    finally:
        await services.close()
