"""Each spheroid's confidence (issue 14, part 5) in the API: on the spheroid's metrics, as a column of the
project's spheroid table that sorts the least certain first, null where no network drew the outline or
the version was stored before confidences existed."""

from __future__ import annotations

import math
from typing import Any

import pytest

from cluster import Spheroid, as_ring, measure
from server.db.records import outlines_of_records, spheroid_of
from server.db.segmentations import save_segmentation
from server.domain.versions import Provenance, SaveOrigin, SegmentationSave
from tests.server.api.test_edits import EDIT
from tests.server.api.test_spheroid_table import _all_pages, _images, _square
from tests.server.conftest import Api

pytestmark = pytest.mark.anyio

SPHEROIDS = """query($i: Int!) { image(id: $i) { segmentation { spheroids { id metrics { areaPx confidence } }
  } } }"""


def _scored(ring: list[list[float]], confidence: float | None) -> Spheroid:
    spheroid = Spheroid(as_ring(ring))
    return spheroid.with_metrics(measure(spheroid, 0.5).with_confidence(confidence))


async def test_a_job_results_confidences_are_in_the_api_and_sort_the_table(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    (image_id,) = await _images(api, project_id, 1)
    spheroids = [_scored(_square(10, 10, 20), 0.93), _scored(_square(50, 50, 10), 0.41)]
    spheroids.append(_scored(_square(10, 60, 15), None))  # e.g. a spheroid a person added
    save = SegmentationSave(image_id, 0, spheroids, SaveOrigin.JOB, None, Provenance("resunet", "1.1", {}))
    async with api.services.db.begin() as db:
        await save_segmentation(db, save)

    found = (await api.ok(SPHEROIDS, owner, i=image_id))["image"]["segmentation"]["spheroids"]
    assert [s["metrics"]["confidence"] for s in found] == [pytest.approx(0.93), pytest.approx(0.41), None]
    least_certain_first = await _all_pages(api, owner, project_id, 2, order={"metric": "CONFIDENCE"})
    areas: list[Any] = [n["metrics"]["areaPx"] for n in least_certain_first]
    assert areas == pytest.approx([100, 400, 225])  # confidence 0.41, 0.93, then the unknown one


async def test_a_persons_edit_clears_the_confidence_of_what_it_changed_only(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    (image_id,) = await _images(api, project_id, 1)
    spheroids = [_scored(_square(10, 10, 20), 0.93), _scored(_square(50, 50, 10), 0.41)]
    save = SegmentationSave(image_id, 0, spheroids, SaveOrigin.JOB, None, Provenance("resunet", "1.1", {}))
    async with api.services.db.begin() as db:
        await save_segmentation(db, save)
    edited = await api.ok(EDIT, owner, id=image_id, base=1, up=[{"id": 1, "exterior": _square(10, 10, 25)}])
    assert edited["editSegmentation"]["__typename"] == "SegmentationEditSuccess"
    found = (await api.ok(SPHEROIDS, owner, i=image_id))["image"]["segmentation"]["spheroids"]
    assert {s["id"]: s["metrics"]["confidence"] for s in found} == {1: None, 2: pytest.approx(0.41)}


def test_a_version_stored_before_confidences_reads_back_whole_with_none() -> None:
    spheroid = Spheroid(as_ring(_square(10, 10, 20)))
    stored = measure(spheroid, 0.5).as_dict()
    del stored["confidence"]
    stored["area_px"] = 399.0  # read as stored, not measured again
    record = {"id": 3, "exterior": spheroid.exterior.tolist(), "holes": [], "metrics": stored}
    read = spheroid_of(record, 0.5)
    assert read.metrics is not None
    assert read.metrics.confidence is None and read.metrics.area_px == 399.0

    class Image:  # what outlines_of_records reads of an image
        width, height, pixel_size_um = 100, 100, 0.5

    outlines = outlines_of_records(Image(), 1, [record])  # type: ignore[arg-type]
    assert math.isnan(outlines.metrics["confidence"][0]) and outlines.metrics["area_px"][0] == 399.0
