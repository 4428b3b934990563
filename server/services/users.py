"""Users and sessions: logging in and out, creating, disabling and enabling users.

Creating, disabling and enabling take the session factory and password hasher rather than a whole
:class:`~server.services.runtime.Runtime`, so the command line (``spheroseg server create-user`` …) runs
them with nothing but the database: no blob store, no signing key. ``by=None`` there stands for the
server's operator, who holds the database's credentials anyway; a user asking must be an administrator.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db import users
from server.db.models import User
from server.domain.auth import Passwords, check_username, hash_token, new_token
from server.domain.errors import InvalidCredentialsError, UnknownUserError, UsernameTakenError
from server.domain.roles import UserRole
from server.events import session_ended
from server.exceptions import RateLimitedError
from server.services.events import announce
from server.services.permissions import Actor, require_admin
from server.services.runtime import Runtime

__all__ = ["Login", "create_user", "log_in", "log_out", "set_disabled"]


@dataclass(frozen=True)
class Login:
    token: str
    """Shown once: only its hash is stored."""
    expires_at: dt.datetime
    user: User


async def log_in(runtime: Runtime, username: str, password: str, address: str) -> Login:
    """A new session for ``username``; :class:`RateLimitedError` after too many attempts (per name and per
    ``address``), :class:`InvalidCredentialsError` for an unknown name or a wrong password."""
    wait = runtime.logins.hit(username, address)
    if wait:
        raise RateLimitedError(f"too many login attempts; try again in {wait:.0f} s", wait)
    async with runtime.db.begin() as db:
        user = await users.user_by_name(db, username)
        # argon2 takes tens of milliseconds of CPU on purpose: off the event loop, so that logins (even
        # refused ones) never hold up other requests
        stored = user.password_hash if user else None
        if not await asyncio.to_thread(runtime.passwords.verify, stored, password) or user is None:
            raise InvalidCredentialsError()
        token = new_token()
        session = await users.create_session(db, user.id, hash_token(token), runtime.session_lifetime)
    return Login(token, session.expires_at, user)


async def log_out(runtime: Runtime, actor: Actor, session_id: int) -> None:
    """Revoke the session; its open WebSocket subscriptions end too, on every replica."""
    async with runtime.db.begin() as db:
        await users.revoke_session(db, session_id)
    await announce(runtime, session_ended(actor.user_id, [session_id]))


async def create_user(
    db: async_sessionmaker[AsyncSession],
    passwords: Passwords,
    by: Actor | None,
    username: str,
    password: str,
    role: UserRole,
) -> User:
    """The new user; :class:`InvalidInputError` for a name or password the rules refuse,
    :class:`UsernameTakenError` for a name in use, :class:`PermissionDeniedError` unless ``by`` is an
    administrator (or ``None``, the operator)."""
    if by is not None:
        require_admin(by)
    username = check_username(username)
    password_hash = passwords.hash(password, username)
    async with db.begin() as session:
        user = await users.create_user(session, username, password_hash, role.value)
    if user is None:
        raise UsernameTakenError(username)
    return user


async def set_disabled(db: async_sessionmaker[AsyncSession], username: str, *, disabled: bool) -> int:
    """Disable ``username`` (no login, every session revoked) or enable them again with the same password;
    their id, or :class:`UnknownUserError`. Telling running servers is the caller's business."""
    async with db.begin() as session:
        user = await users.set_disabled(session, username, disabled)
        if user is None:
            raise UnknownUserError(username)
        return user.id
