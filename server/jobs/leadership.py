"""Which replica dispatches: a PostgreSQL advisory lock, held by one database session at a time.

Every replica's dispatcher asks for the lock every poll interval; the one that holds it dispatches. The
lock belongs to the session of a connection kept open for as long as it leads, so when that replica dies
(or its connection does), PostgreSQL releases the lock and the next replica to ask takes over. On SQLite
there is one server process, which always leads.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["LOCK_KEY", "AdvisoryLock", "AlwaysLeader", "Leadership", "open_leadership"]

log = logging.getLogger(__name__)

LOCK_KEY = 0x5350_4845  # "SPHE": the advisory lock every replica of this database competes for


class Leadership(Protocol):
    async def acquire(self) -> bool:
        """Try to lead; ``True`` when this process leads (now or already)."""
        ...

    async def holds(self) -> bool:
        """Whether this process still leads (its lock's connection is alive)."""
        ...

    async def release(self) -> None: ...


class AlwaysLeader:
    async def acquire(self) -> bool:
        return True

    async def holds(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class AdvisoryLock:
    def __init__(self, engine: AsyncEngine, key: int = LOCK_KEY) -> None:
        self._engine = engine
        self._key = key
        self._connection: AsyncConnection | None = None

    async def acquire(self) -> bool:
        if self._connection is not None:
            return await self.holds()
        connection = await self._engine.connect()
        try:
            got = bool(await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}))
            await connection.commit()  # the lock belongs to the session, not to this transaction
        except Exception:
            await connection.close()
            raise
        if not got:
            await connection.close()
            return False
        self._connection = connection
        log.info("this replica now dispatches (advisory lock %d)", self._key)
        return True

    async def holds(self) -> bool:
        if self._connection is None:
            return False
        try:
            await self._connection.execute(text("SELECT 1"))
            await self._connection.commit()
            return True
        except Exception as error:  # a dead connection: the lock went with it
            log.warning("lost the dispatcher lock: %s", error)
            await self._drop()
            return False

    async def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
                await self._connection.commit()
            await self._drop()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


def open_leadership(engine: AsyncEngine) -> Leadership:
    return AdvisoryLock(engine) if engine.dialect.name == "postgresql" else AlwaysLeader()
