"""Whether an open subscription may go on: its subscriber's session, and their access to its project.

A subscription is allowed once, when it starts; it may then stay open for hours. Two watches look at every
event it receives (or at the quiet, when none came) and end it with an error, at no cost per event:

:class:`SessionWatch` ends it with :class:`~server.exceptions.AuthenticationError` once the session ends:

- logout or a disabled user: the ``session_ended`` event says so, on every replica (the bus carries it);
  one that names the session or its user ends the subscription at once, without a query;
- expiry: the subscription waits for its next event no longer than until its session expires, then reads
  the session again: one renewed meanwhile (``renewSession``) goes on;
- anything no event told (a user disabled from the CLI of a server on SQLite, which cannot reach the
  server's in-process bus; an event the bus failed to send or this subscriber lost): the session is read
  again every ``session_recheck_seconds``, and after lost events once ``LOSS_RECHECK_SECONDS`` have passed.

:class:`AccessWatch` ends it with :class:`~server.exceptions.PermissionDeniedError` once the subscriber may
no longer view its project. The mutations that take access away publish ``access_changed`` (members
removed, named in ``data["user_ids"]``) or ``project_deleted``: a deleted project ends it at once; an
``access_changed`` naming its subscriber (or naming nobody, its details cut to fit NOTIFY) costs one role
query; every other event costs nothing. Events that may have been lost might have held such a change, so a
loss is followed by a role query too, at most once per ``LOSS_RECHECK_SECONDS``: a slow client in a busy
project loses events all the time, and must not turn that into a query per event.

Who subscribes is a :class:`Subscriber`: the actor, their session and how to read it again (the entry
point's session lookup, so it is made in one place), which also brings a role changed meanwhile.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.domain.roles import Action, allows
from server.events import Event, EventKind
from server.exceptions import AuthenticationError, PermissionDeniedError
from server.services.permissions import Actor, StoredRoles, project_role
from server.services.runtime import Runtime

__all__ = [
    "ACCESS_KINDS",
    "LOSS_RECHECK_SECONDS",
    "SESSION_ENDED",
    "SESSION_KINDS",
    "AccessWatch",
    "SessionWatch",
    "Subscriber",
]

ACCESS_KINDS = frozenset({EventKind.ACCESS_CHANGED, EventKind.PROJECT_DELETED})
"""The events that may end a subscription on a project; one filtering by kind must include them."""
SESSION_KINDS = frozenset({EventKind.SESSION_ENDED})
"""The events a subscription asks for whatever its project (``always``), to learn its session ended."""

LOSS_RECHECK_SECONDS = 10.0
"""After lost events, the session and role are asked again once this long has passed since last known."""

SESSION_ENDED = "your session has ended (logged out, expired or the account disabled); log in again"
SESSION_EXPIRED = "your session has expired; log in again"


@dataclass
class Subscriber:
    """Who holds a subscription, as known when it started; :class:`SessionWatch` keeps ``actor`` current."""

    actor: Actor
    session_id: int | None
    session_expires_at: dt.datetime | None
    recheck: Callable[[], Awaitable[tuple[Actor, dt.datetime | None] | None]]
    """Reads the session again: the actor and the session's expiry as stored now while it is live (a role
    changed or the session renewed meanwhile), ``None`` once it has ended."""


class SessionWatch:
    """Ends a subscription (raises :class:`AuthenticationError`) once the session of ``subscriber`` ends;
    the session was read when the subscription started, so it starts as known good."""

    def __init__(
        self, runtime: Runtime, subscriber: Subscriber, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._subscriber = subscriber
        expires = subscriber.session_expires_at
        self._expires_at = math.inf if expires is None else _timestamp(expires)
        self._recheck = runtime.settings.session_recheck_seconds
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
        """At the expiry known so far: go on if the session was renewed meanwhile, else raise."""
        if not await self._read():
            raise AuthenticationError(SESSION_EXPIRED)

    async def _read(self) -> bool:
        """Whether the session is live, read now; keeps the actor and expiry as stored now."""
        found = await self._subscriber.recheck()
        if found is None:
            return False
        self._subscriber.actor, expires = found
        self._subscriber.session_expires_at = expires
        self._expires_at = math.inf if expires is None else _timestamp(expires)
        self._checked_at = self._clock()
        self._unverified_loss = False
        return True

    def _names_session(self, event: Event) -> bool | None:
        """Whether ``event`` ends this session; ``None`` when it cannot tell (its details were cut)."""
        user_id, session_ids = event.data.get("user_id"), event.data.get("session_ids")
        if not isinstance(user_id, int):
            return None
        if user_id != self._subscriber.actor.user_id:
            return False
        if session_ids is None:  # every session of the user, unless the list was cut to fit NOTIFY
            return None if event.data.get("truncated") else True
        return isinstance(session_ids, list | tuple) and self._subscriber.session_id in session_ids


class AccessWatch:
    """Ends a subscription on ``project_id`` (raises :class:`PermissionDeniedError`) once its subscriber
    may no longer view it; the role was checked when the subscription started, so it starts as known good.
    """

    def __init__(
        self,
        runtime: Runtime,
        subscriber: Subscriber,
        project_id: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._subscriber = subscriber
        self._roles = StoredRoles(runtime.db, subscriber.actor.user_id)
        self.project_id = project_id
        self._clock = clock
        self._verified_at = clock()
        self._unverified_loss = False

    async def confirm(self) -> None:
        """Ask for the role once more: called right after the bus subscription opens, it catches a removal
        that landed between the permission check and that moment, which no event would tell."""
        await self._verify()

    async def check(self, event: Event | None, *, lost: bool = False) -> None:
        """Follow ``event`` (``None``: none came); ``lost`` says events may have been lost before it."""
        if event is not None and event.kind is EventKind.PROJECT_DELETED:
            raise PermissionDeniedError(f"project {self.project_id} was deleted")
        self._unverified_loss = self._unverified_loss or lost
        loss_due = self._unverified_loss and self._clock() - self._verified_at >= LOSS_RECHECK_SECONDS
        if loss_due or (event is not None and self._names_subscriber(event)):
            await self._verify()

    def _names_subscriber(self, event: Event) -> bool:
        if event.kind is not EventKind.ACCESS_CHANGED:
            return False
        named = event.data.get("user_ids")
        return not isinstance(named, list | tuple) or self._subscriber.actor.user_id in named

    async def _verify(self) -> None:
        role = await project_role(self._subscriber.actor, self.project_id, self._roles)
        if not allows(role, Action.VIEW):
            raise PermissionDeniedError(f"you no longer have access to project {self.project_id}")
        self._verified_at = self._clock()
        self._unverified_loss = False


def _timestamp(moment: dt.datetime) -> float:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)  # SQLite keeps no time zone
    return aware.timestamp()
