"""The stored form of a version's spheroids: one record a line, so that an edit passes the records it does
not touch through as text; still plain JSON to every reader; versions written before (one line, ids last)
read the same. On PostgreSQL the records are compressed with LZ4 (migration 0007)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from cluster.metrics import measure
from cluster.segmentation import Spheroid, as_ring
from server.db.models import SegmentationVersion
from server.db.records import (
    StoredRecords,
    json_text,
    last_spheroid_ids,
    spheroid_of,
    spheroid_record,
    version_row,
)
from server.domain.versions import Provenance, SaveOrigin, StoredChanges
from tests.server.conftest import Api

pytestmark = pytest.mark.anyio


def _measured(x: int, size: int, spheroid_id: int) -> Spheroid:
    square = Spheroid(as_ring([(x, 2), (x + size, 2), (x + size, 2 + size), (x, 2 + size)]), id=spheroid_id)
    return square.with_metrics(measure(square, 0.5))


def _row(spheroids: list[Spheroid] | StoredChanges) -> SegmentationVersion:
    return version_row(1, 1, None, Provenance(), SaveOrigin.EDIT, spheroids)


def _squares() -> list[Spheroid]:
    return [_measured(2, 10, 1), _measured(20, 4, 2), _measured(40, 6, 3), _measured(50, 2, 4)]


def test_a_version_is_plain_json_one_record_a_line_with_its_totals() -> None:
    squares = _squares()
    row = _row(squares)
    stored = json_text(row.spheroids)

    assert json.loads(stored) == [spheroid_record(s) for s in squares]
    assert stored.count("\n") == 5 and stored.splitlines()[1].startswith('{"id": 1, ')
    assert (row.spheroid_count, row.area_sum_px) == (4, pytest.approx(100 + 16 + 36 + 4))
    diameters = sum(s.metrics.equivalent_diameter_px for s in squares if s.metrics is not None)
    assert row.diameter_sum_px == pytest.approx(diameters)
    assert [spheroid_of(r, 0.5) for r in json.loads(stored)][1].metrics == squares[1].metrics
    assert json_text([]) == "[]" and json_text(_row([]).spheroids) == "[]"


@pytest.mark.parametrize(
    ("replace", "delete", "add"),
    [
        ({2: 8}, set(), []),  # one reshaped in the middle
        ({1: 3, 4: 5}, set(), []),  # the first and the last
        ({}, {1}, []),
        ({}, {4}, [(30, 3, 9)]),  # the last deleted, one added
        ({3: 7}, {2, 4}, [(30, 3, 9), (10, 3, 10)]),
        ({}, {1, 2, 3, 4}, []),  # all deleted
        ({}, {1, 2, 3, 4}, [(30, 3, 9)]),
    ],
)
def test_an_edit_splices_the_stored_text_and_keeps_the_other_records_as_they_were(
    replace: dict[int, int], delete: set[int], add: list[tuple[int, int, int]]
) -> None:
    squares = _squares()
    first = _row(squares)
    stored = StoredRecords(json_text(first.spheroids), first)
    reshaped = {k: _measured(2 + 12 * (k - 1), size, k) for k, size in replace.items()}
    added = [_measured(x, size, k) for x, size, k in add]

    second = _row(StoredChanges(stored, reshaped, frozenset(delete), added))

    expected = [reshaped.get(s.id, s) for s in squares if s.id not in delete] + added  # type: ignore[arg-type]
    text = json_text(second.spheroids)
    assert json.loads(text) == [spheroid_record(s) for s in expected]
    kept_lines = json_text(first.spheroids).splitlines()[1:-1]
    for spheroid in expected:
        if spheroid in squares:  # untouched: the very same text
            line = next(line for line in kept_lines if line.startswith(f'{{"id": {spheroid.id},'))
            assert line.rstrip(",") in text
    assert second.spheroid_count == len(expected)
    assert second.area_sum_px == pytest.approx(sum(s.metrics.area_px for s in expected if s.metrics))


def test_spheroids_are_found_by_id_and_one_changed_is_told_apart() -> None:
    first = _row(_squares())
    stored = StoredRecords(json_text(first.spheroids), first)
    second = _row(StoredChanges(stored, {2: _measured(20, 8, 2)}, frozenset(), []))
    again = StoredRecords(json_text(second.spheroids), second)

    assert stored.get(1) == again.get(1) and stored.get(4) == again.get(4)
    assert stored.get(2) != again.get(2)
    assert stored.get(5) is None and stored.get(0) is None
    assert StoredRecords(None, None).get(1) is None


def test_a_version_stored_by_an_older_server_reads_the_same() -> None:
    """One JSON line, the id last (as migration 0006 added it): the same records, found by id."""
    records = [spheroid_record(_measured(2, 10, 1)), spheroid_record(_measured(20, 4, 12))]
    older = json.dumps([{**{k: v for k, v in r.items() if k != "id"}, "id": r["id"]} for r in records])
    row = SegmentationVersion(spheroid_count=2, area_sum_px=116.0, diameter_sum_px=0.0)

    stored = StoredRecords(older, row)
    edited = _row(StoredChanges(stored, {}, frozenset({1}), []))

    found = stored.get(12)
    assert found is not None and json.loads(found.record) == records[1]
    assert stored.get(1) is not None and stored.get(2) is None
    assert json.loads(json_text(edited.spheroids)) == [records[1]]
    assert (edited.spheroid_count, edited.area_sum_px) == (1, pytest.approx(16))


def test_the_ids_of_an_edits_new_spheroids_come_from_the_last_records() -> None:
    row = version_row(1, 1, None, Provenance(), SaveOrigin.EDIT, [_measured(2, 4, k) for k in (3, 9, 10)])

    assert last_spheroid_ids(row, 2) == [9, 10]
    assert last_spheroid_ids(row, 0) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # TOAST compression is PostgreSQL's
async def test_postgresql_compresses_stored_spheroids_with_lz4(api: Api) -> None:
    async with api.services.db() as db:
        method = await db.scalar(
            text(
                "SELECT attcompression::text FROM pg_attribute "
                "WHERE attrelid = 'segmentations'::regclass AND attname = 'spheroids'"
            )
        )
    assert method == "l"
