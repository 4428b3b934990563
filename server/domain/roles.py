"""Who may do what: user roles, project roles and the actions each project role allows.

A user is an ``admin`` (manages users, may do everything in every project) or a ``member``. Within a
project a member is a ``viewer`` (reads images, segmentations, stats, exports), an ``editor`` (also uploads,
edits segmentations, reviews and deletes images) or an ``owner`` (also renames, shares and deletes the
project). A user with no membership sees nothing of the project, not even that it exists. A project always
keeps at least one owner: no role change or removal may take away its last one (:func:`check_keeps_owner`).
"""

from __future__ import annotations

import enum

from server.domain.errors import LastOwnerError

__all__ = ["Action", "ProjectRole", "UserRole", "allows", "check_keeps_owner", "effective_role"]


class UserRole(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class ProjectRole(enum.StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {ProjectRole.VIEWER: 1, ProjectRole.EDITOR: 2, ProjectRole.OWNER: 3}


class Action(enum.StrEnum):
    """What a request wants to do with a project; each needs a least project role."""

    VIEW = "view"
    EDIT = "edit"
    MANAGE = "manage"

    @property
    def needs(self) -> ProjectRole:
        return _NEEDS[self]


_NEEDS = {Action.VIEW: ProjectRole.VIEWER, Action.EDIT: ProjectRole.EDITOR, Action.MANAGE: ProjectRole.OWNER}


def effective_role(user_role: UserRole | None, member_role: ProjectRole | None) -> ProjectRole | None:
    """The role a user acts with in a project: an admin acts as owner everywhere, others by membership."""
    if user_role is UserRole.ADMIN:
        return ProjectRole.OWNER
    return member_role


def allows(role: ProjectRole | None, action: Action) -> bool:
    """Whether ``role`` (``None``: no membership) may perform ``action``."""
    return role is not None and role.rank >= action.needs.rank


def check_keeps_owner(owners: int, before: ProjectRole | None, after: ProjectRole | None) -> None:
    """Refuse moving one member from ``before`` to ``after`` (``None``: no membership) when the project has
    ``owners`` owners and that would leave it none; every path that changes a membership asks this."""
    if before is ProjectRole.OWNER and after is not ProjectRole.OWNER and owners <= 1:
        raise LastOwnerError()
