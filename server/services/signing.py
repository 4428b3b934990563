"""Retiring every image URL handed out so far: a new signing key, recorded where every replica looks."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db import signing
from server.delivery.keyring import Rotation

__all__ = ["rotate_signing_key"]


async def rotate_signing_key(db: async_sessionmaker[AsyncSession]) -> str:
    """Record a new key and return its id; running servers take it up within
    ``delivery_signing_key_refresh_seconds`` (see :class:`server.delivery.Keyring`), so it needs no
    running server and no secret key here (the command line calls it)."""
    async with db.begin() as session:
        row = await signing.add_rotation(session)
        return Rotation(row.id, row.salt).key_id
