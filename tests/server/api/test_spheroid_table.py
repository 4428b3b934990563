"""``Project.spheroids``: the project's spheroid table, sorted by a metric, filtered, paged in a constant
number of SQL statements, following every save and deletion (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import insert, select

from cluster.segmentation import Spheroid, as_ring
from server.db.engine import StatementCounter
from server.db.models import Image, spheroid_rows, utcnow
from server.db.segmentations import save_segmentation
from server.domain.versions import Provenance, SaveOrigin, SegmentationSave
from tests.server.api.test_projects import SAVE
from tests.server.conftest import Api

pytestmark = pytest.mark.anyio

TABLE = """query($p: Int!, $first: Int!, $after: String, $filter: SpheroidTableFilterInput,
  $order: SpheroidOrderInput) {
  project(id: $p) { spheroids(first: $first, after: $after, filter: $filter, orderBy: $order) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { spheroidId imageId imageName version touchesBorder
      metrics { areaPx areaUm2 equivalentDiameterPx circularity holeCount } } } } } }"""


def _square(x: float, y: float, side: float) -> list[list[float]]:
    return [[x, y], [x + side, y], [x + side, y + side], [x, y + side]]


async def _images(api: Api, project_id: int, count: int, pixel_size_um: float | None = 0.5) -> list[int]:
    now = utcnow()
    rows = [
        {
            "project_id": project_id,
            "name": f"well{i:03d}.tif",
            "content_hash": f"{project_id:08x}{i:056x}",
            "format": "tiff",
            "width": 100,
            "height": 100,
            "bit_depth": 8,
            "pixel_size_um": pixel_size_um,
            "byte_size": 1,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]
    async with api.services.db.begin() as db:
        await db.execute(insert(Image), rows)
        found = await db.scalars(select(Image.id).where(Image.project_id == project_id).order_by(Image.id))
        return list(found)


async def _save(api: Api, image_id: int, base: int, squares: Sequence[list[list[float]]]) -> None:
    spheroids = [Spheroid(as_ring(ring)) for ring in squares]
    save = SegmentationSave(image_id, base, spheroids, SaveOrigin.EDIT, None, Provenance("manual", "", {}))
    async with api.services.db.begin() as db:
        await save_segmentation(db, save)


async def _table(api: Api, token: str, project_id: int, **given: Any) -> dict[str, Any]:
    given.setdefault("first", 100)
    data = await api.ok(TABLE, token, p=project_id, **given)
    table: dict[str, Any] = data["project"]["spheroids"]
    return table


async def _all_pages(api: Api, token: str, project_id: int, first: int, **given: Any) -> list[dict[str, Any]]:
    nodes, after = [], None
    while True:
        page = await _table(api, token, project_id, first=first, after=after, **given)
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


async def test_the_table_sorts_a_project_by_a_metric_across_its_images_page_by_page(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    other_project = await api.project(owner, "Other plate")
    a, b, c = await _images(api, project_id, 3)
    (elsewhere,) = await _images(api, other_project, 1)
    await _save(api, a, 0, [_square(10, 10, 10), _square(40, 40, 30)])  # areas 100, 900
    await _save(api, b, 0, [_square(10, 10, 20), _square(0, 50, 5)])  # 400, and 25 touching the border
    await _save(api, c, 0, [_square(10, 10, 20)])  # 400: a tie with b's, broken by row
    await _save(api, elsewhere, 0, [_square(10, 10, 50)])  # another project's: never shown

    by_area = await _all_pages(api, owner, project_id, 2, order={"metric": "AREA_PX", "descending": True})
    assert [n["metrics"]["areaPx"] for n in by_area] == pytest.approx([900, 400, 400, 100, 25])
    # ties go by row in the same direction: c's 400 (saved later) before b's when descending
    names = ["well000.tif", "well002.tif", "well001.tif", "well000.tif", "well001.tif"]
    assert [n["imageName"] for n in by_area] == names
    assert by_area[0] == {
        "spheroidId": 2,  # a's second spheroid
        "imageId": a,
        "imageName": "well000.tif",
        "version": 1,
        "touchesBorder": False,
        "metrics": {
            "areaPx": pytest.approx(900),
            "areaUm2": pytest.approx(225),
            "equivalentDiameterPx": pytest.approx(33.85, abs=0.01),
            "circularity": pytest.approx(0.785, abs=0.001),
            "holeCount": 0,
        },
    }
    ascending = await _all_pages(api, owner, project_id, 3, order={"metric": "AREA_PX"})
    assert [n["metrics"]["areaPx"] for n in ascending] == pytest.approx([25, 100, 400, 400, 900])
    by_image = await _all_pages(api, owner, project_id, 4)
    assert [(n["imageId"], n["spheroidId"]) for n in by_image] == [(a, 1), (a, 2), (b, 1), (b, 2), (c, 1)]

    first = await _table(api, owner, project_id, first=2)
    assert first["totalCount"] == 5 and first["pageInfo"]["hasNextPage"]
    only_b = await _table(api, owner, project_id, filter={"imageIds": [b, elsewhere]})
    assert [n["node"]["metrics"]["areaPx"] for n in only_b["edges"]] == pytest.approx([400, 25])
    inside = await _table(api, owner, project_id, filter={"touchesBorder": False})
    assert inside["totalCount"] == 4


async def test_unknown_values_sort_last_both_ways_and_pages_never_repeat_a_row(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    known, unknown = await _images(api, project_id, 2, pixel_size_um=None)
    async with api.services.db.begin() as db:
        await db.execute(Image.__table__.update().where(Image.id == known).values(pixel_size_um=2.0))
    await _save(api, known, 0, [_square(10, 10, s) for s in (10, 20, 30)])
    await _save(api, unknown, 0, [_square(10, 10, s) for s in (15, 25)])
    for descending, expected in ((False, [400, 1600, 3600]), (True, [3600, 1600, 400])):
        nodes = await _all_pages(
            api, owner, project_id, 2, order={"metric": "AREA_UM2", "descending": descending}
        )
        assert [n["metrics"]["areaUm2"] for n in nodes] == pytest.approx([*expected, None, None])
        assert len({(n["imageId"], n["spheroidId"]) for n in nodes}) == 5


async def test_the_table_follows_saves_reviews_and_deletions(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    a, b = await _images(api, project_id, 2)
    await _save(api, a, 0, [_square(10, 10, 10), _square(40, 40, 10)])
    await _save(api, b, 0, [_square(10, 10, 20)])
    # a person's edit through the API replaces the image's rows with the new version's
    saved = await api.ok(SAVE, owner, id=a, base=1, sph=[{"exterior": _square(5, 5, 30)}])
    assert saved["saveSegmentation"]["__typename"] == "SegmentationSaveSuccess"
    nodes = await _all_pages(api, owner, project_id, 10)
    assert [(n["imageId"], n["version"], n["metrics"]["areaPx"]) for n in nodes] == [
        (a, 2, pytest.approx(900)),
        (b, 1, pytest.approx(400)),
    ]
    await api.ok(
        "mutation($i: Int!) { setReview(images: [{imageId: $i, version: 1}], status: ACCEPTED) "
        "{ __typename } }",
        owner,
        i=b,
    )
    accepted = await _table(api, owner, project_id, filter={"review": ["ACCEPTED"]})
    assert [e["node"]["imageId"] for e in accepted["edges"]] == [b] and accepted["totalCount"] == 1
    await api.ok("mutation($i: [Int!]!) { deleteImages(imageIds: $i) { __typename } }", owner, i=[b])
    assert [n["imageId"] for n in await _all_pages(api, owner, project_id, 10)] == [a]
    await api.ok("mutation($p: Int!) { deleteProject(id: $p) { message } }", owner, p=project_id)
    async with api.services.db() as db:
        assert list(await db.execute(select(spheroid_rows.c.id))) == []


async def test_a_page_costs_the_same_statements_for_5_and_200_spheroids(api: Api) -> None:
    owner = await api.user("owner")
    small, large = await api.project(owner, "small"), await api.project(owner, "large")
    for image_id in await _images(api, small, 1):
        await _save(api, image_id, 0, [_square(1 + 5 * k, 10, 4) for k in range(5)])
    for image_id in await _images(api, large, 10):
        await _save(api, image_id, 0, [_square(1 + 4 * k, 1 + 4 * k, 3) for k in range(20)])
    counts = []
    for project_id, size in ((small, 5), (large, 200)):
        cursor = (await _table(api, owner, project_id, first=1))["pageInfo"]["endCursor"]
        counter = StatementCounter(api.services.engine)
        page = await _table(api, owner, project_id, first=500, after=cursor, order=None)
        counts.append(counter.count)
        assert len(page["edges"]) == size - 1 and page["totalCount"] == size
    assert counts[0] == counts[1] <= 5, counts


async def test_bad_arguments_are_refused_by_name_and_strangers_see_nothing(api: Api) -> None:
    owner, stranger = await api.user("owner"), await api.user("stranger")
    project_id = await api.project(owner)
    (image_id,) = await _images(api, project_id, 1)
    await _save(api, image_id, 0, [_square(10, 10, 10), _square(30, 30, 10)])
    cursor = (await _table(api, owner, project_id, first=1))["pageInfo"]["endCursor"]
    for given, field in (
        ({"first": 501}, "first"),  # the largest page is 500
        ({"after": "not-a-cursor"}, "after"),
        ({"after": cursor, "order": {"metric": "CIRCULARITY"}}, "after"),  # made for another order
        ({"filter": {"imageIds": list(range(10_001))}}, "imageIds"),
    ):
        body = await api.gql(TABLE, owner, p=project_id, **{"first": 10, **given})
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and field in error["message"], body
    refused = await api.gql(TABLE, stranger, p=project_id, first=10)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_pixel_size_set_later_turns_the_tables_um_values_at_once(api: Api) -> None:
    """A biologist sets the pixel size after the segmentation: sorting by a µm metric must use it."""
    owner = await api.user("owner")
    project_id = await api.project(owner)
    late, known = await _images(api, project_id, 2, pixel_size_um=None)
    async with api.services.db.begin() as db:
        await db.execute(Image.__table__.update().where(Image.id == known).values(pixel_size_um=1.0))
    await _save(api, late, 0, [_square(10, 10, 10), _square(40, 40, 30)])  # 100 and 900 px²
    await _save(api, known, 0, [_square(10, 10, 25)])  # 625 px², 625 µm²

    update = "mutation($i: Int!, $px: Float) { updateImage(id: $i, pixelSizeUm: $px) { __typename } }"
    assert (await api.ok(update, owner, i=late, px=2.0))["updateImage"]["__typename"] == "ImageUpdateSuccess"

    nodes = await _all_pages(api, owner, project_id, 10, order={"metric": "AREA_UM2", "descending": True})
    assert [(n["imageId"], n["metrics"]["areaUm2"]) for n in nodes] == [
        (late, pytest.approx(3600)),
        (known, pytest.approx(625)),
        (late, pytest.approx(400)),
    ]
    shown = await api.ok(
        "query($i: Int!) { image(id: $i) { segmentation { spheroids { metrics { areaUm2 } } } } }",
        owner,
        i=late,
    )
    read = [s["metrics"]["areaUm2"] for s in shown["image"]["segmentation"]["spheroids"]]
    assert sorted(read) == pytest.approx([400, 3600])  # the table agrees with the segmentation read
