"""The stored form of a version's spheroids: one record a line, so that an edit passes the records it does
not touch through as text; still plain JSON to every reader; versions written before (one line, ids last)
read the same. On PostgreSQL the records are compressed with LZ4 (migration 0007)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from cluster.metrics import measure
from cluster.segmentation import Spheroid, as_ring
from server.db.records import (
    json_text,
    last_spheroid_ids,
    spheroid_of,
    spheroid_record,
    stored_spheroids,
    version_row,
)
from server.domain.versions import Provenance, SaveOrigin, StoredSpheroid
from tests.server.conftest import Api

pytestmark = pytest.mark.anyio


def _measured(x: int, size: int, spheroid_id: int) -> Spheroid:
    square = Spheroid(as_ring([(x, 2), (x + size, 2), (x + size, 2 + size), (x, 2 + size)]), id=spheroid_id)
    return square.with_metrics(measure(square, 0.5))


def _row(spheroids: list[Spheroid | StoredSpheroid]) -> str:
    row = version_row(1, 1, None, Provenance(), SaveOrigin.EDIT, spheroids)
    assert isinstance(row.spheroids, str)
    return json_text(row.spheroids)


def test_a_version_is_plain_json_one_record_a_line_with_its_totals() -> None:
    squares = [_measured(2, 10, 1), _measured(20, 4, 2), _measured(40, 6, 3)]
    row = version_row(1, 1, None, Provenance(), SaveOrigin.JOB, squares)
    stored = json_text(row.spheroids)

    assert json.loads(stored) == [spheroid_record(s) for s in squares]
    assert stored.count("\n") == 4 and stored.splitlines()[1].startswith('{"id": 1, ')
    assert (row.spheroid_count, row.area_sum_px) == (3, pytest.approx(100 + 16 + 36))
    assert row.diameter_sum_px == pytest.approx(sum(s.metrics.equivalent_diameter_px for s in squares))  # type: ignore[union-attr]
    assert [spheroid_of(r, 0.5) for r in json.loads(stored)][1].metrics == squares[1].metrics
    assert json_text([]) == "[]" and _row([]) == "[]"


def test_kept_records_are_written_back_as_the_same_text() -> None:
    first = _row([_measured(2, 10, 1), _measured(20, 4, 2), _measured(40, 6, 3)])
    kept = stored_spheroids(first)
    assert [s.id for s in kept] == [1, 2, 3]

    second = _row([kept[0], _measured(20, 8, 2), kept[2]])

    lines_before, lines_after = first.splitlines(), second.splitlines()
    assert lines_after[1] == lines_before[1] and lines_after[3] == lines_before[3]
    assert lines_after[2] != lines_before[2]
    assert stored_spheroids(second)[0] == kept[0] and stored_spheroids(second)[1] != kept[1]


def test_a_version_stored_by_an_older_server_reads_the_same() -> None:
    """One JSON line, the id last (as migration 0006 added it): the same records, in the order kept now."""
    records = [spheroid_record(_measured(2, 10, 1)), spheroid_record(_measured(20, 4, 2))]
    older = json.dumps([{**{k: v for k, v in r.items() if k != "id"}, "id": r["id"]} for r in records])

    kept = stored_spheroids(older)

    assert [s.id for s in kept] == [1, 2]
    assert [json.loads(s.record) for s in kept] == records
    assert kept == stored_spheroids(_row([*kept]))  # written one a line, the same records


def test_the_ids_of_an_edits_new_spheroids_come_from_the_last_records() -> None:
    row = version_row(1, 1, None, Provenance(), SaveOrigin.EDIT, [_measured(2, 4, k) for k in (3, 9, 10)])

    assert last_spheroid_ids(row, 2) == [9, 10]
    assert last_spheroid_ids(row, 0) == []


async def test_postgresql_compresses_stored_spheroids_with_lz4(api: Api, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("TOAST compression is PostgreSQL's")
    async with api.services.db() as db:
        method = await db.scalar(
            text(
                "SELECT attcompression::text FROM pg_attribute "
                "WHERE attrelid = 'segmentations'::regclass AND attname = 'spheroids'"
            )
        )
    assert method == "l"
