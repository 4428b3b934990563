"""Project statistics come from counters the database keeps; they must always equal a full recount.

The counters (migration 0002) are kept by triggers, so every way images change is exercised here through
the API: uploads, saves (with a conflict and a revert), reviews, deletions, and a project deleted with
its images. After each step the ``stats`` query must equal a recount over the images and their current
segmentations.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from server.db.models import Image, ProjectStatsRow, SegmentationVersion
from tests.server.api.test_projects import SAVE
from tests.server.conftest import Api, png_bytes

pytestmark = pytest.mark.anyio

STATS = """query($id: Int!) { project(id: $id) { stats { imageCount spheroidCount segmentedImageCount
  meanAreaPx meanDiameterPx byStatus { status count } byReview { status count } } } }"""
SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]
SMALL = [[40, 5], [50, 5], [50, 15], [40, 15]]


async def _recount(api: Api, project_id: int) -> dict[str, Any]:
    """The statistics computed the slow way, from the images and their current segmentations."""
    async with api.services.db() as session:
        images = list(await session.scalars(select(Image).where(Image.project_id == project_id)))
        current = list(
            await session.scalars(
                select(SegmentationVersion)
                .join(
                    Image,
                    (Image.id == SegmentationVersion.image_id)
                    & (Image.current_version == SegmentationVersion.version),
                )
                .where(Image.project_id == project_id)
            )
        )
    spheroids = sum(s.spheroid_count for s in current)

    def counts(values: list[str]) -> list[dict[str, Any]]:
        return [{"status": v, "count": values.count(v)} for v in sorted(set(values))]

    return {
        "imageCount": len(images),
        "spheroidCount": spheroids,
        "segmentedImageCount": len(current),
        "meanAreaPx": sum(s.area_sum_px for s in current) / spheroids if spheroids else None,
        "meanDiameterPx": sum(s.diameter_sum_px for s in current) / spheroids if spheroids else None,
        "byStatus": counts([i.segmentation_status for i in images]),
        "byReview": counts([i.review_status for i in images]),
    }


async def _check(api: Api, token: str, project_id: int) -> dict[str, Any]:
    stats = (await api.ok(STATS, token, id=project_id))["project"]["stats"]
    expected = await _recount(api, project_id)
    for key in ("meanAreaPx", "meanDiameterPx"):
        if expected[key] is not None:
            assert stats[key] == pytest.approx(expected[key]), key
            stats[key] = expected[key]
    assert stats == expected
    return dict(stats)


async def test_counters_equal_a_recount_through_every_kind_of_change(api: Api) -> None:
    owner = await api.user("owner")
    project_id, other = await api.project(owner, "screen"), await api.project(owner, "other")
    files = [(f"well{i}.png", png_bytes(64, 48, seed=i)) for i in range(5)]
    uploaded = (await api.upload(owner, project_id, files)).json()["files"]
    ids = [f["imageId"] for f in uploaded]
    await api.upload(owner, other, [("elsewhere.png", png_bytes(64, 48, seed=99))])
    assert (await _check(api, owner, project_id))["imageCount"] == 5

    await api.ok(SAVE, owner, id=ids[0], base=0, sph=[{"exterior": SQUARE}, {"exterior": SMALL}])
    await api.ok(SAVE, owner, id=ids[1], base=0, sph=[{"exterior": SQUARE}])
    stale = (await api.ok(SAVE, owner, id=ids[1], base=0, sph=[]))["saveSegmentation"]
    assert stale["__typename"] == "VersionConflict"
    stats = await _check(api, owner, project_id)
    assert stats["spheroidCount"] == 3 and stats["segmentedImageCount"] == 2

    review = "mutation($r: [ReviewedImageInput!]!) { setReview(images: $r, status: ACCEPTED) { __typename } }"
    await api.ok(review, owner, r=[{"imageId": ids[0], "version": 1}, {"imageId": ids[1], "version": 1}])
    assert {"status": "accepted", "count": 2} in (await _check(api, owner, project_id))["byReview"]

    await api.ok(SAVE, owner, id=ids[0], base=1, sph=[{"exterior": SMALL}])  # a new version: unreviewed
    revert = (
        "mutation($id: Int!) { revertSegmentation(imageId: $id, version: 1, baseVersion: 2) { __typename } }"
    )
    await api.ok(revert, owner, id=ids[0])
    assert (await _check(api, owner, project_id))["spheroidCount"] == 3

    delete = "mutation($ids: [Int!]!) { deleteImages(imageIds: $ids) { __typename } }"
    await api.ok(delete, owner, ids=[ids[1], ids[4]])
    stats = await _check(api, owner, project_id)
    assert stats["imageCount"] == 3 and stats["spheroidCount"] == 2
    assert (await _check(api, owner, other))["imageCount"] == 1

    await api.ok("mutation($id: Int!) { deleteProject(id: $id) { __typename } }", owner, id=project_id)
    async with api.services.db() as session:
        left = await session.scalar(select(func.count()).select_from(ProjectStatsRow))
    assert left == 1  # the deleted project's counters went with it; the other project's stay
