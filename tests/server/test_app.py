"""Migrations, health, metrics and the command line, on SQLite and PostgreSQL."""

from __future__ import annotations

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
    spheroseg = (
        [sys.executable, "-m", "cluster.cli.main"]
        if False
        else [str(Path(sys.executable).parent / "spheroseg")]
    )
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
