"""Migration 0011 converts versions stored as full copies into shared record rows, in place, on SQLite and
PostgreSQL: every version reads back exactly as it was stored (records and order), unchanged records are
stored once, edits made afterwards work on the converted versions, and the downgrade gives the copies back."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from server.db.engine import create_engine, session_factory
from server.db.migrate import downgrade, upgrade
from server.db.models import spheroid_records
from server.db.segmentations import save_segmentation, stored_version
from server.db.spheroid_records import version_texts
from server.domain.versions import SaveOrigin, SegmentationSave, StoredChanges
from tests.server.starters import Postgres

pytestmark = pytest.mark.anyio

_names = itertools.count()


def _square(x: float, spheroid_id: int, area: float | None = None) -> dict[str, Any]:
    """A record as an older server stored it (the id last, as migration 0006 added it)."""
    metrics = {"area_px": area if area is not None else 100.0, "equivalent_diameter_px": 11.28}
    return {
        "exterior": [[x, 2], [x + 10, 2], [x + 10, 12], [x, 12]],
        "holes": [],
        "metrics": metrics,
        "id": spheroid_id,
    }


A, B, C, D = (_square(2 + 12 * k, k + 1) for k in range(4))
OLD_VERSIONS: dict[int, list[list[dict[str, Any]]]] = {
    1: [
        [A, B, C],  # a job's result
        [A, {**B, "metrics": {"area_px": 64.0}}, C],  # one changed in place
        [A, {**B, "metrics": {"area_px": 64.0}}, D],  # one deleted, one added (at the end)
        [D, A],  # a whole-image save in another order
        [],  # everything deleted
        [A, B, C],  # a revert
    ],
    2: [[_square(5, 1, 50.0)]],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'lab.sqlite3'}"
    postgres: Postgres = request.getfixturevalue("postgres")
    name = f"shared_{next(_names)}"
    postgres.psql(f"CREATE DATABASE {name}")
    return postgres.url(name)


async def _store_the_old_way(connection: Any) -> None:
    await connection.execute(
        text(
            "INSERT INTO users (id, username, password_hash, role, created_at) "
            "VALUES (1, 'ana', 'x', 'member', '2026-01-01')"
        )
    )
    await connection.execute(
        text(
            "INSERT INTO projects (id, name, description, created_by, created_at, updated_at) "
            "VALUES (1, 'Plate', '', 1, '2026-01-01', '2026-01-01')"
        )
    )
    for image_id, versions in OLD_VERSIONS.items():
        await connection.execute(
            text(
                "INSERT INTO images (id, project_id, name, content_hash, format, width, height, bit_depth, "
                "byte_size, segmentation_status, review_status, current_version, spheroid_count, "
                "area_sum_px, diameter_sum_px, last_spheroid_id, created_at, updated_at) VALUES "
                "(:id, 1, :name, :hash, 'png', 64, 48, 8, 1, 'done', 'unreviewed', :current, :count, 0, 0, "
                "4, '2026-01-01', '2026-01-01')"
            ),
            {
                "id": image_id,
                "name": f"{image_id}.png",
                "hash": f"{image_id:064d}",
                "current": len(versions),
                "count": len(versions[-1]),
            },
        )
        for version, records in enumerate(versions, start=1):
            await connection.execute(
                text(
                    "INSERT INTO segmentations (image_id, version, origin, model_name, model_version, "
                    "parameters, spheroids, spheroid_count, area_sum_px, diameter_sum_px, created_at) "
                    "VALUES (:image, :version, 'edit', '', '', '{}', :records, :count, 0, 0, '2026-01-01')"
                ),
                {
                    "image": image_id,
                    "version": version,
                    "records": json.dumps(records),
                    "count": len(records),
                },
            )


async def test_versions_stored_as_copies_read_back_equal_and_share_their_unchanged_records(
    empty_database: str,
) -> None:
    engine = create_engine(empty_database)
    try:
        await upgrade(engine, "0010")
        async with engine.begin() as connection:
            await _store_the_old_way(connection)
        await upgrade(engine)
        db = session_factory(engine)
        async with db() as session:
            read = {
                (image_id, version): [
                    json.loads(t) for t in await version_texts(session, image_id, version) or []
                ]
                for image_id, versions in OLD_VERSIONS.items()
                for version in range(1, len(versions) + 1)
            }
            stored_rows = await session.scalar(select(func.count()).select_from(spheroid_records))
        async with db.begin() as session:  # an edit of a converted version: B of the revert reshaped
            _, onto = await stored_version(session, 1, 6, [2])
            found = onto.get(2)
            assert found is not None and json.loads(found.record) == B
            await save_segmentation(
                session, SegmentationSave(1, 6, StoredChanges(onto, {}, frozenset({2}), []), SaveOrigin.EDIT)
            )
        async with db() as session:
            edited = [json.loads(t)["id"] for t in await version_texts(session, 1, 7) or []]
        await downgrade(engine, "0010")  # and back
        async with engine.connect() as connection:
            copies = {
                (image_id, version): json.loads(records) if isinstance(records, str) else records
                for image_id, version, records in await connection.execute(
                    text("SELECT image_id, version, spheroids FROM segmentations")
                )
            }
    finally:
        await engine.dispose()

    expected = {
        (image_id, version): records
        for image_id, versions in OLD_VERSIONS.items()
        for version, records in enumerate(versions, start=1)
    }
    assert read == expected
    # 3 of version 1, B changed, D added, 2 for the reorder, 3 for the revert, 1 of image 2
    assert stored_rows == 3 + 1 + 1 + 2 + 3 + 1 < sum(len(records) for records in expected.values())
    assert edited == [1, 3]
    assert {key: copies[key] for key in expected} == expected
    assert copies[(1, 7)] == [A, C]
