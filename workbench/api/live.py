"""Subscriptions: one WebSocket to the server for all of them, kept up, resubscribed, caught up.

The server speaks ``graphql-transport-ws`` (asked for explicitly: offered both protocols, strawberry picks
the legacy one). :class:`LiveChannel` keeps one connection; each :meth:`LiveChannel.subscribe` is an async
iterator over that connection. When the connection is lost (server restarted, network gone), every
subscription waits while the channel reconnects with exponential backoff, subscribes again, and yields
:class:`Resumed` first: events in between were lost, so the caller refetches what changed (the API's
``updatedSince``). A subscription the server refuses or ends with an error (no access any more) raises
:class:`~workbench.api.errors.ApiError` and is not resubscribed. A connection refused for its token
(session ended) puts the channel in :attr:`ChannelState.SIGNED_OUT` until :meth:`LiveChannel.use_token`.

The channel's state changes go to ``on_state`` (a banner: "connection lost, retrying in 4 s") and to each
callback given to :meth:`LiveChannel.add_state_listener` (the saver, which replays its journals once the
server is back).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportError, TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from graphql import OperationType

from workbench.api.errors import ChannelClosedError, error_of
from workbench.api.operations import operation

__all__ = ["Backoff", "ChannelState", "LiveChannel", "Resumed", "StateChange"]

logger = logging.getLogger(__name__)

REFUSED_CODES = frozenset({4401, 4403})
"""WebSocket close codes of a connection refused for its token (or beyond the user's connections)."""


class ChannelState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    SIGNED_OUT = "signed out"
    CLOSED = "closed"


@dataclass(frozen=True)
class StateChange:
    state: ChannelState
    reason: str = ""
    retry_in: float | None = None
    """Seconds until the next attempt, while reconnecting."""


@dataclass(frozen=True)
class Resumed:
    """The subscription is live again after ``down_seconds`` without a connection: refetch what changed."""

    down_seconds: float


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter between ``initial`` and ``maximum`` seconds."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.maximum, self.initial * 2 ** max(0, attempt - 1))
        return random.uniform(self.initial / 2, ceiling)


class LiveChannel:
    """One WebSocket to ``url`` (the server's base URL) for every subscription, sending ``token``."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        backoff: Backoff | None = None,
        on_state: Callable[[StateChange], None] | None = None,
    ) -> None:
        self.url = url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        self.token = token
        self.backoff = backoff or Backoff()
        self.state = StateChange(ChannelState.CONNECTING)
        self._on_state = on_state
        self._state_listeners: list[Callable[[StateChange], None]] = []
        self._session: AsyncClientSession | None = None
        self._generation = 0
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._token_changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> LiveChannel:
        self._supervisor = asyncio.create_task(self._supervise(), name="live channel")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._supervisor is not None:
            # cancelled again until it ends: a cancellation that arrives while gql connects can be
            # swallowed there, and the supervisor would go on to wait for a lost connection forever
            while not self._supervisor.done():
                self._supervisor.cancel()
                await asyncio.wait([self._supervisor], timeout=1.0)
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self._closed = True
        self._connected.set()  # wakes the subscriptions waiting for a connection: they end (_ready)
        self._set_state(StateChange(ChannelState.CLOSED))

    def add_state_listener(self, callback: Callable[[StateChange], None]) -> Callable[[], None]:
        """Tell ``callback`` too of each state change (besides ``on_state``); returns the function that
        stops telling it."""
        self._state_listeners.append(callback)
        return lambda: self._state_listeners.remove(callback) if callback in self._state_listeners else None

    def reconnect_now(self) -> None:
        """Try to connect at once rather than after the backoff's wait (the server is known to be back:
        the workbench has just restarted it)."""
        self._wake.set()

    def use_token(self, token: str | None) -> None:
        """Send ``token`` from the next connection on (after a sign-in, or a renewed session)."""
        self.token = token
        self._token_changed.set()

    async def subscribe(self, name: str, /, **variables: Any) -> AsyncIterator[dict[str, Any] | Resumed]:
        """The events of subscription ``name``: data dicts, and :class:`Resumed` after each reconnect;
        :class:`~workbench.api.errors.ChannelClosedError` once the channel is closed."""
        found = operation(name)
        if found.kind is not OperationType.SUBSCRIPTION:
            raise TypeError(f"{name} is not a subscription: use LabClient.call")
        request = GraphQLRequest(found.text, variable_values=variables or None, operation_name=name)
        lost_at: float | None = None
        while True:
            session, generation = await self._ready()
            if lost_at is not None:
                yield Resumed(time.monotonic() - lost_at)
                lost_at = None
            try:
                async with contextlib.aclosing(session.subscribe(request)) as events:
                    async for data in events:
                        yield dict(data)
                return  # the server completed the subscription (a finished job)
            except TransportQueryError as refused:
                first = (refused.errors or [{"message": str(refused)}])[0]
                raise error_of(first if isinstance(first, dict) else {"message": str(first)}) from refused
            except (TransportError, OSError) as error:
                logger.info("subscription %s lost its connection (%s): %s", name, _close_code(error), error)
                lost_at = time.monotonic()
                self._connection_lost(generation)

    async def _ready(self) -> tuple[AsyncClientSession, int]:
        while True:
            await self._connected.wait()
            if self._closed:  # else its subscribers would wait for a connection forever
                raise ChannelClosedError(f"the live connection to {self.url} was closed")
            if self._session is not None:
                return self._session, self._generation

    def _connection_lost(self, generation: int) -> None:
        if generation == self._generation:  # the first subscriber to notice tells the supervisor
            self._connected.clear()
            self._lost.set()

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            client = Client(transport=self._transport(), fetch_schema_from_transport=False)
            try:
                session = await client.connect_async()  # type: ignore[no-untyped-call]  # gql leaves it untyped
            except (TransportError, OSError) as error:
                logger.info("connecting to %s failed (%s): %r", self.url, _close_code(error), error)
                if _close_code(error) in REFUSED_CODES:
                    await self._wait_for_new_token(str(error))
                    attempt = 0
                    continue
                attempt += 1
                delay = self.backoff.delay(attempt)
                self._set_state(StateChange(ChannelState.RECONNECTING, _reason(error), delay))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                self._wake.clear()
                continue
            attempt = 0
            self._generation += 1
            self._session = session
            self._lost.clear()
            self._connected.set()
            self._set_state(StateChange(ChannelState.CONNECTED))
            try:
                await self._lost.wait()
            finally:
                self._connected.clear()
                self._session = None
                with contextlib.suppress(Exception):
                    await client.close_async()  # type: ignore[no-untyped-call]
            self._set_state(StateChange(ChannelState.RECONNECTING, "connection lost", 0.0))

    async def _wait_for_new_token(self, reason: str) -> None:
        self._set_state(StateChange(ChannelState.SIGNED_OUT, f"the server refused the session: {reason}"))
        self._token_changed.clear()
        await self._token_changed.wait()

    def _transport(self) -> WebsocketsTransport:
        payload = {"authorization": f"Bearer {self.token}"} if self.token else {}
        return WebsocketsTransport(
            url=f"{self.url}/graphql",
            init_payload=payload,
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            connect_timeout=10,
            ack_timeout=10,
        )

    def _set_state(self, change: StateChange) -> None:
        self.state = change
        listeners = [self._on_state] if self._on_state is not None else []
        for listener in [*listeners, *self._state_listeners]:
            try:
                listener(change)
            except Exception:  # a listener's bug must not stop the channel
                logger.exception("live channel state listener failed")


def _close_code(error: BaseException) -> int | None:
    """The WebSocket close code in ``error``'s chain (gql wraps the websockets error)."""
    cause: BaseException | None = error
    while cause is not None:
        received = getattr(cause, "rcvd", None)
        if received is not None:
            return int(received.code)
        cause = cause.__cause__ or cause.__context__
    return None


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__
