"""Saving segmentation versions: every path that saves (job result, edit, revert, import) goes through one
save function that refuses a stale base version; metrics are measured once, when a version is saved, and
read back as stored by the API and the export (SQLite and PostgreSQL).

A real cluster cannot be made to answer while a person saves, so the job path is driven at the
dispatcher's seam (``Dispatcher._record``, what a wave does with each result), as in test_dispatcher.py.
"""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

import pytest
from sqlalchemy import select

from cluster.exports import records as export_records
from cluster.metrics import measure
from cluster.pipeline import ImageOutcome
from cluster.segmentation import Segmentation, Spheroid, as_ring
from server.db import jobs
from server.db.jobs import ClaimedTask
from server.db.models import Task
from server.db.segmentations import save_segmentation
from server.domain.errors import VersionConflictError
from server.domain.versions import SaveOrigin, SegmentationSave
from tests.server.api.test_projects import SAVE, SQUARE
from tests.server.conftest import Api, png_bytes
from tests.server.exports import exported
from tests.server.records import rewrite_records, stored_records

pytestmark = pytest.mark.anyio

SEGMENT = """mutation($p: Int!) { segmentImages(input: {projectId: $p, method: "classical"}) {
  ... on JobStarted { job { id } } } }"""
REVERT = """mutation($id: Int!, $v: Int!, $base: Int!) {
  revertSegmentation(imageId: $id, version: $v, baseVersion: $base) {
    __typename
    ... on SegmentationSaveSuccess { segmentation { version spheroids { metrics { areaPx } } } }
    ... on VersionConflict { currentVersion baseVersion }
  }
}"""
IMAGE = """query($id: Int!) { image(id: $id) { segmentationStatus
  segmentationHistory { version author modelName spheroidCount }
  segmentation { spheroids { metrics { areaPx equivalentDiameterPx } } } } }"""
STATS = "query($id: Int!) { project(id: $id) { stats { spheroidCount meanAreaPx } } }"
JOB_SQUARE = [(2, 2), (20, 2), (20, 20), (2, 20)]  # 18 x 18 px


async def _image(api: Api) -> tuple[str, int, int]:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    response = await api.upload(owner, project_id, [("a.png", png_bytes())])
    return owner, project_id, response.json()["files"][0]["imageId"]


async def _running_task(api: Api, token: str, project_id: int) -> ClaimedTask:
    await api.ok(SEGMENT, token, p=project_id)
    async with api.services.db.begin() as db:
        (task,) = await jobs.claim_tasks(db, 10)
    return task


def _job_result(*, measured: bool = True) -> Segmentation:
    """What a worker sends back: one square spheroid (measured, as the pipeline does, or not)."""
    square = Spheroid(as_ring(JOB_SQUARE))
    if measured:
        square = square.with_metrics(measure(square))
    return Segmentation(image_name="a.png", width=64, height=48, spheroids=[square], model_name="classical")


async def _csv_rows(api: Api, token: str, project_id: int) -> list[dict[str, str]]:
    url = (await exported(api, token, project_id, formats=["CSV"]))["url"]
    archive = zipfile.ZipFile(io.BytesIO((await api.client.get(url)).content))
    name = next(n for n in archive.namelist() if n.endswith("metrics.csv"))
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))


def _history(image: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(h["version"], h["author"], h["modelName"]) for h in image["segmentationHistory"]]


async def test_an_edit_on_a_stale_base_is_refused(api: Api) -> None:
    owner, _, image_id = await _image(api)
    await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": SQUARE}])

    stale = (await api.ok(SAVE, owner, id=image_id, base=0, sph=[]))["saveSegmentation"]

    assert stale["__typename"] == "VersionConflict"
    assert (stale["baseVersion"], stale["currentVersion"]) == (0, 1)
    image = (await api.ok(IMAGE, owner, id=image_id))["image"]
    assert _history(image) == [(1, "owner", "")]


