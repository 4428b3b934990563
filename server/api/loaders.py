"""DataLoaders, one set per request: each relation costs one statement per batch, whatever the page size.

``Loaders(..., batched=False)`` keeps the same interface but loads every key with its own statement and
caches nothing, as naive per-object resolvers do (``dataloader_batching = false``; for benchmarks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.dataloader import DataLoader

from cluster import Spheroid
from server.db import images, jobs, projects, reviews, segmentations, users
from server.db.images import ProjectStats
from server.db.models import Image, Job, Project, ProjectMember, Review, SegmentationVersion, User

__all__ = ["Grants", "Loaders"]

K = TypeVar("K")
V = TypeVar("V")


class Grants:
    """Permission decisions already made in this request (none kept for naive resolvers, which check each
    object on its own). A request is short, so a membership removed meanwhile applies from the next one."""

    def __init__(self, *, enabled: bool) -> None:
        self._enabled = enabled
        self._granted: set[Hashable] = set()

    def __contains__(self, decision: Hashable) -> bool:
        return decision in self._granted

    def remember(self, decision: Hashable) -> None:
        if self._enabled:
            self._granted.add(decision)


class Loaders:
    def __init__(
        self, db: async_sessionmaker[AsyncSession], user_id: int | None, *, batched: bool = True
    ) -> None:
        self._db = db
        self.user_id = user_id
        self._options: dict[str, Any] = {} if batched else {"max_batch_size": 1, "cache": False}
        self.project: DataLoader[int, Project | None] = self._make(projects.projects_by_ids, None)
        self.role = DataLoader[int, str | None](self._load_roles, **self._options)
        self.members = self._make(projects.members_of, list[ProjectMember]())
        self.stats = self._make(images.stats_of, ProjectStats())
        self.image: DataLoader[int, Image | None] = self._make(images.images_by_ids, None)
        self.segmentation: DataLoader[int, SegmentationVersion | None] = self._make(
            segmentations.current_of, None
        )
        self.spheroids = self._make(segmentations.spheroids_of, list[Spheroid]())
        self.history = self._make(segmentations.history_pages, list[SegmentationVersion]())
        self.version: DataLoader[tuple[int, int], SegmentationVersion | None] = self._make(
            segmentations.versions_of, None
        )
        self.reviews = self._make(reviews.reviews_of, list[Review]())
        self.user: DataLoader[int, User | None] = self._make(users.users_by_ids, None)
        self.job: DataLoader[int, Job | None] = self._make(jobs.jobs_by_ids, None)
        self.jobs_of_project = self._make(jobs.jobs_of_projects, list[Job]())
        self.job_failures = self._make(jobs.failed_tasks_of, list[tuple[int, str, str]]())
        self.granted = Grants(enabled=batched)

    def _make(
        self, fetch: Callable[[AsyncSession, Sequence[K]], Awaitable[dict[K, Any]]], missing: V
    ) -> DataLoader[K, V]:
        async def load(keys: list[K]) -> list[V]:
            async with self._db() as session:
                found = await fetch(session, keys)
            return [found.get(key, missing) for key in keys]

        return DataLoader(load, **self._options)

    async def _load_roles(self, project_ids: list[int]) -> list[str | None]:
        if self.user_id is None:
            return [None] * len(project_ids)
        async with self._db() as session:
            found = await projects.roles_of(session, [(self.user_id, pid) for pid in project_ids])
        return [found.get((self.user_id, pid)) for pid in project_ids]

    async def project_exists(self, project_id: int) -> bool:
        """For :func:`server.services.permissions.project_role` (a :class:`RoleLookup`)."""
        return await self.project.load(project_id) is not None

    async def member_role(self, project_id: int) -> str | None:
        role: str | None = await self.role.load(project_id)
        return role

    def prime_images(self, rows: Sequence[Image]) -> None:
        for row in rows:
            self.image.prime(row.id, row)

    def prime_project(self, row: Project) -> None:
        self.project.prime(row.id, row)

    def prime_user(self, row: User) -> None:
        self.user.prime(row.id, row)
