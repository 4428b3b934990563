"""The stored form of a version's spheroids: one record per spheroid, shared by every version that holds it
unchanged, so an edit writes only the records it changes; each version reads back whole and in order, old
versions included (SQLite and PostgreSQL). On PostgreSQL the records are compressed with LZ4."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, text

from cluster.metrics import measure
from cluster.segmentation import Spheroid, as_ring
from server.db.models import spheroid_records
from server.db.records import spheroid_of, spheroid_record
from server.db.segmentations import last_added_ids, save_segmentation, stored_version
from server.domain.versions import SaveOrigin, SegmentationSave, StoredChanges
from tests.server.conftest import Api, png_bytes
from tests.server.records import stored_records

pytestmark = pytest.mark.anyio


def _measured(x: int, size: int, spheroid_id: int | None) -> Spheroid:
    square = Spheroid(as_ring([(x, 2), (x + size, 2), (x + size, 2 + size), (x, 2 + size)]), id=spheroid_id)
    return square.with_metrics(measure(square, 0.5))


def _squares() -> list[Spheroid]:
    return [_measured(2, 10, 1), _measured(20, 4, 2), _measured(40, 6, 3), _measured(50, 2, 4)]


async def _image_with_squares(api: Api) -> int:
    """An image whose version 1 holds the four squares (ids 1 to 4)."""
    owner = await api.user("owner")
    project_id = await api.project(owner)
    response = await api.upload(owner, project_id, [("a.png", png_bytes())])
    image_id: int = response.json()["files"][0]["imageId"]
    async with api.services.db.begin() as db:
        await save_segmentation(db, SegmentationSave(image_id, 0, _squares(), SaveOrigin.IMPORT))
    return image_id


async def _rows(api: Api, image_id: int) -> list[tuple[int, int, int | None]]:
    """Every stored record row of the image: (id, first version, end version)."""
    async with api.services.db() as db:
        found = await db.execute(
            select(spheroid_records.c.id, spheroid_records.c.first_version, spheroid_records.c.end_version)
            .where(spheroid_records.c.image_id == image_id)
            .order_by(spheroid_records.c.id)
        )
        return [(row_id, first, end) for row_id, first, end in found]


async def _edit(
    api: Api, image_id: int, replace: dict[int, Spheroid], delete: set[int], add: list[Spheroid]
) -> None:
    async with api.services.db.begin() as db:
        version = 1
        _, onto = await stored_version(db, image_id, version, [*replace, *delete])
        changes = StoredChanges(onto, replace, frozenset(delete), add)
        await save_segmentation(db, SegmentationSave(image_id, version, changes, SaveOrigin.EDIT))


async def test_an_edit_of_one_spheroid_writes_one_record_and_shares_the_others(api: Api) -> None:
    image_id = await _image_with_squares(api)
    before = await _rows(api, image_id)

    await _edit(api, image_id, {2: _measured(20, 8, 2)}, set(), [])

    after = await _rows(api, image_id)
    assert len(before) == 4 and len(after) == 5  # one record added, none copied
    assert [row for row in after if row[2] == 2] == [(before[1][0], 1, 2)]  # the replaced one's run ends
    async with api.services.db() as db:
        stored = await stored_records(db, image_id)
    assert stored[1] == [spheroid_record(s) for s in _squares()]  # the old version reads as it was
    assert [r["id"] for r in stored[2]] == [1, 2, 3, 4] and stored[2][1]["metrics"]["area_px"] == 64


@pytest.mark.parametrize(
    ("replace", "delete", "add"),
    [
        ({2: 8}, set(), []),  # one reshaped in the middle
        ({1: 3, 4: 5}, set(), []),  # the first and the last
        ({}, {1}, []),
        ({}, {4}, [(30, 3)]),  # the last deleted, one added
        ({4: 3}, set(), [(30, 3)]),  # the last reshaped, one added after it
        ({3: 7}, {2, 4}, [(30, 3), (10, 3)]),
        ({}, {1, 2, 3, 4}, []),  # all deleted
        ({}, {1, 2, 3, 4}, [(30, 3)]),
    ],
)
async def test_an_edit_reads_back_in_order_with_its_totals_and_the_base_stays(
    api: Api, replace: dict[int, int], delete: set[int], add: list[tuple[int, int]]
) -> None:
    image_id = await _image_with_squares(api)
    squares = _squares()
    reshaped = {k: _measured(2 + 12 * (k - 1), size, k) for k, size in replace.items()}
    added = [_measured(x, size, None) for x, size in add]

    await _edit(api, image_id, reshaped, delete, added)

    new = [_measured(x, size, 5 + k) for k, (x, size) in enumerate(add)]
    expected = [reshaped.get(s.id, s) for s in squares if s.id not in delete] + new  # type: ignore[arg-type]
    async with api.services.db() as db:
        stored = await stored_records(db, image_id)
        row, _ = await stored_version(db, image_id, 2, [])
        assert row is not None
        assert await last_added_ids(db, row, len(add)) == [s.id for s in new]
    assert stored[1] == [spheroid_record(s) for s in squares]
    assert stored[2] == [spheroid_record(s) for s in expected]
    assert row.spheroid_count == len(expected)
    assert row.area_sum_px == pytest.approx(sum(s.metrics.area_px for s in expected if s.metrics))
    assert [spheroid_of(r, 0.5).metrics for r in stored[2]] == [s.metrics for s in expected]


async def test_spheroids_are_found_by_id_and_one_changed_is_told_apart(api: Api) -> None:
    image_id = await _image_with_squares(api)
    await _edit(api, image_id, {2: _measured(20, 8, 2)}, set(), [])

    async with api.services.db() as db:
        _, first = await stored_version(db, image_id, 1, [1, 2, 4, 5])
        _, second = await stored_version(db, image_id, 2, [1, 2, 4, 5])
        missing, nothing = await stored_version(db, image_id, 7, [1])

    assert first.get(1) == second.get(1) and first.get(4) == second.get(4)
    assert first.get(2) != second.get(2)
    assert first.get(5) is None and first.get(3) is None  # not asked for
    assert missing is None and nothing.get(1) is None
    found = second.get(2)
    assert found is not None and json.loads(found.record)["metrics"]["area_px"] == 64


async def test_a_whole_image_save_closes_every_record_and_reads_back_in_its_own_order(api: Api) -> None:
    image_id = await _image_with_squares(api)
    reordered = list(reversed(_squares()))
    async with api.services.db.begin() as db:
        await save_segmentation(db, SegmentationSave(image_id, 1, reordered, SaveOrigin.REVERT))

    async with api.services.db() as db:
        stored = await stored_records(db, image_id)
        open_rows = await db.scalar(
            select(func.count())
            .select_from(spheroid_records)
            .where(spheroid_records.c.image_id == image_id, spheroid_records.c.end_version.is_(None))
        )
    assert [r["id"] for r in stored[1]] == [1, 2, 3, 4] and [r["id"] for r in stored[2]] == [4, 3, 2, 1]
    assert open_rows == 4


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # TOAST compression is PostgreSQL's
async def test_postgresql_compresses_stored_spheroids_with_lz4(api: Api) -> None:
    async with api.services.db() as db:
        method = await db.scalar(
            text(
                "SELECT attcompression::text FROM pg_attribute "
                "WHERE attrelid = 'spheroid_records'::regclass AND attname = 'record'"
            )
        )
    assert method == "l"
