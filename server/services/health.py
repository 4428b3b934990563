"""Whether this server can serve: its database and blob store answer (the readiness probe)."""

from __future__ import annotations

import logging

from sqlalchemy import text

from server.exceptions import StorageError
from server.services.runtime import Runtime

__all__ = ["readiness"]

logger = logging.getLogger(__name__)

OK = "ok"


async def readiness(runtime: Runtime) -> dict[str, str]:
    """``"ok"``, or why not, for the database and the storage; ready when every value is ``"ok"``."""
    checks: dict[str, str] = {}
    try:
        async with runtime.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = OK
    except Exception as error:  # any driver error means not ready; the reason goes to the probe
        logger.warning("readiness: database unreachable: %s", error)
        checks["database"] = f"unreachable: {type(error).__name__}"
    try:
        await runtime.store.check()
        checks["storage"] = OK
    except StorageError as error:
        checks["storage"] = f"unreachable: {error}"
    return checks
