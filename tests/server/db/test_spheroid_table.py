"""Migration 0010 fills the spheroid table from the versions current then (SQLite and PostgreSQL), and its
metric columns are cluster's metric names."""

from __future__ import annotations

import importlib
import itertools
import json
from pathlib import Path

import pytest
from sqlalchemy import select, text

from cluster import SpheroidMetrics
from server.db.engine import create_engine
from server.db.migrate import upgrade
from server.db.models import Image, spheroid_rows
from tests.server.starters import Postgres

pytestmark = pytest.mark.anyio

_names = itertools.count()
SQUARE = [[10, 10], [20, 10], [20, 20], [10, 20]]
EDGE = [[0, 10], [5, 10], [5, 15], [0, 15]]
STORED = {"area_px": 100.0, "circularity": 0.785, "hole_count": 0}
"""Metrics as an older server stored them (some names missing)."""


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'lab.sqlite3'}"
    postgres: Postgres = request.getfixturevalue("postgres")
    name = f"backfill_{next(_names)}"
    postgres.psql(f"CREATE DATABASE {name}")
    return postgres.url(name)


def test_the_migrations_name_the_metrics_of_cluster() -> None:
    table = importlib.import_module("server.db.migrations.versions.0010_spheroid_table_export_jobs")
    confidence = importlib.import_module("server.db.migrations.versions.0011_spheroid_confidence")
    metrics = (*table.METRICS, *confidence.METRICS)
    assert SpheroidMetrics.names() == metrics
    assert [c.name for c in spheroid_rows.columns][-len(metrics) :] == list(metrics)


async def test_upgrading_fills_the_table_from_the_current_versions_only(empty_database: str) -> None:
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
            for image_id, current in ((1, 2), (2, 0)):
                await db.execute(
                    text(
                        "INSERT INTO images (id, project_id, name, content_hash, format, width, height, "
                        "bit_depth, byte_size, segmentation_status, review_status, current_version, "
                        "spheroid_count, area_sum_px, diameter_sum_px, created_at, updated_at) VALUES "
                        "(:id, 1, :name, :hash, 'png', 64, 48, 8, 1, 'done', 'unreviewed', :current, "
                        "0, 0, 0, '2026-01-01', '2026-01-01')"
                    ),
                    {
                        "id": image_id,
                        "name": f"{image_id}.png",
                        "hash": f"{image_id:064d}",
                        "current": current,
                    },
                )
            await db.execute(
                text(
                    "INSERT INTO jobs (project_id, method, parameters, status, total, done, failed, "
                    "cancelled, created_at) VALUES (1, 'classical', '{}', 'done', 1, 1, 0, 0, '2026-01-01')"
                )
            )
            versions = [
                (1, 1, [{"exterior": SQUARE, "holes": [], "metrics": STORED}] * 3),  # no longer current
                (
                    1,
                    2,
                    [
                        {"exterior": SQUARE, "holes": [], "metrics": STORED},
                        {"exterior": EDGE, "holes": [], "metrics": {}},  # saved unmeasured long ago
                    ],
                ),
                (2, 1, [{"exterior": SQUARE, "holes": [], "metrics": STORED}]),  # image 2 has none current
            ]
            for image_id, version, records in versions:
                await db.execute(
                    text(
                        "INSERT INTO segmentations (image_id, version, model_name, model_version, "
                        "parameters, spheroids, spheroid_count, area_sum_px, diameter_sum_px, created_at) "
                        "VALUES (:image, :version, '', '', '{}', :records, 1, 0, 0, '2026-01-01')"
                    ),
                    {"image": image_id, "version": version, "records": json.dumps(records)},
                )
        await upgrade(engine)
        async with engine.connect() as db:
            rows = [
                dict(row._mapping)
                for row in await db.execute(  # a row's version is its image's current one
                    select(spheroid_rows, Image.current_version.label("version"))
                    .join(Image, Image.id == spheroid_rows.c.image_id)
                    .order_by(spheroid_rows.c.spheroid_id)
                )
            ]
            kinds = list(await db.execute(text("SELECT kind FROM jobs")))
    finally:
        await engine.dispose()
    assert kinds == [("segment",)]  # jobs made before exports were jobs segment images
    # migration 0006 numbered the spheroids image by image, version by version: 1-3 went to version 1
    assert [(r["image_id"], r["version"], r["spheroid_id"]) for r in rows] == [(1, 2, 4), (1, 2, 5)]
    assert rows[0]["area_px"] == 100.0 and rows[0]["hole_count"] == 0 and rows[0]["solidity"] is None
    assert rows[0]["touches_border"] is False and rows[1]["touches_border"] is True
    assert rows[1]["area_px"] is None and rows[1]["project_id"] == 1
