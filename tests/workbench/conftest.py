"""The workbench against the real server app (SQLite; the server's own tests cover PostgreSQL)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.server.conftest import (  # noqa: F401  (fixtures, registered by importing them)
    anyio_backend,
    api,
    services,
    settings,
    sqlite_template,
)


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:  # noqa: F811
    target = tmp_path / "db.sqlite3"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"
