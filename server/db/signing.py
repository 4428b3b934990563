"""Rotations of the image URL signing key (see server.delivery.keyring)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import SigningKey

__all__ = ["add_rotation", "latest_rotation"]


async def latest_rotation(db: AsyncSession) -> SigningKey | None:
    found: SigningKey | None = await db.scalar(select(SigningKey).order_by(SigningKey.id.desc()).limit(1))
    return found


async def add_rotation(db: AsyncSession) -> SigningKey:
    row = SigningKey(salt=secrets.token_hex(32))
    db.add(row)
    await db.flush()
    return row
