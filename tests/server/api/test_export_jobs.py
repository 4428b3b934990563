"""``exportProject`` as a background job: answered at once, followed over the real ``jobProgress``
subscription, finished with a signed link to a zip of exactly the selected images; failures and bad input
(SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import zipfile
from typing import Any

import pytest
from gql import GraphQLRequest

from server.app import create_app
from server.db import exports as db_exports
from server.exceptions import StorageError
from server.services import exports as export_service
from tests.server.api.test_live import _websocket
from tests.server.api.test_projects import SAVE, SQUARE
from tests.server.conftest import Api, png_bytes
from tests.server.edge import serve
from tests.server.exports import start_export, wait_for_job
from tests.server.starters import free_port

pytestmark = pytest.mark.anyio

PROGRESS = """subscription($id: Int!) { jobProgress(jobId: $id) { status total done percentage problem } }"""


async def _segmented_images(api: Api, token: str, project_id: int, count: int, start: int = 0) -> list[int]:
    files = [(f"well{i}.png", png_bytes(seed=i)) for i in range(start, start + count)]
    ids = [f["imageId"] for f in (await api.upload(token, project_id, files)).json()["files"]]
    for image_id in ids:
        saved = await api.ok(SAVE, token, id=image_id, base=0, sph=[{"exterior": SQUARE}])
        assert saved["saveSegmentation"]["__typename"] == "SegmentationSaveSuccess"
    return ids


async def _download(api: Api, url: str) -> zipfile.ZipFile:
    response = await api.client.get(url)
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(response.content))


async def test_an_export_of_selected_images_is_followed_to_its_zip(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_service, "CHUNK_IMAGES", 1)  # a progress event per image
    owner = await api.user("owner")
    viewer = await api.user("viewer")
    project_id = await api.project(owner)
    await api.share(owner, project_id, "viewer", "VIEWER")
    ids = await _segmented_images(api, owner, project_id, 4)
    selected = [ids[3], ids[1], ids[2]]

    app = create_app(services=api.services)
    async with serve(app, free_port()) as url, _websocket(url, viewer) as session:
        started = await start_export(api, viewer, project_id, ids=selected, formats=["CSV", "MASKS", "COCO"])
        assert started["__typename"] == "ExportStarted"
        job = started["job"]
        assert (
            job["kind"] == "EXPORT" and job["total"] == 3 and job["status"] in ("QUEUED", "RUNNING", "DONE")
        )
        request = GraphQLRequest(PROGRESS, variable_values={"id": job["id"]})
        seen = [message["jobProgress"] async for message in session.subscribe(request)]
    assert seen[-1] == {"status": "DONE", "total": 3, "done": 3, "percentage": 100.0, "problem": None}
    done = [message["done"] for message in seen]
    assert done == sorted(done)  # never backwards

    finished = await wait_for_job(api, viewer, job["id"])
    assert finished["parameters"] == {"formats": ["coco", "csv", "masks"], "spheroidCount": 3}
    assert finished["downloadUrl"].startswith("http://testserver/api/blobs/exports/")
    archive = await _download(api, finished["downloadUrl"])
    names = set(archive.namelist())
    assert names == {
        "annotations.coco.json",
        "metrics.csv",
        "masks/well1.png",
        "masks/well2.png",
        "masks/well3.png",
    }
    rows = list(csv.DictReader(io.StringIO(archive.read("metrics.csv").decode("utf-8"))))
    assert sorted(row["image"] for row in rows) == ["well1.png", "well2.png", "well3.png"]
    coco = json.loads(archive.read("annotations.coco.json"))
    assert sorted(image["file_name"] for image in coco["images"]) == ["well1.png", "well2.png", "well3.png"]
    jobs = await api.ok("query($p: Int!) { project(id: $p) { jobs { id kind } } }", owner, p=project_id)
    assert jobs["project"]["jobs"] == [{"id": job["id"], "kind": "EXPORT"}]


async def test_a_filter_selects_the_images_and_no_selection_exports_everything(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    ids = await _segmented_images(api, owner, project_id, 3)
    await api.ok(
        "mutation($i: Int!) { setReview(images: [{imageId: $i, version: 1}], status: ACCEPTED) "
        "{ __typename } }",
        owner,
        i=ids[0],
    )
    accepted = await start_export(api, owner, project_id, filter={"review": ["ACCEPTED"]}, formats=["CSV"])
    job = await wait_for_job(api, owner, accepted["job"]["id"])
    rows = list(
        csv.DictReader(io.StringIO((await _download(api, job["downloadUrl"])).read("metrics.csv").decode()))
    )
    assert [row["image"] for row in rows] == ["well0.png"]
    everything = await start_export(api, owner, project_id)
    job = await wait_for_job(api, owner, everything["job"]["id"])
    assert job["total"] == job["done"] == 3 and job["parameters"]["formats"] == [
        "coco",
        "csv",
        "xlsx",
        "masks",
        "geojson",
    ]


async def test_a_storage_failure_ends_the_job_failed_with_the_reason(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    await _segmented_images(api, owner, project_id, 2)

    async def refused(*_: Any, **__: Any) -> None:
        raise StorageError("S3 refused put in s3://lab-bucket: AccessDenied")

    monkeypatch.setattr(api.services.store, "put_file", refused)
    started = await start_export(api, owner, project_id, formats=["CSV"])
    job = await wait_for_job(api, owner, started["job"]["id"])
    assert job["status"] == "FAILED" and job["downloadUrl"] is None and job["downloadExpiresAt"] is None
    assert "could not be stored" in job["problem"] and "lab-bucket" not in job["problem"]
    assert job["done"] == 2  # it got as far as storing


async def test_bad_requests_are_input_errors_and_start_no_job(api: Api) -> None:
    owner = await api.user("owner")
    project_id, other = await api.project(owner), await api.project(owner, "Other")
    (mine,) = await _segmented_images(api, owner, project_id, 1)
    (theirs,) = await _segmented_images(api, owner, other, 1)
    wrong_image = await start_export(api, owner, project_id, ids=[mine, theirs])
    assert wrong_image == {
        "__typename": "InputError",
        "field": "imageIds",
        "message": f"not images of project {project_id}: {theirs}",
    }
    no_format = await start_export(api, owner, project_id, formats=[])
    assert no_format["__typename"] == "InputError" and no_format["field"] == "formats"
    api.services.settings.max_images_per_job = 1
    too_many = await start_export(api, owner, other, filter={})
    assert too_many["__typename"] == "ExportStarted"  # one image: within the limit
    await _segmented_images(api, owner, other, 1, start=5)
    assert (await start_export(api, owner, other))["field"] == "imageIds"
    jobs = await api.ok("query($p: Int!) { project(id: $p) { jobs { id } } }", owner, p=project_id)
    assert jobs["project"]["jobs"] == []


async def test_a_server_stopping_mid_export_ends_the_job_failed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    await _segmented_images(api, owner, project_id, 1)
    stuck = asyncio.Event()

    async def never(*_: Any, **__: Any) -> None:
        stuck.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(api.services.store, "put_file", never)
    started = await start_export(api, owner, project_id, formats=["CSV"])
    await asyncio.wait_for(stuck.wait(), 30)
    await api.services.background.close()  # as the server's shutdown does
    job = await wait_for_job(api, owner, started["job"]["id"])
    assert job["status"] == "FAILED" and "server stopped" in job["problem"]


async def test_a_cancelled_export_stores_no_zip(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    await _segmented_images(api, owner, project_id, 1)
    store = api.services.store
    put_file = store.put_file
    writing, go_on = asyncio.Event(), asyncio.Event()

    async def slow(*args: Any, **kwargs: Any) -> None:
        writing.set()
        await go_on.wait()
        await put_file(*args, **kwargs)

    monkeypatch.setattr(store, "put_file", slow)
    started = await start_export(api, owner, project_id, formats=["CSV"])
    await asyncio.wait_for(writing.wait(), 30)
    cancelled = await api.ok(
        "mutation($id: Int!) { cancelJob(id: $id) { __typename } }", owner, id=started["job"]["id"]
    )
    assert cancelled["cancelJob"]["__typename"] == "Job"
    go_on.set()
    job = await wait_for_job(api, owner, started["job"]["id"])
    assert job["status"] == "CANCELLED" and job["downloadUrl"] is None
    async with asyncio.timeout(30):
        while await store.listing("exports/"):  # the zip written meanwhile is deleted
            await asyncio.sleep(0.05)


async def test_an_export_whose_server_was_killed_ends_failed_once_it_falls_silent(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    now = dt.datetime.now(dt.UTC)
    async with api.services.db.begin() as db:  # two exports that servers were running when they were killed
        silent = await db_exports.create_export_job(db, project_id, None, ["csv"], 1)
        recent = await db_exports.create_export_job(db, project_id, None, ["csv"], 1)
        silent.heartbeat_at = now - dt.timedelta(seconds=export_service.ABANDONED_SECONDS + 1)
        recent.heartbeat_at = now - dt.timedelta(seconds=export_service.ABANDONED_SECONDS - 30)
    assert await export_service.fail_abandoned_exports(api.services) == [silent.id]
    failed = await wait_for_job(api, owner, silent.id)
    assert failed["status"] == "FAILED" and "server stopped" in failed["problem"]
    still = await api.ok("query($id: Int!) { job(id: $id) { status } }", owner, id=recent.id)
    assert still["job"]["status"] == "QUEUED"  # its server may be alive: it has beaten lately
