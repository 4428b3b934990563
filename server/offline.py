"""The offline start: ``spheroseg server serve --offline``, the server the desktop runs on the user's machine.

In order, it:

1. takes the data folder's lock (:mod:`server.instance`); while another server holds it, it prints an
   ``already_running`` line and exits with :data:`EXIT_ALREADY_RUNNING`;
2. migrates the database (:func:`server.services.installation.migrate`) and makes the local user, an
   administrator named as the operating system's user, if missing;
3. listens on 127.0.0.1, on a free port unless one is given, with production's defaults (no GraphiQL, no
   introspection unless ``SPHEROSEG_INTROSPECTION`` says so) and the secret key kept in the data folder;
4. once it serves, writes its URL into the lock file and prints the ready line;
5. stops cleanly (the app's lifespan ends: dispatcher stopped, cluster closed, lock file removed) on
   SIGTERM or SIGINT, or when the process ``--parent-pid`` names has died (polled every
   :data:`PARENT_POLL_SECONDS`).

Standard output carries one JSON line and nothing else (logs, and whatever a library or a child process
prints, go to standard error)::

    {"event": "ready", "url": "http://127.0.0.1:53817", "bootstrap_token": "…", "pid": 4242,
     "data_dir": "/home/ana/.local/share/spheroseg", "username": "ana", "lock_file": "…/server.lock"}
    {"event": "already_running", "url": "http://127.0.0.1:53817", "pid": 4242, "parent_pid": 4200,
     "data_dir": "…", "lock_file": "…/server.lock",
     "message": "another SpheroSeg server (pid 4242, …) is running …"}

The bootstrap token works once, for :data:`server.services.sessions.BOOTSTRAP_LIFETIME`, exchanged with the
``exchangeBootstrapToken`` mutation. A client that finds a server running (the lock file) gets a new one
with ``spheroseg server bootstrap-token``: whoever can read the data folder is the user it belongs to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import uvicorn

from server.domain.auth import PasswordPolicy, Passwords
from server.exceptions import ServerError
from server.instance import LOCK_FILE, AlreadyRunningError, InstanceLock, running_instance
from server.keys import with_secret_key
from server.settings import Settings

__all__ = [
    "EXIT_ALREADY_RUNNING",
    "OFFLINE_HOST",
    "PARENT_POLL_SECONDS",
    "issue_token_for_running",
    "offline_settings",
    "serve_offline",
]

logger = logging.getLogger(__name__)

OFFLINE_HOST = "127.0.0.1"
EXIT_ALREADY_RUNNING = 3
"""Another server holds the data folder; the ``already_running`` line and the lock file name it."""
PARENT_POLL_SECONDS = 0.5


def offline_settings(settings: Settings) -> Settings:
    """``settings`` as the offline server runs them: production's defaults, the secret key kept in the data
    folder, introspection off unless asked for."""
    production = settings.model_copy(update={"environment": "production"})
    return with_secret_key(production, keep=True)


def serve_offline(settings: Settings, port: int, parent_pid: int | None) -> None:
    """Run the offline server until it is stopped or its parent dies. :class:`AlreadyRunningError` (after
    the ``already_running`` line) while another server holds the data folder."""
    ready_out = _own_stdout()
    data_dir = Path(settings.data_dir)
    lock = InstanceLock(data_dir, parent_pid)  # makes the data folder, if missing, readable by its user only
    try:
        lock.acquire()
    except AlreadyRunningError as error:
        running = error.running
        _say(
            ready_out,
            event="already_running",
            url=running.get("url"),
            pid=running.get("pid"),
            parent_pid=running.get("parent_pid"),
            data_dir=str(data_dir),
            lock_file=str(error.path),
            message=str(error),
        )
        raise
    try:
        settings = offline_settings(settings)
        username = asyncio.run(_prepare(settings))
        listener = _listen(port)
        url = f"http://{OFFLINE_HOST}:{listener.getsockname()[1]}"
        settings = settings.model_copy(update={"public_url": settings.public_url or url})
        asyncio.run(_serve(settings, listener, url, username, lock, ready_out, parent_pid))
    finally:
        lock.release()


async def _prepare(settings: Settings) -> str:
    """Migrate the database and make the local user; the local user's name."""
    from server.db.engine import create_engine, session_factory
    from server.services.installation import ensure_local_user, local_username, migrate

    revision = await migrate(settings.database_url)
    logger.info("database at revision %s", revision)
    username = local_username()
    engine = create_engine(settings.database_url)
    try:
        await ensure_local_user(session_factory(engine), _passwords(settings), username)
    finally:
        await engine.dispose()
    return username


