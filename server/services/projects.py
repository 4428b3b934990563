"""Projects: creating, renaming, deleting, and sharing them (members and their roles).

Every change but creation needs the ``manage`` right in the project. Every change is announced, for the
projects lists that follow them (``project_created``, ``project_updated``, ``access_granted`` naming who
gained access); a deletion and a removed member (``project_deleted``, ``access_changed`` naming who lost
access) also end their open subscriptions on the project (see :mod:`server.services.watches`); originals no
image holds any more after a deletion are removed from the store.
"""

from __future__ import annotations

from server.db import projects, users
from server.db.models import Project, utcnow
from server.domain.errors import InvalidInputError, UnknownUserError
from server.domain.roles import Action, ProjectRole
from server.events import Event, EventKind
from server.services.blobs import remove_unused_originals
from server.services.events import announce
from server.services.permissions import Actor, RoleLookup, StoredRoles, require_project_action
from server.services.runtime import Runtime

__all__ = [
    "add_member",
    "checked_name",
    "create_project",
    "delete_project",
    "remove_member",
    "update_project",
    "visible_projects",
]


def checked_name(name: str) -> str:
    """The name without surrounding spaces; :class:`InvalidInputError` unless it has 1 to 200 characters."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInputError("name", "a project name has 1 to 200 characters")
    return name


async def visible_projects(runtime: Runtime, actor: Actor) -> list[Project]:
    """The projects ``actor`` is a member of; every project for an administrator."""
    async with runtime.db() as db:
        return await projects.projects_of_user(db, actor.user_id, actor.is_admin)


async def create_project(runtime: Runtime, actor: Actor, name: str, description: str) -> Project:
    """A new project owned by ``actor``."""
    name = checked_name(name)
    async with runtime.db.begin() as db:
        row = await projects.create_project(db, name, description, actor.user_id)
    owner = {"user_ids": [actor.user_id]}
    await announce(runtime, Event(EventKind.PROJECT_CREATED, row.id, actor=actor.username, data=owner))
    return row


async def update_project(
    runtime: Runtime,
    actor: Actor,
    project_id: int,
    name: str | None,
    description: str | None,
    lookup: RoleLookup | None = None,
) -> Project:
    """Rename the project or change its description (``None``: leave it)."""
    await _require_manage(runtime, actor, project_id, lookup)
    name = checked_name(name) if name is not None else None
    async with runtime.db.begin() as db:
        row = (await projects.projects_by_ids(db, [project_id]))[project_id]
        if name is not None:
            row.name = name
        if description is not None:
            row.description = description
        row.updated_at = utcnow()
    await announce(runtime, Event(EventKind.PROJECT_UPDATED, project_id, actor=actor.username))
    return row


async def delete_project(
    runtime: Runtime, actor: Actor, project_id: int, lookup: RoleLookup | None = None
) -> None:
    """Delete the project with its images, versions and jobs."""
    await _require_manage(runtime, actor, project_id, lookup)
    async with runtime.db.begin() as db:
        members = (await projects.members_of(db, [project_id]))[project_id]
        orphans = await projects.delete_project(db, project_id)
    lost = {"user_ids": [member.user_id for member in members]}
    await announce(runtime, Event(EventKind.PROJECT_DELETED, project_id, actor=actor.username, data=lost))
    await remove_unused_originals(runtime, orphans)


async def add_member(
    runtime: Runtime,
    actor: Actor,
    project_id: int,
    username: str,
    role: ProjectRole,
    lookup: RoleLookup | None = None,
) -> Project:
    """Share the project with ``username`` as ``role``, or change their role; :class:`UnknownUserError`,
    or :class:`LastOwnerError` when that would leave the project without an owner."""
    await _require_manage(runtime, actor, project_id, lookup)
    async with runtime.db.begin() as db:
        user = await users.user_by_name(db, username)
        if user is None:
            raise UnknownUserError(username)
        await projects.set_member(db, project_id, user.id, role.value)
        row = (await projects.projects_by_ids(db, [project_id]))[project_id]
    gained = {"user_ids": [user.id]}
    await announce(runtime, Event(EventKind.ACCESS_GRANTED, project_id, actor=actor.username, data=gained))
    return row


async def remove_member(
    runtime: Runtime, actor: Actor, project_id: int, username: str, lookup: RoleLookup | None = None
) -> Project:
    """Take the project away from ``username``; errors as :func:`add_member`."""
    await _require_manage(runtime, actor, project_id, lookup)
    async with runtime.db.begin() as db:
        user = await users.user_by_name(db, username)
        if user is None:
            raise UnknownUserError(username)
        await projects.remove_member(db, project_id, user.id)
        row = (await projects.projects_by_ids(db, [project_id]))[project_id]
    lost = {"user_ids": [user.id]}
    await announce(runtime, Event(EventKind.ACCESS_CHANGED, project_id, actor=actor.username, data=lost))
    return row


async def _require_manage(runtime: Runtime, actor: Actor, project_id: int, lookup: RoleLookup | None) -> None:
    roles = lookup or StoredRoles(runtime.db, actor.user_id)
    await require_project_action(actor, project_id, Action.MANAGE, roles, "manage it")
