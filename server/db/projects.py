"""Projects and their members."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Image, Project, ProjectMember, utcnow
from server.domain.roles import ProjectRole, check_keeps_owner

__all__ = [
    "create_project",
    "delete_project",
    "members_of",
    "projects_by_ids",
    "projects_of_user",
    "remove_member",
    "roles_of",
    "set_member",
]


async def create_project(db: AsyncSession, name: str, description: str, owner_id: int) -> Project:
    now = utcnow()
    project = Project(name=name, description=description, created_by=owner_id, created_at=now, updated_at=now)
    db.add(project)
    await db.flush()
    db.add(ProjectMember(project_id=project.id, user_id=owner_id, role="owner"))
    await db.flush()
    return project


async def projects_by_ids(db: AsyncSession, ids: Sequence[int]) -> dict[int, Project]:
    return {p.id: p for p in await db.scalars(select(Project).where(Project.id.in_(ids)))}


async def projects_of_user(db: AsyncSession, user_id: int, everything: bool) -> list[Project]:
    query = select(Project).order_by(Project.name, Project.id)
    if not everything:
        query = query.join(ProjectMember, ProjectMember.project_id == Project.id).where(
            ProjectMember.user_id == user_id
        )
    return list(await db.scalars(query))


async def delete_project(db: AsyncSession, project_id: int) -> list[str]:
    """Delete the project with its images and segmentations; return content hashes no project uses now."""
    hashes = set(await db.scalars(select(Image.content_hash).where(Image.project_id == project_id)))
    await db.execute(delete(Project).where(Project.id == project_id))
    still_used = set(await db.scalars(select(Image.content_hash).where(Image.content_hash.in_(hashes))))
    return sorted(hashes - still_used)


async def roles_of(db: AsyncSession, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """Membership roles for ``(user_id, project_id)`` pairs (missing pairs: no membership)."""
    rows = await db.execute(
        select(ProjectMember.user_id, ProjectMember.project_id, ProjectMember.role).where(
            tuple_(ProjectMember.user_id, ProjectMember.project_id).in_(pairs)
        )
    )
    return {(user_id, project_id): role for user_id, project_id, role in rows}


async def members_of(db: AsyncSession, project_ids: Sequence[int]) -> dict[int, list[ProjectMember]]:
    result: dict[int, list[ProjectMember]] = {pid: [] for pid in project_ids}
    rows = await db.scalars(
        select(ProjectMember).where(ProjectMember.project_id.in_(project_ids)).order_by(ProjectMember.user_id)
    )
    for member in rows:
        result[member.project_id].append(member)
    return result


async def set_member(db: AsyncSession, project_id: int, user_id: int, role: str) -> None:
    """Add a member or change their role; :class:`LastOwnerError` when that demotes the last owner."""
    member = await _membership_locked(db, project_id, user_id)
    if member is None:
        db.add(ProjectMember(project_id=project_id, user_id=user_id, role=role))
    else:
        await _check_keeps_owner(db, project_id, member, ProjectRole(role))
        member.role = role
    await db.flush()


async def remove_member(db: AsyncSession, project_id: int, user_id: int) -> bool:
    """Remove a membership; ``False`` if there was none, :class:`LastOwnerError` if it is the last owner's."""
    member = await _membership_locked(db, project_id, user_id)
    if member is None:
        return False
    await _check_keeps_owner(db, project_id, member, None)
    await db.delete(member)
    await db.flush()
    return True


async def _membership_locked(db: AsyncSession, project_id: int, user_id: int) -> ProjectMember | None:
    """Lock the project's memberships for this transaction, then read one.

    Two owners demoting themselves at once must not both see the other still owner: a no-op update of the
    project row makes membership changes of one project wait for each other (a row lock on PostgreSQL, the
    write lock on SQLite), and the owners are counted only after it.
    """
    await db.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(updated_at=Project.updated_at)
        .execution_options(synchronize_session=False)
    )
    return await db.get(ProjectMember, (project_id, user_id), populate_existing=True)


async def _check_keeps_owner(
    db: AsyncSession, project_id: int, member: ProjectMember, after: ProjectRole | None
) -> None:
    owners = await db.scalar(
        select(func.count()).where(ProjectMember.project_id == project_id, ProjectMember.role == "owner")
    )
    check_keeps_owner(owners or 0, ProjectRole(member.role), after)
