"""Whether an open subscription's session is still live, without a query per event.

A subscription is allowed when it starts (the WebSocket handler reads the session again for every
operation, see :mod:`server.api.graphql_app`); it may then stay open for hours, longer than its session.
:class:`SessionWatch` ends it with :class:`~server.exceptions.AuthenticationError` once the session ends:

- logout or a disabled user: the ``session_ended`` event says so, on every replica (the bus carries it);
  one that names the session or its user ends the subscription at once, without a query;
- expiry: the subscription waits for its next event no longer than until its session expires, then reads
  the session again: one renewed meanwhile (``renewSession``) goes on;
- anything no event told (a user disabled from the CLI of a server on SQLite, which cannot reach the
  server's in-process bus; an event the bus failed to send or this subscriber lost): the session is read
  again every ``session_recheck_seconds``, and after lost events once ``LOSS_RECHECK_SECONDS`` have passed.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable

from server.api.access import LOSS_RECHECK_SECONDS
from server.api.context import SESSION_ENDED, Context, refresh_session
from server.events import Event, EventKind
from server.exceptions import AuthenticationError

__all__ = ["SESSION_KINDS", "SessionWatch"]

SESSION_KINDS = frozenset({EventKind.SESSION_ENDED})
"""The events a subscription asks for whatever its project (``always``), to learn its session ended."""

SESSION_EXPIRED = "your session has expired; log in again"


class SessionWatch:
    """Ends a subscription (raises :class:`AuthenticationError`) once the session of ``context`` ends; the
    session was read when the subscription started, so it starts as known good."""

    def __init__(self, context: Context, *, clock: Callable[[], float] = time.time) -> None:
        self._context = context
        self._user_id = context.require_user().id
        self._session_id = context.session_id
        expires = context.session_expires_at
        self._expires_at = math.inf if expires is None else _timestamp(expires)
        self._recheck = context.services.settings.session_recheck_seconds
        self._clock = clock
        self._checked_at = clock()
        self._unverified_loss = False

    def timeout(self, longest: float | None = None) -> float:
        """How long the subscription may wait for its next event (at most ``longest``) before it must call
        :meth:`check` with none."""
        due = min(self._expires_at, self._checked_at + self._recheck)
        if self._unverified_loss:
            due = min(due, self._checked_at + LOSS_RECHECK_SECONDS)
        wait = max(due - self._clock(), 0.0)
        return wait if longest is None else min(wait, longest)

    async def check(self, event: Event | None, *, lost: bool = False) -> None:
        """Follow ``event`` (``None``: none came); ``lost`` says events may have been lost before it."""
        now = self._clock()
        if now >= self._expires_at:
            await self._renewed_or_expired()
            now = self._clock()
        self._unverified_loss = self._unverified_loss or lost
        if event is not None and event.kind is EventKind.SESSION_ENDED:
            named = self._names_session(event)
            if named:
                raise AuthenticationError(SESSION_ENDED)
            self._unverified_loss = self._unverified_loss or named is None
        since = now - self._checked_at
        if since >= self._recheck or (self._unverified_loss and since >= LOSS_RECHECK_SECONDS):
            await self.confirm()

    async def confirm(self) -> None:
        """Read the session again; raises once it has ended."""
        if not await self._read():
            raise AuthenticationError(SESSION_ENDED)

    async def _renewed_or_expired(self) -> None:
        """At the expiry known so far: go on if the session was renewed meanwhile (``renewSession``),
        else raise."""
        if not await self._read():
            raise AuthenticationError(SESSION_EXPIRED)

    async def _read(self) -> bool:
        """Whether the session is live, read now; its expiry as stored now (renewed, perhaps)."""
        if not await refresh_session(self._context):
            return False
        self._checked_at = self._clock()
        self._unverified_loss = False
        expires = self._context.session_expires_at
        self._expires_at = math.inf if expires is None else _timestamp(expires)
        return True

    def _names_session(self, event: Event) -> bool | None:
        """Whether ``event`` ends this session; ``None`` when it cannot tell (its details were cut)."""
        user_id, session_ids = event.data.get("user_id"), event.data.get("session_ids")
        if not isinstance(user_id, int):
            return None
        if user_id != self._user_id:
            return False
        if session_ids is None:  # every session of the user, unless the list was cut to fit NOTIFY
            return None if event.data.get("truncated") else True
        return isinstance(session_ids, list | tuple) and self._session_id in session_ids


def _timestamp(moment: dt.datetime) -> float:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)  # SQLite keeps no time zone
    return aware.timestamp()
