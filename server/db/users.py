"""Users and sessions; a session is live while it is not revoked, not expired and its user not disabled."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import BootstrapToken, Session, User, utcnow
from server.domain.accounts import DISABLED_MARK, disabled_hash, enabled_hash

__all__ = [
    "create_bootstrap_token",
    "create_session",
    "create_user",
    "extend_session",
    "live_session",
    "live_sessions",
    "revoke_session",
    "set_disabled",
    "touch_session",
    "use_bootstrap_token",
    "user_by_name",
    "user_by_token",
    "users_by_ids",
]


async def create_user(db: AsyncSession, username: str, password_hash: str, role: str) -> User | None:
    """The new user, or ``None`` when the name is taken."""
    if await user_by_name(db, username) is not None:
        return None
    user = User(username=username, password_hash=password_hash, role=role, created_at=utcnow())
    db.add(user)
    await db.flush()
    return user


async def user_by_name(db: AsyncSession, username: str) -> User | None:
    result: User | None = await db.scalar(select(User).where(User.username == username))
    return result


async def users_by_ids(db: AsyncSession, ids: Sequence[int]) -> dict[int, User]:
    rows = await db.scalars(select(User).where(User.id.in_(ids)))
    return {user.id: user for user in rows}


async def create_session(db: AsyncSession, user_id: int, token_hash: str, lifetime: dt.timedelta) -> Session:
    now = utcnow()
    session = Session(token_hash=token_hash, user_id=user_id, created_at=now, expires_at=now + lifetime)
    db.add(session)
    await db.flush()
    return session


async def user_by_token(db: AsyncSession, token_hash: str) -> tuple[User, Session] | None:
    """The user and session of a live token, in one query."""
    return await _live(db, Session.token_hash == token_hash)


async def live_session(db: AsyncSession, session_id: int) -> tuple[User, Session] | None:
    """The user (as stored now) and session of ``session_id`` while it is live, in one query."""
    return await _live(db, Session.id == session_id)


async def _live(db: AsyncSession, which: ColumnElement[bool]) -> tuple[User, Session] | None:
    row = (
        await db.execute(
            select(User, Session)
            .join(Session, Session.user_id == User.id)
            .where(which, Session.revoked_at.is_(None), ~User.password_hash.startswith(DISABLED_MARK))
        )
    ).first()
    if row is None:
        return None
    user, session = row
    if aware(session.expires_at) <= utcnow():
        return None
    return user, session


def aware(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC with its time zone (SQLite keeps none)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


async def live_sessions(db: AsyncSession, user_id: int) -> list[Session]:
    """The user's sessions that are neither revoked nor expired, newest first."""
    rows = await db.scalars(
        select(Session)
        .where(Session.user_id == user_id, Session.revoked_at.is_(None))
        .order_by(Session.id.desc())
    )
    now = utcnow()
    return [session for session in rows if aware(session.expires_at) > now]


async def revoke_session(db: AsyncSession, session_id: int) -> None:
    await db.execute(update(Session).where(Session.id == session_id).values(revoked_at=utcnow()))


async def extend_session(db: AsyncSession, session_id: int, expires_at: dt.datetime) -> None:
    await db.execute(update(Session).where(Session.id == session_id).values(expires_at=expires_at))


async def touch_session(db: AsyncSession, session_id: int, now: dt.datetime) -> None:
    """Record that the session was used at ``now``."""
    await db.execute(update(Session).where(Session.id == session_id).values(last_used_at=now))


async def create_bootstrap_token(
    db: AsyncSession, user_id: int, token_hash: str, lifetime: dt.timedelta
) -> BootstrapToken:
    """A new one-time token for ``user_id``; the user's used or expired ones are deleted."""
    now = utcnow()
    await db.execute(
        delete(BootstrapToken).where(
            BootstrapToken.user_id == user_id,
            or_(BootstrapToken.used_at.is_not(None), BootstrapToken.expires_at < now),
        )
    )
    token = BootstrapToken(token_hash=token_hash, user_id=user_id, created_at=now, expires_at=now + lifetime)
    db.add(token)
    await db.flush()
    return token


async def use_bootstrap_token(db: AsyncSession, token_hash: str) -> User | None:
    """The user of an unused, unexpired bootstrap token, which is used up by this; ``None`` otherwise.

    Marking it used is one conditional update, so two requests racing with the same token get one session.
    """
    token = await db.scalar(select(BootstrapToken).where(BootstrapToken.token_hash == token_hash))
    if token is None or token.used_at is not None or aware(token.expires_at) <= utcnow():
        return None
    marked = await db.execute(
        update(BootstrapToken)
        .where(BootstrapToken.id == token.id, BootstrapToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(marked, "rowcount", 0) != 1:
        return None
    user = await db.get(User, token.user_id)
    if user is None or user.password_hash.startswith(DISABLED_MARK):
        return None
    return user


async def set_disabled(db: AsyncSession, username: str, disabled: bool) -> User | None:
    """Disable the user (and revoke every session of theirs) or enable them again; ``None``: no such user."""
    user = await user_by_name(db, username)
    if user is None:
        return None
    user.password_hash = disabled_hash(user.password_hash) if disabled else enabled_hash(user.password_hash)
    if disabled:
        await db.execute(
            update(Session)
            .where(Session.user_id == user.id, Session.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    await db.flush()
    return user