async def test_a_revert_on_a_stale_base_is_refused_and_a_fresh_one_restores_the_stored_version(
    api: Api,
) -> None:
    owner, _, image_id = await _image(api)
    first = (await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": SQUARE}]))["saveSegmentation"]
    await api.ok(SAVE, owner, id=image_id, base=1, sph=[])

    stale = (await api.ok(REVERT, owner, id=image_id, v=1, base=1))["revertSegmentation"]
    assert stale == {"__typename": "VersionConflict", "currentVersion": 2, "baseVersion": 1}
    image = (await api.ok(IMAGE, owner, id=image_id))["image"]
    assert [version for version, _, _ in _history(image)] == [2, 1]

    reverted = (await api.ok(REVERT, owner, id=image_id, v=1, base=2))["revertSegmentation"]
    assert reverted["segmentation"]["version"] == 3
    assert reverted["segmentation"]["spheroids"] == first["segmentation"]["spheroids"]
    async with api.services.db() as db:
        stored = await stored_records(db, image_id)
    assert stored[3] == stored[1]  # rings and metrics as they were stored, not measured again


async def test_a_job_result_landing_while_a_person_saves_is_refused_then_stored_on_top(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, project_id, image_id = await _image(api)
    task = await _running_task(api, owner, project_id)
    real_change_task = jobs.change_task
    person_saved: list[str] = []

    async def person_saves_first(*args: Any, **kwargs: Any) -> bool:
        """The person's save commits after the job result read the image, before it is stored."""
        if not person_saved:
            saved = await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": SQUARE}])
            person_saved.append(saved["saveSegmentation"]["__typename"])
        return await real_change_task(*args, **kwargs)

    monkeypatch.setattr(jobs, "change_task", person_saves_first)
    with pytest.raises(VersionConflictError) as refused:
        async with api.services.db.begin() as db:
            await jobs.store_result(db, task, _job_result())

    assert person_saved == ["SegmentationSaveSuccess"]
    assert (refused.value.base_version, refused.value.current_version) == (0, 1)
    async with api.services.db() as db:
        assert await db.scalar(select(Task.status).where(Task.id == task.task_id)) == "running"
    image = (await api.ok(IMAGE, owner, id=image_id))["image"]
    assert _history(image) == [(1, "owner", "")]  # the person's version, untouched

    dispatcher = api.services.dispatcher
    assert dispatcher is not None
    await dispatcher._record(task, ImageOutcome("a.png", _job_result()))  # the dispatcher retries
    image = (await api.ok(IMAGE, owner, id=image_id))["image"]
    assert _history(image) == [(2, "", "classical"), (1, "owner", "")]
    assert image["segmentationStatus"] == "DONE"


async def test_the_save_function_refuses_a_stale_base_whatever_the_origin(api: Api) -> None:
    owner, _, image_id = await _image(api)
    await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": SQUARE}])
    for origin in SaveOrigin:
        with pytest.raises(VersionConflictError):
            async with api.services.db.begin() as db:
                await save_segmentation(db, SegmentationSave(image_id, 0, _job_result().spheroids, origin))
    image = (await api.ok(IMAGE, owner, id=image_id))["image"]
    assert _history(image) == [(1, "owner", "")]


async def test_a_job_result_without_metrics_is_measured_once_when_saved(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Project statistics, the image's spheroids and the export all show the metrics measured at the save;
    the export measures nothing again."""
    owner, project_id, image_id = await _image(api)
    task = await _running_task(api, owner, project_id)
    dispatcher = api.services.dispatcher
    assert dispatcher is not None

    await dispatcher._record(task, ImageOutcome("a.png", _job_result(measured=False)))

    image = (await api.ok(IMAGE, owner, id=image_id))["image"]
    (metrics,) = [s["metrics"] for s in image["segmentation"]["spheroids"]]
    assert metrics["areaPx"] == pytest.approx(18 * 18)
    stats = (await api.ok(STATS, owner, id=project_id))["project"]["stats"]
    assert stats == {"spheroidCount": 1, "meanAreaPx": pytest.approx(18 * 18)}

    def no_measuring(*args: object) -> None:
        raise AssertionError("the export measured a spheroid whose metrics are stored")

    monkeypatch.setattr(export_records, "measure", no_measuring)
    (row,) = await _csv_rows(api, owner, project_id)
    assert float(row["area_px"]) == pytest.approx(18 * 18)
    assert float(row["equivalent_diameter_px"]) == pytest.approx(metrics["equivalentDiameterPx"])


async def test_spheroids_stored_before_a_metric_existed_keep_their_stored_values(api: Api) -> None:
    """Older rows lack metrics added since: reading one measures only to fill what is missing; the API and
    the export show the stored values (here an area an older formula gave), not new ones."""
    owner, project_id, image_id = await _image(api)
    await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": SQUARE}])
    async with api.services.db.begin() as db:
        await rewrite_records(
            db,
            image_id,
            lambda record: {
                **record,
                "metrics": {"area_px": 401.0, "perimeter_px": record["metrics"]["perimeter_px"]},
            },
        )

    image = (await api.ok(IMAGE, owner, id=image_id))["image"]
    (metrics,) = [s["metrics"] for s in image["segmentation"]["spheroids"]]
    assert metrics == {"areaPx": 401.0, "equivalentDiameterPx": pytest.approx(22.5676, rel=1e-4)}
    (exported,) = await _csv_rows(api, owner, project_id)
    assert float(exported["area_px"]) == 401.0
    assert float(exported["perimeter_px"]) == pytest.approx(80)
    assert float(exported["circularity"]) == pytest.approx(3.14159 / 4, rel=1e-4)
