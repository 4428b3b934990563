"""A project's spheroid table: a page of the spheroids of its images' current segmentations, each with its
image and metrics, filtered and sorted by a metric (for the desktop's tables and plots).

Needs the ``view`` right. A page costs two SQL statements whatever its size (``server.db.spheroid_table``).
"""

from __future__ import annotations

from server.db import spheroid_table
from server.db.spheroid_table import SpheroidPage
from server.domain.errors import InvalidInputError
from server.domain.roles import Action
from server.domain.spheroid_table import SpheroidFilter, SpheroidOrder
from server.services.permissions import Actor, RoleLookup, StoredRoles, require_project_action
from server.services.runtime import Runtime

__all__ = ["spheroid_page"]


async def spheroid_page(
    runtime: Runtime,
    actor: Actor,
    project_id: int,
    where: SpheroidFilter,
    order: SpheroidOrder,
    first: int,
    after: str | None = None,
    lookup: RoleLookup | None = None,
) -> SpheroidPage:
    """``first`` spheroids after the cursor ``after``; :class:`InvalidInputError` for a page size out of
    range or a cursor this server did not make for this order, :class:`PermissionDeniedError`."""
    maximum = runtime.settings.max_page_size
    if not 0 <= first <= maximum:
        raise InvalidInputError("first", f"must be between 0 and {maximum}")
    await require_project_action(
        actor, project_id, Action.VIEW, lookup or StoredRoles(runtime.db, actor.user_id), "see it"
    )
    async with runtime.db() as db:
        return await spheroid_table.spheroid_page(db, project_id, where, order, first, after)
