"""Users and sessions; a session is live while it is not revoked, not expired and its user not disabled."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Session, User, utcnow
from server.domain.accounts import DISABLED_MARK, disabled_hash, enabled_hash

__all__ = [
    "create_session",
    "create_user",
    "live_session",
    "revoke_session",
    "set_disabled",
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
    expires = session.expires_at if session.expires_at.tzinfo else session.expires_at.replace(tzinfo=dt.UTC)
    if expires <= utcnow():
        return None
    return user, session


async def revoke_session(db: AsyncSession, session_id: int) -> None:
    await db.execute(update(Session).where(Session.id == session_id).values(revoked_at=utcnow()))


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
