"""Projects: ``projects``, ``project(id)`` with images and stats, and create/update/delete/share."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from server.api.context import Info
from server.api.cost import Cost, ListSize
from server.api.extensions import CountedList
from server.api.image_pages import ImageConnection, image_connection
from server.api.images import ImageFilterInput
from server.api.jobs import JobType
from server.api.permissions import CanManageProject, CanViewProject, IsAuthenticated, project_role
from server.api.results import InputError, OperationInfo, input_error
from server.api.spheroids import (
    SpheroidConnection,
    SpheroidOrderInput,
    SpheroidTableFilterInput,
    spheroid_connection,
)
from server.db.models import Project
from server.domain.errors import InvalidInputError
from server.domain.listing import ImageOrder, PageRequest
from server.domain.roles import ProjectRole
from server.services import projects as service

__all__ = ["ProjectMutation", "ProjectQuery", "ProjectType"]


ProjectRoleEnum = strawberry.enum(ProjectRole, name="ProjectRole")


@strawberry.type
class ProjectStats:
    image_count: int
    spheroid_count: int
    segmented_image_count: int
    mean_area_px: float | None
    mean_diameter_px: float | None
    by_status: list[StatusCount]
    by_review: list[StatusCount]


@strawberry.type
class StatusCount:
    status: str
    count: int


@strawberry.type
class ProjectMemberType:
    user_id: int
    role: ProjectRole

    @strawberry.field
    async def username(self, info: Info) -> str:
        user = await info.context.loaders.user.load(self.user_id)
        return user.username if user is not None else ""


@strawberry.type(name="Project")
class ProjectType:
    id: int
    name: str
    description: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: Project) -> ProjectType:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def members_of_project(self) -> int:
        return self.id

    @strawberry.field(
        permission_classes=[CanViewProject], description="Your role here (admins act as owner)."
    )
    async def my_role(self, info: Info) -> ProjectRole | None:
        return await project_role(info.context, self.id)

    @strawberry.field(
        permission_classes=[CanViewProject],
        directives=[ListSize(assumed_size=20)],
        extensions=[CountedList()],
    )
    async def members(self, info: Info) -> list[ProjectMemberType]:
        rows = await info.context.loaders.members.load(self.id)
        return [ProjectMemberType(user_id=row.user_id, role=ProjectRole(row.role)) for row in rows]

    @strawberry.field(
        permission_classes=[CanViewProject],
        directives=[ListSize(slicing_arguments=["last", "first"], sized_fields=["edges"])],
        description="The project's images, a page at a time: `first` after the cursor `after`, or, with "
        "`last` or `before`, the `last` (else `first`) images before `before` (else before the end). Two "
        "database statements a page, whatever its size.",
    )
    async def images(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="Page size going forwards.")] = 50,
        after: Annotated[
            str | None, strawberry.argument(description="Start after this cursor (forwards).")
        ] = None,
        last: Annotated[
            int | None, strawberry.argument(description="Page size going backwards (then `first` is unused).")
        ] = None,
        before: Annotated[
            str | None, strawberry.argument(description="End before this cursor (backwards).")
        ] = None,
        filter: Annotated[
            ImageFilterInput | None, strawberry.argument(description="Which images make the list.")
        ] = None,
        order_by: Annotated[ImageOrder, strawberry.argument(description="The list's order.")] = (
            ImageOrder.NAME_ASC
        ),
        ids: Annotated[
            list[int] | None,
            strawberry.argument(
                description="Only these images (an event's `imageIds`, at most 500); positions stay those "
                "of the whole filtered list."
            ),
        ] = None,
        updated_since: Annotated[
            dt.datetime | None,
            strawberry.argument(
                description="Only images whose `updatedAt` is this time or later: after a reconnect, pass "
                "the newest `updatedAt` you have seen (images deleted meanwhile are not listed; compare "
                "ids)."
            ),
        ] = None,
    ) -> ImageConnection:
        page = PageRequest(
            order_by,
            first,
            after,
            last,
            before,
            tuple(ids) if ids is not None else None,
            updated_since,
        )
        return await image_connection(info, self.id, filter, page)

    @strawberry.field(
        permission_classes=[CanViewProject],
        directives=[ListSize(slicing_arguments=["first"], sized_fields=["edges"])],
        description="The spheroids of the images' current segmentations, one row each with its image and "
        "metrics, sorted by a metric: a page costs the same few SQL statements whatever its size.",
    )
    async def spheroids(
        self,
        info: Info,
        first: Annotated[
            int, strawberry.argument(description="Page size (at most the server's limit).")
        ] = 100,
        after: Annotated[
            str | None, strawberry.argument(description="An edge's cursor: continue after it.")
        ] = None,
        filter: Annotated[
            SpheroidTableFilterInput | None,
            strawberry.argument(description="Which spheroids (default: all)."),
        ] = None,
        order_by: Annotated[
            SpheroidOrderInput | None,
            strawberry.argument(description="Sort order (default: by image, then position in the image)."),
        ] = None,
    ) -> SpheroidConnection:
        return await spheroid_connection(info, self.id, first, after, filter, order_by)

    @strawberry.field(
        permission_classes=[CanViewProject],
        directives=[ListSize(slicing_arguments=["first"])],
        description="Jobs (segmentations and exports), newest first.",
    )
    async def jobs(self, info: Info, first: int = 20) -> list[JobType]:
        rows = await info.context.loaders.jobs_of_project.load(self.id)
        return [JobType.of(row) for row in rows[: max(first, 0)]]

    @strawberry.field(permission_classes=[CanViewProject], directives=[Cost(weight=5)])
    async def stats(self, info: Info) -> ProjectStats:
        found = await info.context.loaders.stats.load(self.id)
        count = found.spheroid_count
        return ProjectStats(
            image_count=found.image_count,
            spheroid_count=count,
            segmented_image_count=found.segmented_images,
            mean_area_px=found.area_sum_px / count if count else None,
            mean_diameter_px=found.diameter_sum_px / count if count else None,
            by_status=[StatusCount(status=k, count=v) for k, v in sorted(found.by_status.items())],
            by_review=[StatusCount(status=k, count=v) for k, v in sorted(found.by_review.items())],
        )


@strawberry.input
class ProjectCreateInput:
    name: str
    description: str = ""


@strawberry.input
class ProjectUpdateInput:
    name: str | None = None
    description: str | None = None


@strawberry.type
class ProjectSuccess:
    project: ProjectType


ProjectCreateResult = Annotated[ProjectSuccess | InputError, strawberry.union("ProjectCreateResult")]
ProjectUpdateResult = Annotated[ProjectSuccess | InputError, strawberry.union("ProjectUpdateResult")]
ProjectMemberResult = Annotated[ProjectSuccess | InputError, strawberry.union("ProjectMemberResult")]


@strawberry.type
class ProjectQuery:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        directives=[ListSize(assumed_size=20)],
        extensions=[CountedList()],
    )
    async def projects(self, info: Info) -> list[ProjectType]:
        context = info.context
        rows = await service.visible_projects(context.services, context.require_actor())
        for row in rows:
            context.loaders.prime_project(row)
        return [ProjectType.of(row) for row in rows]

    @strawberry.field(permission_classes=[CanViewProject])
    async def project(self, info: Info, id: int) -> ProjectType:
        row = await info.context.loaders.project.load(id)
        assert row is not None  # the permission refused a missing project
        return ProjectType.of(row)


@strawberry.type
class ProjectMutation:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description="Create a project you own.")
    async def create_project(self, info: Info, input: ProjectCreateInput) -> ProjectCreateResult:
        context = info.context
        try:
            row = await service.create_project(
                context.services, context.require_actor(), input.name, input.description
            )
        except InvalidInputError as error:
            return input_error(error)
        return ProjectSuccess(project=ProjectType.of(row))

    @strawberry.mutation(permission_classes=[CanManageProject])
    async def update_project(self, info: Info, id: int, input: ProjectUpdateInput) -> ProjectUpdateResult:
        context = info.context
        try:
            row = await service.update_project(
                context.services, context.require_actor(), id, input.name, input.description, context.loaders
            )
        except InvalidInputError as error:
            return input_error(error)
        return ProjectSuccess(project=ProjectType.of(row))

    @strawberry.mutation(permission_classes=[CanManageProject], directives=[Cost(weight=10)])
    async def delete_project(self, info: Info, id: int) -> OperationInfo:
        context = info.context
        await service.delete_project(context.services, context.require_actor(), id, context.loaders)
        return OperationInfo(message=f"project {id} deleted")

    @strawberry.mutation(
        permission_classes=[CanManageProject], description="Share a project, or change a role."
    )
    async def add_project_member(
        self, info: Info, id: int, username: str, role: ProjectRole
    ) -> ProjectMemberResult:
        context = info.context
        try:
            row = await service.add_member(
                context.services, context.require_actor(), id, username, role, context.loaders
            )
        except InvalidInputError as error:
            return input_error(error)
        return ProjectSuccess(project=ProjectType.of(row))

    @strawberry.mutation(permission_classes=[CanManageProject])
    async def remove_project_member(self, info: Info, id: int, username: str) -> ProjectMemberResult:
        context = info.context
        try:
            row = await service.remove_member(
                context.services, context.require_actor(), id, username, context.loaders
            )
        except InvalidInputError as error:
            return input_error(error)
        return ProjectSuccess(project=ProjectType.of(row))
