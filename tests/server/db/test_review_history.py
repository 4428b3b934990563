"""Migration 0008 starts each image's review history with the verdict it already had, on SQLite and
PostgreSQL: no verdict given before the upgrade is lost from the history."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
from sqlalchemy import text

from server.db.engine import create_engine
from server.db.migrate import upgrade
from tests.server.starters import Postgres

pytestmark = pytest.mark.anyio

_names = itertools.count()
FEB_1 = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
FEB_2 = dt.datetime(2026, 2, 2, tzinfo=dt.UTC)

IMAGE = (
    "INSERT INTO images (id, project_id, name, content_hash, format, width, height, bit_depth, byte_size, "
    "segmentation_status, review_status, review_comment, reviewed_by, reviewed_at, current_version, "
    "created_at, updated_at) VALUES (:id, 1, :name, :hash, 'png', 8, 8, 8, 1, 'done', :status, :comment, "
    ":by, :at, :version, '2026-01-01', '2026-01-01')"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'lab.sqlite3'}"
    postgres: Postgres = request.getfixturevalue("postgres")
    name = f"review_history_{next(_names)}"
    postgres.psql(f"CREATE DATABASE {name}")
    return postgres.url(name)


async def test_upgrade_keeps_each_verdict_given_before_as_the_start_of_its_history(
    empty_database: str,
) -> None:
    engine = create_engine(empty_database)
    try:
        await upgrade(engine, "0005")
        async with engine.begin() as db:
            await db.execute(
                text(
                    "INSERT INTO users (id, username, password_hash, role, created_at) "
                    "VALUES (1, 'ana', 'x', 'member', '2026-01-01')"
                )
            )
            await db.execute(
                text(
                    "INSERT INTO projects (id, name, description, created_by, created_at, "
                    "updated_at) VALUES (1, 'Plate', '', 1, '2026-01-01', '2026-01-01')"
                )
            )
            rows = [
                {"id": 1, "status": "accepted", "comment": None, "by": 1, "at": FEB_1, "version": 2},
                {
                    "id": 2,
                    "status": "rejected",
                    "comment": "blurred",
                    "by": 1,
                    "at": FEB_2,
                    "version": 0,
                },
                {"id": 3, "status": "unreviewed", "comment": None, "by": None, "at": None, "version": 1},
            ]
            for row in rows:
                await db.execute(
                    text(IMAGE), {**row, "name": f"{row['id']}.png", "hash": f"{row['id']:064d}"}
                )
        await upgrade(engine)
        async with engine.connect() as db:
            history = (
                await db.execute(
                    text(
                        "SELECT image_id, reviewer_id, status, comment, version FROM reviews "
                        "ORDER BY image_id"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in history] == [(1, 1, "accepted", None, 2), (2, 1, "rejected", "blurred", 0)]
