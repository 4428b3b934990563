"""``spheroseg server``: ``serve`` (and ``serve --offline``), ``bootstrap-token``, ``migrate``,
``create-user``, ``disable-user``, ``enable-user``, ``rotate-signing-key`` and ``schema``."""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import Any

import click

from server.settings import Settings

__all__ = ["server"]


@click.group()
def server() -> None:
    """Run the GraphQL server (settings from SPHEROSEG_* variables or the TOML file in SPHEROSEG_CONFIG)."""


@server.command()
@click.option("--host", default=None, help="Address to listen on.  [default: 127.0.0.1]")
@click.option(
    "--port", default=None, type=int, help="Port to listen on; 0: a free one.  [default: 8000; --offline: 0]"
)
@click.option(
    "--offline",
    is_flag=True,
    help="The desktop's own server: migrate, make the local user, listen on 127.0.0.1, print one JSON "
    "line when ready (its URL and a one-time bootstrap token), one server per data folder.",
)
@click.option(
    "--parent-pid",
    type=int,
    default=None,
    help="With --offline: stop when this process (the desktop) has ended.",
)
def serve(host: str | None, port: int | None, offline: bool, parent_pid: int | None) -> None:
    """Serve GraphQL at /graphql (run `spheroseg server migrate` first, except with --offline).

    \b
    /graphql                       queries and mutations; subscriptions over WebSocket (graphql-transport-ws)
    /api/projects/{id}/images      uploads (multipart field "files")
    /img/...                       signed image URLs the API hands out (originals, thumbnails, previews)
    /health/live, /health/ready    probes; /metrics for Prometheus

    Segmentation jobs run on a local Dask cluster started on first use (or by an admin: startCluster),
    or on SPHEROSEG_SCHEDULER.
    In production (SPHEROSEG_ENVIRONMENT=production) SPHEROSEG_SECRET_KEY must be set; in development a
    key is made once and kept in the data directory (SPHEROSEG_DATA_DIR).
    With --port 0 a free port is chosen; the log says which.

    \b
    --offline: the server the desktop starts on the user's machine, on the data folder
    (SPHEROSEG_DATA_DIR). Standard output carries one JSON line, logs go to standard error:
      {"event": "ready", "url": ..., "bootstrap_token": ..., "pid": ..., "data_dir": ..., ...}
      {"event": "already_running", "url": ..., "pid": ..., ...}  (exit status 3)
    The token works once, within 5 minutes: the exchangeBootstrapToken mutation gives a session.
    The running server is named in <data folder>/server.lock; `spheroseg server bootstrap-token`
    gives a new token for it. Exit status: 0 stopped (SIGTERM, or the --parent-pid process ended),
    1 a setting or the data folder is wrong, 3 another server runs on the data folder.

    Every URL the API hands out is absolute: on SPHEROSEG_PUBLIC_URL, else on the host each request came
    to. Behind a reverse proxy, set SPHEROSEG_PUBLIC_URL, or SPHEROSEG_FORWARDED_ALLOW_IPS to the proxy's
    address (its X-Forwarded-Proto is then trusted) and have it pass the Host header on.
    """
    if offline:
        _serve_offline(host, port, parent_pid)
        return
    if parent_pid is not None:
        raise click.UsageError("--parent-pid goes with --offline")
    host = host or "127.0.0.1"
    port = 8000 if port is None else port
    import uvicorn

    from server.app import create_app
    from server.exceptions import ConfigError
    from server.logs import log_config
    from server.runtime import settle_heap

    try:
        app = create_app(Settings())
    except ConfigError as error:  # a missing or wrong setting: one line naming it, no traceback
        raise click.ClickException(str(error)) from error
    settle_heap()
    # No per-message compression on WebSockets: events are small JSON, and each connection's zlib state
    # (~100 KiB) and the compression of every event for every subscriber cost more than they save.
    # The app refuses WebSocket messages over max_request_bytes; ws_max_size stops uvicorn buffering
    # a larger one first (its default is 16 MiB).
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        log_config=log_config(),
        **proxy_options(app.state.services.settings),
        ws_per_message_deflate=False,
        ws_max_size=app.state.services.settings.max_request_bytes,
    )


class _AlreadyRunning(click.ClickException):
    exit_code = 3  # server.offline.EXIT_ALREADY_RUNNING


def _serve_offline(host: str | None, port: int | None, parent_pid: int | None) -> None:
    from server.exceptions import ServerError
    from server.instance import AlreadyRunningError
    from server.offline import OFFLINE_HOST, serve_offline

    if host not in (None, OFFLINE_HOST):
        raise click.UsageError(f"--offline listens on {OFFLINE_HOST} only")
    try:
        serve_offline(Settings(), port or 0, parent_pid)
    except AlreadyRunningError as error:
        raise _AlreadyRunning(str(error)) from error
    except (ServerError, OSError) as error:  # a setting, the data folder or the port: one line naming it
        raise click.ClickException(str(error)) from error


