"""Who asks (:class:`Actor`) and what they may do in a project: the one rule every entry point applies.

GraphQL's permission classes ask it through the request's DataLoaders (a page of 100 images in one project
costs one lookup); a service asked directly (the REST upload, the command line) passes a lookup that reads
the database. Both give a project that does not exist and one the actor may not see the same answer, so
strangers learn nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db import projects
from server.db.models import User
from server.domain.roles import Action, ProjectRole, UserRole, allows, effective_role
from server.exceptions import PermissionDeniedError

__all__ = ["Actor", "RoleLookup", "StoredRoles", "project_role", "require_admin", "require_project_action"]

VERBS = {Action.VIEW: "see", Action.EDIT: "change", Action.MANAGE: "manage"}
"""How a refusal names each action."""


@dataclass(frozen=True)
class Actor:
    """The user a service acts for, as known when their request began."""

    user_id: int
    username: str
    role: UserRole

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.id, user.username, UserRole(user.role))

    @property
    def is_admin(self) -> bool:
        return self.role is UserRole.ADMIN


class RoleLookup(Protocol):
    """Where :func:`project_role` reads whether a project exists and the actor's membership in it."""

    async def project_exists(self, project_id: int) -> bool: ...

    async def member_role(self, project_id: int) -> str | None:
        """The actor's stored role in the project, ``None`` without a membership."""
        ...


class StoredRoles:
    """A :class:`RoleLookup` reading the database, one statement per question (for one-off checks)."""

    def __init__(self, db: async_sessionmaker[AsyncSession], user_id: int) -> None:
        self._db = db
        self._user_id = user_id

    async def project_exists(self, project_id: int) -> bool:
        async with self._db() as db:
            return bool(await projects.projects_by_ids(db, [project_id]))

    async def member_role(self, project_id: int) -> str | None:
        async with self._db() as db:
            found = await projects.roles_of(db, [(self._user_id, project_id)])
        return found.get((self._user_id, project_id))


async def project_role(actor: Actor | None, project_id: int, lookup: RoleLookup) -> ProjectRole | None:
    """The role ``actor`` acts with in the project; ``None`` for none, or for a project that does not exist
    (an admin acts as owner of every project that exists)."""
    if actor is None:
        return None
    if actor.is_admin:
        return ProjectRole.OWNER if await lookup.project_exists(project_id) else None
    member = await lookup.member_role(project_id)
    return effective_role(actor.role, ProjectRole(member) if member else None)


async def require_project_action(
    actor: Actor, project_id: int, action: Action, lookup: RoleLookup, what: str
) -> None:
    """Raise :class:`PermissionDeniedError` unless ``actor`` may do ``action`` in the project; ``what`` ends
    the message (``"not found, or you may not <what>"``)."""
    if not allows(await project_role(actor, project_id, lookup), action):
        raise PermissionDeniedError(f"not found, or you may not {what}")


def require_admin(actor: Actor) -> None:
    """Raise :class:`PermissionDeniedError` unless ``actor`` is an administrator."""
    if not actor.is_admin:
        raise PermissionDeniedError("only an administrator may do this")
