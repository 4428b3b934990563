"""What a database needs before a server serves from it: the newest schema, and (offline) the local user.

``spheroseg server migrate`` and the offline start (``spheroseg server serve --offline``) both go through
:func:`migrate`; the offline start then makes sure its one local user exists with :func:`ensure_local_user`.
They take a database URL or a session factory, not a whole runtime: nothing else is started yet.
"""

from __future__ import annotations

import getpass
import re
import secrets

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db import users
from server.db.engine import create_engine
from server.db.migrate import current_revision, upgrade
from server.db.models import User
from server.domain.auth import Passwords, check_username
from server.domain.errors import InvalidInputError
from server.domain.roles import UserRole

__all__ = ["FALLBACK_LOCAL_USER", "ensure_local_user", "local_username", "migrate"]

FALLBACK_LOCAL_USER = "local"
"""The local user's name when the operating system's user name is not a valid user name."""


async def migrate(database_url: str) -> str | None:
    """Create or upgrade the schema to the newest version; the revision the database is at then."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        return await current_revision(engine)
    finally:
        await engine.dispose()


def local_username() -> str:
    """The offline server's one user: named as the operating system's user, where that name is valid."""
    try:
        name = re.sub(r"[^A-Za-z0-9._@-]", "_", getpass.getuser())[:64]
        return check_username(name)
    except (OSError, KeyError, InvalidInputError):  # no user name known, or one the rules refuse
        return FALLBACK_LOCAL_USER


async def ensure_local_user(
    db: async_sessionmaker[AsyncSession], passwords: Passwords, username: str
) -> User:
    """The user ``username``, made an administrator with an unguessable password if missing (they sign
    in with bootstrap tokens, never with a password). An existing user is kept as they are."""
    async with db.begin() as session:
        found = await users.user_by_name(session, username)
        if found is not None:
            return found
    password_hash = passwords.hash(secrets.token_urlsafe(32), username)
    async with db.begin() as session:
        created = await users.create_user(session, username, password_hash, UserRole.ADMIN.value)
        if created is None:  # made meanwhile by another process: take theirs
            created = await users.user_by_name(session, username)
        assert created is not None
        return created
