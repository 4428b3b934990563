"""Migrations, health, metrics and the command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from server.db.engine import create_engine
from server.db.migrate import current_revision, head_revision
from server.db.models import Base
from tests.server.conftest import Api

pytestmark = pytest.mark.anyio


async def test_migrations_build_exactly_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        assert diff == []
    finally:
        await engine.dispose()


async def test_health_and_metrics(api: Api) -> None:
    assert (await api.client.get("/health/live")).json() == {"status": "live"}
    ready = await api.client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["database"] == "ok" and ready.json()["storage"] == "ok"
    await api.gql("query Me { me { id } }")
    text = (await api.client.get("/metrics")).text
    assert 'spheroseg_graphql_requests_total{operation="Me"} 1.0' in text
    assert 'spheroseg_graphql_errors_total{operation="Me"} 1.0' in text


async def test_ready_fails_when_storage_is_unwritable(api: Api, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    api.services.store.root = blocker / "sub"  # type: ignore[attr-defined]
    ready = await api.client.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["storage"].startswith("unreachable")


def test_cli_migrate_create_user_and_login(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SPHEROSEG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}",
        "SPHEROSEG_STORAGE_URL": str(tmp_path / "blobs"),
        "SPHEROSEG_PASSWORD_MEMORY_KIB": "1024",
    }
    spheroseg = [str(Path(sys.executable).parent / "spheroseg")]
    migrated = subprocess.run(
        [*spheroseg, "server", "migrate"], env=env, capture_output=True, text=True, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    assert f"revision {head_revision()}" in migrated.stdout
    created = subprocess.run(
        [*spheroseg, "server", "create-user", "lab-admin", "--admin", "--password-stdin"],
        env=env,
        input="long enough password\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    again = subprocess.run(
        [*spheroseg, "server", "create-user", "lab-admin", "--password-stdin"],
        env=env,
        input="long enough password\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode != 0 and "exists already" in again.stderr
    short = subprocess.run(
        [*spheroseg, "server", "create-user", "bob", "--password-stdin"],
        env=env,
        input="short\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert short.returncode != 0 and "password" in short.stderr
    for password, rule in ((" " * 10, "only spaces"), ("Lab-Manager", "not be the user name")):
        weak = subprocess.run(
            [*spheroseg, "server", "create-user", "lab-manager", "--password-stdin"],
            env=env,
            input=password + "\n",
            capture_output=True,
            text=True,
            check=False,
        )
        assert weak.returncode != 0 and rule in weak.stderr, weak.stderr


def test_settings_from_environment_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from server.settings import Settings

    config = tmp_path / "server.toml"
    config.write_text('storage_url = "s3://lab-bucket/seg"\nmax_cost = 123\nenvironment = "production"\n')
    monkeypatch.setenv("SPHEROSEG_CONFIG", str(config))
    monkeypatch.setenv("SPHEROSEG_MAX_COST", "456")
    settings = Settings()
    assert settings.storage_url == "s3://lab-bucket/seg" and settings.max_cost == 456
    assert not settings.graphiql and not settings.introspection_enabled


def test_the_data_folder_setting_moves_everything_the_server_keeps(tmp_path: Path) -> None:
    """One setting says where an embedded server keeps its database, images and key (the offline mode and
    a second instance for a test both rely on it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPHEROSEG_")}
    env["SPHEROSEG_DATA_DIR"] = str(tmp_path / "data")
    spheroseg = str(Path(sys.executable).parent / "spheroseg")
    migrated = subprocess.run([spheroseg, "server", "migrate"], env=env, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "data" / "spheroseg.sqlite3").is_file()


async def test_upgrading_an_existing_sqlite_database_keeps_every_row_and_stops_id_reuse(
    tmp_path: Path,
) -> None:
    """Migration 0005 rebuilds SQLite tables with AUTOINCREMENT: rows, ids, foreign keys, the counters'
    triggers and indexes all survive, and a deleted image's id is not given to the next one."""
    import sqlite3

    from server.db.migrate import upgrade

    path = tmp_path / "lab.sqlite3"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine, "0004")
    finally:
        await engine.dispose()
    image = (
        "INSERT INTO images (id, project_id, name, content_hash, format, width, height, bit_depth, "
        "byte_size, segmentation_status, review_status, current_version, spheroid_count, area_sum_px, "
        "diameter_sum_px, created_at, updated_at) VALUES (?, 1, ?, ?, 'png', 8, 8, 8, 1, 'done', "
        "'unreviewed', 1, 2, 3.0, 4.0, '2026-01-01', '2026-01-01')"
    )
    with contextlib.closing(sqlite3.connect(path)) as lab, lab:
        lab.execute("PRAGMA foreign_keys=ON")
        lab.execute("INSERT INTO users VALUES (1, 'ana', 'x', 'member', '2026-01-01')")
        lab.execute("INSERT INTO projects VALUES (1, 'Plate', '', 1, '2026-01-01', '2026-01-01')")
        lab.execute("INSERT INTO project_members VALUES (1, 1, 'owner')")
        for image_id in (1, 2, 3):
            lab.execute(image, (image_id, f"{image_id}.png", f"{image_id:064d}"))
            lab.execute(
                "INSERT INTO segmentations (image_id, version, model_name, model_version, parameters, "
                "spheroids, spheroid_count, area_sum_px, diameter_sum_px, created_at) "
                "VALUES (?, 1, '', '', '{}', '[]', 2, 3.0, 4.0, '2026-01-01')",
                (image_id,),
            )
    with contextlib.closing(sqlite3.connect(path)) as lab:
        before = lab.execute("SELECT * FROM project_stats").fetchall()
        indexes = lab.execute(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger')"
        ).fetchall()
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()
    with contextlib.closing(sqlite3.connect(path)) as lab, lab:
        lab.execute("PRAGMA foreign_keys=ON")
        assert lab.execute("SELECT image_id FROM segmentations ORDER BY image_id").fetchall() == [
            (1,),
            (2,),
            (3,),
        ]
        assert lab.execute("SELECT * FROM project_stats").fetchall() == before
        after = lab.execute(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger')"
        ).fetchall()
        assert set(indexes) <= set(after)  # every one kept as it was (later migrations add their own)
        lab.execute("DELETE FROM images WHERE id = 3")
        assert lab.execute("SELECT count(*) FROM segmentations").fetchone() == (2,)  # cascades still work
        lab.execute(image, (None, "4.png", "4" * 64))  # no id given: SQLite chooses it
        assert lab.execute("SELECT max(id) FROM images").fetchone() == (4,)  # not 3 again
        assert lab.execute("SELECT image_count FROM project_stats").fetchone() == (3,)  # triggers kept
        assert lab.execute("PRAGMA foreign_key_check").fetchall() == []
