"""The bus of a server on PostgreSQL: LISTEN/NOTIFY, so every replica sees every event.

``publish`` only sends ``pg_notify`` (over a small pool); it never hands the event to local subscribers
itself. They get it when the notification comes back through this bus's own listener connection, exactly as
the other replicas do, so each replica sees each event once and all of them in the same (commit) order.

The listener connection is watched: when it is lost (PostgreSQL restarted, the backend terminated, a ping
unanswered) the bus reconnects with backoff and LISTENs again, counts it in ``reconnects``, and marks every
subscription open during the gap ``missed``, so consumers know to refetch state. Every database call has a
timeout; a publish that cannot reach PostgreSQL raises :class:`EventBusError` instead of hanging.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from server.events.events import Event, EventKind
from server.events.fanout import Fanout, Subscription
from server.exceptions import ConfigError, EventBusError

__all__ = ["CHANNEL", "MAX_PAYLOAD_BYTES", "PostgresEventBus", "fit_payload", "is_postgres_url"]

log = logging.getLogger(__name__)

CHANNEL = "spheroseg_events"
MAX_PAYLOAD_BYTES = 7999
"""PostgreSQL refuses NOTIFY payloads of 8000 bytes or more (default build)."""

_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
_MIN_BACKOFF = 0.1


def is_postgres_url(url: str) -> bool:
    scheme = url.partition("://")[0]
    return scheme.split("+", 1)[0] in {"postgresql", "postgres"}


def dsn_from_url(url: str) -> str:
    """The plain libpq DSN asyncpg takes for a SQLAlchemy URL such as ``postgresql+asyncpg://…``."""
    if not is_postgres_url(url) or "://" not in url:
        raise ConfigError("SPHEROSEG_DATABASE_URL is not a PostgreSQL URL (postgresql+asyncpg://…)")
    return "postgresql://" + url.partition("://")[2]


def fit_payload(event: Event, limit: int = MAX_PAYLOAD_BYTES) -> str:
    """``event`` as JSON of at most ``limit`` UTF-8 bytes.

    An event too big for NOTIFY loses its largest ``data`` values first and, if that is not enough, its
    ``image_ids``; it then carries ``data["truncated"] = True`` so consumers refetch what was left out.
    """
    text = event.to_json()
    if _size(text) <= limit:
        return text
    data = {**event.data, "truncated": True}
    details = [key for key in data if key != "truncated"]
    largest_first = sorted(details, key=lambda key: _size(json.dumps(data[key])), reverse=True)
    for key in largest_first:
        del data[key]
        text = dataclasses.replace(event, data=data).to_json()
        if _size(text) <= limit:
            return text
    text = dataclasses.replace(event, data=data, image_ids=()).to_json()
    if _size(text) <= limit:
        return text
    raise EventBusError(f"a {event.kind} event does not fit in {limit} bytes even without its details")


def _size(text: str) -> int:
    return len(text.encode())