async def _serve(
    settings: Settings,
    listener: socket.socket,
    url: str,
    username: str,
    lock: InstanceLock,
    ready_out: IO[str],
    parent_pid: int | None,
) -> None:
    from server.app import create_app
    from server.logs import log_config
    from server.services.sessions import issue_bootstrap_token

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        log_level="info",
        log_config=_stderr_only(log_config()),
        proxy_headers=False,
        ws_per_message_deflate=False,
        ws_max_size=settings.max_request_bytes,
    )
    server = _QuietServer(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if serving.done():
            await serving  # it failed to start: its error, or it stopped before serving
            raise ServerError("the server did not start; the log above says why")
        await asyncio.sleep(0.02)
    token = await issue_bootstrap_token(app.state.services.db, username)
    lock.write(url)
    _say(
        ready_out,
        event="ready",
        url=url,
        bootstrap_token=token,
        pid=os.getpid(),
        data_dir=str(lock.data_dir),
        username=username,
        lock_file=str(lock.path),
    )
    watch = asyncio.create_task(_watch_parent(server, parent_pid)) if parent_pid is not None else None
    try:
        await serving
    finally:
        if watch is not None:
            watch.cancel()


class _QuietServer(uvicorn.Server):
    """uvicorn's server, except that a SIGTERM or SIGINT it stopped for is not raised again afterwards
    (uvicorn does, which would kill the process before it removes its lock file): it exits with 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


async def _watch_parent(server: Any, parent_pid: int) -> None:
    """Ask ``server`` to stop once ``parent_pid`` has died."""
    direct = os.getppid() == parent_pid  # a child is handed to another parent when its own dies
    while True:
        if (direct and os.getppid() != parent_pid) or not _alive(parent_pid):
            logger.info("the parent process %d has ended; stopping", parent_pid)
            server.should_exit = True
            return
        await asyncio.sleep(PARENT_POLL_SECONDS)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:  # a zombie (dead, not yet waited for by its own parent) has ended too
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc here: kill's answer stands


def issue_token_for_running(settings: Settings) -> dict[str, Any]:
    """A new bootstrap token for the offline server running on ``settings``' data folder, with its URL;
    :class:`LookupError` when none runs there."""
    data_dir = Path(settings.data_dir)
    running = running_instance(data_dir)
    if running is None:
        raise LookupError(f"no SpheroSeg server is running on the data folder {data_dir}")
    if not running.get("url"):
        raise LookupError(f"the SpheroSeg server on {data_dir} is still starting; try again when it is ready")
    token = asyncio.run(_issue(settings))
    return {
        "event": "bootstrap",
        "url": running["url"],
        "bootstrap_token": token,
        "pid": running.get("pid"),
        "data_dir": str(data_dir),
        "lock_file": str(data_dir / LOCK_FILE),
    }


async def _issue(settings: Settings) -> str:
    from server.db.engine import create_engine, session_factory
    from server.services.installation import local_username
    from server.services.sessions import issue_bootstrap_token

    engine = create_engine(settings.database_url)
    try:
        return await issue_bootstrap_token(session_factory(engine), local_username())
    finally:
        await engine.dispose()


def _passwords(settings: Settings) -> Passwords:
    return Passwords(
        PasswordPolicy(time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib)
    )


def _listen(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((OFFLINE_HOST, port))
    listener.listen(2048)
    return listener


def _own_stdout() -> IO[str]:
    """Standard output, kept for the one JSON line; file descriptor 1 then points at standard error, so
    that nothing else (a library's print, a child process) can write there."""
    sys.stdout.flush()
    kept = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return kept


def _say(out: IO[str], **fields: Any) -> None:
    out.write(json.dumps(fields) + "\n")
    out.flush()


def _stderr_only(config: dict[str, Any]) -> dict[str, Any]:
    for handler in config.get("handlers", {}).values():
        if handler.get("stream") == "ext://sys.stdout":
            handler["stream"] = "ext://sys.stderr"
    return config