@server.command("bootstrap-token")
def bootstrap_token() -> None:
    """Print a new one-time sign-in token for the offline server running on this data folder.

    One JSON line: {"event": "bootstrap", "url": ..., "bootstrap_token": ..., "pid": ..., ...}.
    Exchange the token within 5 minutes with the exchangeBootstrapToken mutation. Whoever can read the
    data folder (SPHEROSEG_DATA_DIR) is its user, so nothing else is asked.
    """
    import json

    from server.offline import issue_token_for_running

    try:
        line = issue_token_for_running(Settings())
    except LookupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(line))


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for forwarded headers: trusted only from ``settings.forwarded_allow_ips``."""
    allowed = settings.forwarded_allow_ips.strip()
    return {"proxy_headers": bool(allowed), "forwarded_allow_ips": allowed or None}


@server.command()
def migrate() -> None:
    """Create or upgrade the database schema to the newest version."""
    from server.services.installation import migrate as migrate_database

    revision = asyncio.run(migrate_database(Settings().database_url))
    click.echo(f"database at revision {revision}")


@server.command("create-user")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user(username: str, admin: bool, password_stdin: bool) -> None:
    """Create a user; the password is asked for (or read from stdin).

    A password needs at least 10 characters, not only spaces, and may not be the user name.
    """
    from server.db.engine import create_engine, session_factory
    from server.domain.auth import PasswordPolicy, Passwords
    from server.domain.errors import InvalidInputError, UsernameTakenError
    from server.domain.roles import UserRole
    from server.services import users

    settings = Settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {username}: ")
    passwords: Passwords = Passwords(
        PasswordPolicy(time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib)
    )
    role = UserRole.ADMIN if admin else UserRole.MEMBER

    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:  # by=None: whoever runs this holds the database's credentials, so acts as the operator
            await users.create_user(session_factory(engine), passwords, None, username, password, role)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except UsernameTakenError as error:
        raise click.ClickException(f"user {username!r} exists already") from error
    except InvalidInputError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"created {'administrator' if admin else 'user'} {username}")


@server.command("disable-user")
@click.argument("username")
def disable_user(username: str) -> None:
    """Disable a user: no login, every session revoked, open subscriptions ended.

    Servers on PostgreSQL are told at once; a server on SQLite notices within
    SPHEROSEG_SESSION_RECHECK_SECONDS. `enable-user` undoes it (the password stays the same).
    """
    problem = asyncio.run(_set_disabled(Settings(), username, disabled=True))
    click.echo(f"disabled {username}" + (f"; {problem}" if problem else ""))


@server.command("enable-user")
@click.argument("username")
def enable_user(username: str) -> None:
    """Let a disabled user log in again, with the same password."""
    asyncio.run(_set_disabled(Settings(), username, disabled=False))
    click.echo(f"enabled {username}")


async def _set_disabled(settings: Settings, username: str, *, disabled: bool) -> str | None:
    """Disable or enable ``username``; why the running servers were not told at once, if they were not."""
    from server.db.engine import create_engine, session_factory
    from server.domain.errors import UnknownUserError
    from server.services import users

    engine = create_engine(settings.database_url)
    try:
        user_id = await users.set_disabled(session_factory(engine), username, disabled=disabled)
    except UnknownUserError as error:
        raise click.ClickException(error.message) from error
    finally:
        await engine.dispose()
    return await _tell_servers(settings, user_id) if disabled else None


async def _tell_servers(settings: Settings, user_id: int) -> str | None:
    """Publish that every session of ``user_id`` ended, where the servers' bus is reachable from here."""
    from server.events import PostgresEventBus, session_ended
    from server.events.postgres import is_postgres_url
    from server.exceptions import EventBusError

    recheck = f"open connections end within {settings.session_recheck_seconds:g} s"
    if not is_postgres_url(settings.database_url):
        return f"a server on SQLite cannot be told from here: {recheck}"
    bus = PostgresEventBus(settings.database_url)
    try:
        await bus.start()
        await bus.publish(session_ended(user_id))
    except EventBusError as error:
        return f"the servers could not be told ({error}): {recheck}"
    finally:
        await bus.close()
    return None


@server.command("rotate-signing-key")
def rotate_signing_key() -> None:
    """Sign image URLs with a new key from now on; URLs handed out before are refused.

    Use it after removing a member, whose URLs would otherwise work until they expire (up to
    SPHEROSEG_DELIVERY_URL_TTL_SECONDS plus a day). The new key is kept in the database, so every replica
    takes it up (within SPHEROSEG_DELIVERY_SIGNING_KEY_REFRESH_SECONDS); clients ask for fresh URLs. A CDN
    may keep serving what it cached until it is purged.
    """
    from server.db.engine import create_engine, session_factory
    from server.services.signing import rotate_signing_key as rotate

    settings = Settings()

    async def run() -> str:
        engine = create_engine(settings.database_url)
        try:
            return await rotate(session_factory(engine))
        finally:
            await engine.dispose()

    key_id = asyncio.run(run())
    wait = settings.delivery_signing_key_refresh_seconds
    click.echo(f"image URLs are now signed with key {key_id}; running servers take it up within {wait:.0f} s")


@server.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the schema to this file (server/schema.graphql in the source tree) instead of printing it.",
)
def schema(out: str | None) -> None:
    """Print the GraphQL schema in the schema language, for clients to check their operations against.

    The source tree keeps it as server/schema.graphql; a test fails when that file and the code disagree,
    so after changing the API run: spheroseg server schema --out server/schema.graphql
    """
    from pathlib import Path

    from server.api.schema import schema_text

    text = schema_text()
    if out is None:
        click.echo(text, nl=False)
        return
    Path(out).write_text(text, encoding="utf-8")
    click.echo(f"wrote the schema to {out}", err=True)