class PostgresEventBus:
    """An :class:`~server.events.EventBus` on PostgreSQL LISTEN/NOTIFY (channel ``spheroseg_events``).

    ``timeout`` bounds every database call (connect, notify, ping); ``ping_interval`` is how often an idle
    listener is checked, to notice a connection that died without closing; reconnect attempts back off up
    to ``max_backoff`` seconds.
    """

    def __init__(
        self,
        database_url: str,
        *,
        channel: str = CHANNEL,
        timeout: float = 5.0,
        ping_interval: float = 30.0,
        max_backoff: float = 5.0,
    ) -> None:
        self._dsn = dsn_from_url(database_url)
        parts = urlsplit(self._dsn)
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
        self._channel = channel
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._max_backoff = max_backoff
        self._fanout = Fanout()
        self._pool: Any = None
        self._listener: Any = None
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._published = 0
        self.reconnects = 0
        """How often the listener connection was lost and LISTENed again."""

    async def start(self) -> None:
        """Open the publishing pool and the listener; :class:`EventBusError` if PostgreSQL does not answer."""
        if self._closed or self._supervisor is not None:
            raise EventBusError("the event bus was already started")
        try:
            async with asyncio.timeout(self._timeout):
                # min_size=0: connections open on the first publish; asyncpg would otherwise keep retrying
                # (and logging) to refill the pool while the database is away, next to our own listener.
                self._pool = await asyncpg.create_pool(self._dsn, min_size=0, max_size=4)
            await self._listen()
        except _DB_ERRORS as error:
            await self._disconnect()
            message = f"cannot listen for events on PostgreSQL at {self._where}: {error}"
            raise EventBusError(message) from error
        self._supervisor = asyncio.create_task(self._supervise(), name="spheroseg-event-listener")
        self._supervisor.add_done_callback(_log_crash)

    @property
    def _closed(self) -> bool:
        return self._fanout.closed

    async def close(self) -> None:
        if self._closed:
            return
        self._fanout.close_all()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.wait({self._supervisor}, timeout=self._timeout)
        await self._disconnect()

    async def publish(self, event: Event) -> None:
        if self._closed or self._pool is None:
            raise EventBusError("the event bus is not running (not started yet, or shutting down)")
        payload = fit_payload(event)
        try:
            async with asyncio.timeout(self._timeout), self._pool.acquire() as connection:
                await connection.execute("SELECT pg_notify($1, $2)", self._channel, payload)
        except _DB_ERRORS as error:
            raise EventBusError(
                f"could not publish a {event.kind} event: PostgreSQL at {self._where} did not answer "
                f"({error or type(error).__name__})"
            ) from error
        self._published += 1

    def publish_here(self, event: Event) -> None:
        if not self._fanout.closed:
            self._fanout.deliver(event)

    def subscribe(
        self,
        *,
        project_id: int | None = None,
        job_id: int | None = None,
        kinds: Collection[EventKind] | None = None,
        also: Collection[EventKind] = (),
        always: Collection[EventKind] = (),
        max_queue: int = 256,
    ) -> Subscription:
        subscription = self._fanout.subscribe(
            project_id=project_id, job_id=job_id, kinds=kinds, also=also, always=always, max_queue=max_queue
        )
        # Opened while the listener is down: whatever is published until it is back never arrives.
        subscription.missed = self._lost.is_set()
        return subscription

    @property
    def subscriber_count(self) -> int:
        return self._fanout.count

    @property
    def published_count(self) -> int:
        return self._published

    @property
    def listener_pid(self) -> int | None:
        """The PostgreSQL backend pid of the listener connection (``None`` while it is down)."""
        return None if self._listener is None else int(self._listener.get_server_pid())

    async def _listen(self) -> None:
        connection = await asyncpg.connect(self._dsn, timeout=self._timeout)
        # Registered first, so a connection lost while LISTEN is being set up is noticed too.
        connection.add_termination_listener(self._on_lost)
        try:
            async with asyncio.timeout(self._timeout):
                await connection.add_listener(self._channel, self._on_notify)
        except BaseException:
            connection.terminate()
            raise
        self._listener = connection
        self._lost.clear()

    async def _supervise(self) -> None:
        """Keep the listener alive: reconnect with backoff when lost, ping it when quiet."""
        backoff = _MIN_BACKOFF
        while not self._closed:
            if self._listener is None:
                try:
                    await self._listen()
                except _DB_ERRORS as error:
                    log.warning("cannot listen on %s (%s); retry in %.1f s", self._where, error, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                backoff = _MIN_BACKOFF
                self.reconnects += 1
                log.info("listening for events on %s again (reconnect %d)", self._where, self.reconnects)
            try:
                async with asyncio.timeout(self._ping_interval):
                    await self._lost.wait()
            except TimeoutError:
                await self._ping()

    async def _ping(self) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await listener.fetchval("SELECT 1")
        except _DB_ERRORS as error:
            log.warning("the event listener on %s did not answer (%s); reconnecting", self._where, error)
            listener.terminate()  # calls _on_lost

    def _on_lost(self, connection: Any) -> None:
        if self._closed or connection is not self._listener:
            return
        self._listener = None
        self._lost.set()
        self._fanout.mark_missed()
        log.warning("lost the event listener connection to %s; reconnecting", self._where)

    def _on_notify(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        try:
            event = Event.from_json(payload)
        except ValueError as error:
            log.warning("ignored a malformed notification on channel %s: %s", channel, error)
            return
        self._fanout.deliver(event)

    async def _disconnect(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                await asyncio.wait_for(listener.close(), self._timeout)
            except _DB_ERRORS:
                listener.terminate()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self._timeout)
            except _DB_ERRORS:
                pool.terminate()


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the event listener stopped; no more events reach this server", exc_info=task.exception())
