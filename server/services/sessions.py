"""Sessions: checking a bearer token, listing, renewing and revoking sessions, and one-time bootstrap tokens.

Every entry point that takes a token (a GraphQL request, a WebSocket's ``connection_init``, an upload) asks
:func:`authenticate`; an open subscription reads its session again with :func:`live_session`. A session is
live while it is not revoked, not expired and its user not disabled (:mod:`server.db.users`).

A user lists and revokes their own sessions; an administrator anyone's. Revoking publishes
``session_ended`` naming the session, so its open subscriptions end on every replica. Renewing moves the
current session's expiry to a full lifetime from now; the token stays the same, so open subscriptions go on.

Bootstrap tokens let the desktop, which started the server on the user's own machine, get a session
without a password (``spheroseg server serve --offline`` prints one; ``spheroseg server bootstrap-token``
issues another for a client that finds the server running). Only a token's hash is stored; it expires after
:data:`BOOTSTRAP_LIFETIME` and can be exchanged once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db import users
from server.db.models import Session, User, utcnow
from server.db.users import aware
from server.domain.auth import hash_token, new_token
from server.domain.errors import InvalidCredentialsError, UnknownUserError
from server.events import session_ended
from server.exceptions import PermissionDeniedError, RateLimitedError
from server.services.events import announce
from server.services.permissions import Actor
from server.services.runtime import Runtime
from server.services.users import Login

__all__ = [
    "BOOTSTRAP_LIFETIME",
    "LAST_USED_RESOLUTION",
    "NO_SUCH_SESSION",
    "authenticate",
    "exchange_bootstrap_token",
    "issue_bootstrap_token",
    "live_session",
    "renew_session",
    "revoke_session",
    "user_sessions",
]

BOOTSTRAP_LIFETIME = dt.timedelta(minutes=5)
"""How long a bootstrap token can be exchanged: the desktop does it as soon as it reads the token."""

LAST_USED_RESOLUTION = dt.timedelta(minutes=5)
"""A session's ``last_used_at`` is written when it is older than this: one write per session per interval,
not one per request."""

NO_SUCH_SESSION = "no such session of yours"


async def authenticate(runtime: Runtime, token: str) -> tuple[User, Session] | None:
    """The user and session of a live token (``None``: unknown, expired, revoked or the user disabled);
    notes that the session was used."""
    async with runtime.db() as db:
        found = await users.user_by_token(db, hash_token(token))
    if found is None:
        return None
    _, session = found
    now = utcnow()
    if session.last_used_at is None or aware(session.last_used_at) <= now - LAST_USED_RESOLUTION:
        async with runtime.db.begin() as db:
            await users.touch_session(db, session.id, now)
        session.last_used_at = now
    return found


async def live_session(runtime: Runtime, session_id: int) -> tuple[User, Session] | None:
    """The user (as stored now) and session of ``session_id`` while it is live."""
    async with runtime.db() as db:
        return await users.live_session(db, session_id)


async def user_sessions(runtime: Runtime, actor: Actor, user_id: int | None = None) -> list[Session]:
    """The live sessions of ``user_id`` (default: the actor's), newest first; only an administrator may
    list another user's (:class:`PermissionDeniedError`)."""
    user_id = actor.user_id if user_id is None else user_id
    if user_id != actor.user_id and not actor.is_admin:
        raise PermissionDeniedError("only administrators may list another user's sessions")
    async with runtime.db() as db:
        return await users.live_sessions(db, user_id)


async def renew_session(runtime: Runtime, actor: Actor, session_id: int) -> Session:
    """The actor's live session ``session_id``, now expiring a full session lifetime from now (the token
    is unchanged); :class:`PermissionDeniedError` if it is not the actor's or no longer live."""
    async with runtime.db.begin() as db:
        found = await users.live_session(db, session_id)
        if found is None or found[1].user_id != actor.user_id:
            raise PermissionDeniedError(NO_SUCH_SESSION)
        session = found[1]
        session.expires_at = utcnow() + runtime.session_lifetime
        await users.extend_session(db, session.id, session.expires_at)
    return session


async def revoke_session(runtime: Runtime, actor: Actor, session_id: int) -> bool:
    """End ``session_id`` and its open subscriptions; ``False`` when an administrator names no live
    session. Anyone else may end only their own: another's, or none, is :class:`PermissionDeniedError`,
    so nobody learns which sessions exist."""
    async with runtime.db.begin() as db:
        found = await users.live_session(db, session_id)
        owner = found[1].user_id if found is not None else None
        if owner != actor.user_id and not actor.is_admin:
            raise PermissionDeniedError(NO_SUCH_SESSION)
        if owner is None:
            return False
        await users.revoke_session(db, session_id)
    await announce(runtime, session_ended(owner, [session_id]))
    return True


async def issue_bootstrap_token(db: async_sessionmaker[AsyncSession], username: str) -> str:
    """A new one-time token for ``username`` (shown once: only its hash is stored), valid for
    :data:`BOOTSTRAP_LIFETIME`; :class:`UnknownUserError` for a name nobody has.

    It takes only the session factory: the command line issues one for a server it finds running."""
    token = new_token()
    async with db.begin() as session:
        user = await users.user_by_name(session, username)
        if user is None:
            raise UnknownUserError(username)
        await users.create_bootstrap_token(session, user.id, hash_token(token), BOOTSTRAP_LIFETIME)
    return token


async def exchange_bootstrap_token(runtime: Runtime, token: str, address: str) -> Login:
    """A new session for the bootstrap token's user; the token is used up. Refused as a wrong password
    is (:class:`InvalidCredentialsError`) for an unknown, used or expired token, and rate-limited as
    logins are (:class:`RateLimitedError`)."""
    wait = runtime.logins.hit("\x00bootstrap", address)
    if wait:
        raise RateLimitedError(f"too many sign-in attempts; try again in {wait:.0f} s", wait)
    session_token = new_token()
    async with runtime.db.begin() as db:
        user = await users.use_bootstrap_token(db, hash_token(token))
        if user is None:
            raise InvalidCredentialsError()
        session = await users.create_session(db, user.id, hash_token(session_token), runtime.session_lifetime)
    return Login(session_token, session.expires_at, user)
