"""Fixtures: PostgreSQL and moto started once per session; every app test runs on SQLite and PostgreSQL.

Each test gets a fresh database: a copy of a migrated SQLite template, or a PostgreSQL database created
from a migrated template database (both made once, with the real Alembic migrations).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.app import create_app
from server.composition import Services
from server.db.engine import create_engine
from server.db.migrate import upgrade
from server.settings import Settings
from spheroseg_testing import start_moto
from tests.server.starters import Postgres, start_postgres

PASSWORD = "correct horse battery"
_counter = itertools.count()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _migrate(url: str) -> None:
    async def run() -> None:
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    try:
        server = start_postgres()
    except (FileNotFoundError, OSError) as error:
        # CI installs PostgreSQL and sets this, so a missing server there fails instead of skipping.
        if os.environ.get("SPHEROSEG_REQUIRE_SERVICES"):
            pytest.fail(f"PostgreSQL 15 is required (SPHEROSEG_REQUIRE_SERVICES is set): {error}")
        pytest.skip(f"PostgreSQL 15 is not available here: {error}")
    try:
        server.psql("CREATE DATABASE template_spheroseg")
        _migrate(server.url("template_spheroseg"))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    _migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        target = tmp_path / "db.sqlite3"
        shutil.copyfile(sqlite_template, target)
        return f"sqlite+aiosqlite:///{target}"
    postgres: Postgres = request.getfixturevalue("postgres")
    name = f"test_{next(_counter)}"
    postgres.psql(f"CREATE DATABASE {name} TEMPLATE template_spheroseg")
    return postgres.url(name)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    moto = start_moto()
    try:
        yield moto.endpoint
    finally:
        moto.stop()


def make_settings(database_url: str, storage_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "storage_url": storage_url,
        "secret_key": "test-secret",
        "password_time_cost": 1,
        "password_memory_kib": 1024,
        "environment": "development",
        # thumbnails in the app's threads: a process pool per test would cost seconds (one test uses it)
        "delivery_background_processes": 0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, str(tmp_path / "blobs"))


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    built = Services.create(settings)
    await built.bus.start()  # as the app's lifespan does (ASGITransport runs none); no dispatcher here
    yield built
    await built.close()


class Api:
    """A GraphQL client on the in-process app, with helpers for users and tokens."""

    def __init__(self, client: httpx.AsyncClient, services: Services) -> None:
        self.client = client
        self.services = services

    async def gql(self, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        body: dict[str, Any] = response.json()
        return body

    async def ok(self, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        body = await self.gql(query, token, **variables)
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def user(self, username: str, admin: bool = False) -> str:
        """Create a user straight in the database and return a session token for them."""
        from server.db import users

        async with self.services.db.begin() as db:
            await users.create_user(
                db, username, self.services.passwords.hash(PASSWORD), "admin" if admin else "member"
            )
        data = await self.ok(
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) "
            "{ __typename ... on LoginSuccess { token } } }",
            u=username,
            p=PASSWORD,
        )
        token: str = data["login"]["token"]
        return token

    async def project(self, token: str, name: str = "Plate 1") -> int:
        data = await self.ok(
            "mutation($n: String!) { createProject(input: {name: $n}) "
            "{ ... on ProjectSuccess { project { id } } } }",
            token,
            n=name,
        )
        project_id: int = data["createProject"]["project"]["id"]
        return project_id

    async def share(self, owner: str, project_id: int, username: str, role: str) -> None:
        await self.ok(
            "mutation($id: Int!, $u: String!, $r: ProjectRole!) "
            "{ addProjectMember(id: $id, username: $u, role: $r)"
            " { __typename } }",
            owner,
            id=project_id,
            u=username,
            r=role,
        )

    async def upload(self, token: str, project_id: int, files: list[tuple[str, bytes]]) -> httpx.Response:
        return await self.client.post(
            f"/api/projects/{project_id}/images",
            files=[("files", (name, data, "application/octet-stream")) for name, data in files],
            headers={"Authorization": f"Bearer {token}"},
        )


@contextlib.asynccontextmanager
async def client_of(services: Services) -> AsyncIterator[Api]:
    """The real app over ``services``, in-process, with a client talking to it (no network)."""
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Api(client, services)


@contextlib.asynccontextmanager
async def app_with(settings: Settings) -> AsyncIterator[Api]:
    """:func:`client_of` an app built from ``settings``, closed afterwards."""
    services = Services.create(settings)
    try:
        async with client_of(services) as api:
            yield api
    finally:
        await services.close()


@pytest.fixture
async def api(services: Services) -> AsyncIterator[Api]:
    async with client_of(services) as api:
        yield api


def png_bytes(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(height, width), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
