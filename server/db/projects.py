"""Projects and their members."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Image, Project, ProjectMember, utcnow

__all__ = [
    "create_project",
    "delete_project",
    "members_of",
    "project_ids_of_images",
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
    member = await db.get(ProjectMember, (project_id, user_id))
    if member is None:
        db.add(ProjectMember(project_id=project_id, user_id=user_id, role=role))
    else:
        member.role = role
    await db.flush()


async def remove_member(db: AsyncSession, project_id: int, user_id: int) -> bool:
    """Remove a membership; ``False`` when that would leave the project without an owner."""
    owners = await db.scalar(
        select(func.count()).where(ProjectMember.project_id == project_id, ProjectMember.role == "owner")
    )
    member = await db.get(ProjectMember, (project_id, user_id))
    if member is None:
        return True
    if member.role == "owner" and (owners or 0) <= 1:
        return False
    await db.delete(member)
    await db.flush()
    return True


async def project_ids_of_images(db: AsyncSession, image_ids: Sequence[int]) -> dict[int, int]:
    rows = await db.execute(select(Image.id, Image.project_id).where(Image.id.in_(image_ids)))
    return {image_id: project_id for image_id, project_id in rows}
