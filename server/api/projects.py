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


ProjectRoleEnum = strawberry.enum(
    ProjectRole,
    name="ProjectRole",
    description="What a member may do in a project: VIEWER reads images, segmentations, stats and exports; "
    "EDITOR also uploads, segments, edits, reviews and deletes images; OWNER also renames, shares and "
    "deletes the project. Administrators act as owner everywhere.",
)


@strawberry.type(
    description="Counts over a project's images and their current segmentations, kept up to date by the "
    "database: as cheap for 100,000 images as for 10."
)
class ProjectStats:
    image_count: int = strawberry.field(description="Images in the project.")
    spheroid_count: int = strawberry.field(
        description="Spheroids in the images' current segmentations, all together."
    )
    segmented_image_count: int = strawberry.field(description="Images that have a segmentation.")
    mean_area_px: float | None = strawberry.field(
        description="Mean net area of those spheroids in px² (holes excluded); null when there are none."
    )
    mean_diameter_px: float | None = strawberry.field(
        description="Mean equivalent diameter of those spheroids in pixels; null when there are none."
    )
    by_status: list[StatusCount] = strawberry.field(
        description="Images per segmentation status (lower-case names; states with no image left out)."
    )
    by_review: list[StatusCount] = strawberry.field(
        description="Images per review verdict (lower-case names; verdicts with no image left out)."
    )


@strawberry.type(description="How many images of a project are in one state.")
class StatusCount:
    status: str = strawberry.field(
        description="The state, as the lower-case value of SegmentationStatus or ReviewStatus (e.g. done, "
        "needs_fix)."
    )
    count: int = strawberry.field(description="Images in that state.")


@strawberry.type(description="A user the project is shared with, and their role in it.")
class ProjectMemberType:
    user_id: int = strawberry.field(description="The member's user id.")
    role: ProjectRole = strawberry.field(description="What they may do in the project.")

    @strawberry.field(description="The member's user name (empty when the account was deleted meanwhile).")
    async def username(self, info: Info) -> str:
        user = await info.context.loaders.user.load(self.user_id)
        return user.username if user is not None else ""


@strawberry.type(
    name="Project",
    description="A collection of images shared by its members; only members (and administrators) see it.",
)
class ProjectType:
    id: int = strawberry.field(description="The project's id.")
    name: str = strawberry.field(description="Its name, as its owners gave it.")
    description: str = strawberry.field(description="Free text about the project (may be empty).")
    created_at: dt.datetime = strawberry.field(description="When it was created.")
    updated_at: dt.datetime = strawberry.field(
        description="When its name or description last changed (not its images: see Image.updatedAt)."
    )

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
        description="The users the project is shared with, with their roles (every member may see them).",
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
            strawberry.argument(
                description="Sort order (default: by image, then as its version lists them)."
            ),
        ] = None,
    ) -> SpheroidConnection:
        return await spheroid_connection(info, self.id, first, after, filter, order_by)

    @strawberry.field(
        permission_classes=[CanViewProject],
        directives=[ListSize(slicing_arguments=["first"])],
        description="Jobs (segmentations and exports), newest first.",
    )
    async def jobs(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="How many, from the newest.")] = 20,
    ) -> list[JobType]:
        rows = await info.context.loaders.jobs_of_project.load(self.id)
        return [JobType.of(row) for row in rows[: max(first, 0)]]

    @strawberry.field(
        permission_classes=[CanViewProject],
        directives=[Cost(weight=5)],
        description="Image and spheroid counts and means, for a project overview.",
    )
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


@strawberry.input(description="A new project.")
class ProjectCreateInput:
    name: str = strawberry.field(description="Its name; must not be empty.")
    description: str = strawberry.field(default="", description="Free text about it (default: empty).")


@strawberry.input(description="What to change in a project; omitted or null fields stay as they are.")
class ProjectUpdateInput:
    name: str | None = strawberry.field(default=None, description="A new name; must not be empty.")
    description: str | None = strawberry.field(default=None, description="A new description.")


@strawberry.type(description="The project as it is now.")
class ProjectSuccess:
    project: ProjectType = strawberry.field(description="The project, with the change applied.")


ProjectCreateResult = Annotated[
    ProjectSuccess | InputError,
    strawberry.union("ProjectCreateResult", description="The new project, or which input was wrong."),
]
ProjectUpdateResult = Annotated[
    ProjectSuccess | InputError,
    strawberry.union("ProjectUpdateResult", description="The changed project, or which input was wrong."),
]
ProjectMemberResult = Annotated[
    ProjectSuccess | InputError,
    strawberry.union(
        "ProjectMemberResult",
        description="The project with its members now, or why not: an unknown user name, or a change that "
        "would leave the project without an owner.",
    ),
]


@strawberry.type
class ProjectQuery:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        directives=[ListSize(assumed_size=20)],
        extensions=[CountedList()],
        description="The projects you are a member of (an administrator: every project).",
    )
    async def projects(self, info: Info) -> list[ProjectType]:
        context = info.context
        rows = await service.visible_projects(context.services, context.require_actor())
        for row in rows:
            context.loaders.prime_project(row)
        return [ProjectType.of(row) for row in rows]

    @strawberry.field(
        permission_classes=[CanViewProject],
        description="One project; an error when it does not exist or you are not a member (the two are not "
        "told apart).",
    )
    async def project(
        self, info: Info, id: Annotated[int, strawberry.argument(description="The project's id.")]
    ) -> ProjectType:
        row = await info.context.loaders.project.load(id)
        assert row is not None  # the permission refused a missing project
        return ProjectType.of(row)


@strawberry.type
class ProjectMutation:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description="Create a project you own.")
    async def create_project(
        self,
        info: Info,
        input: Annotated[ProjectCreateInput, strawberry.argument(description="The project to create.")],
    ) -> ProjectCreateResult:
        context = info.context
        try:
            row = await service.create_project(
                context.services, context.require_actor(), input.name, input.description
            )
        except InvalidInputError as error:
            return input_error(error)
        return ProjectSuccess(project=ProjectType.of(row))

    @strawberry.mutation(
        permission_classes=[CanManageProject],
        description="Rename a project or change its description (owners only).",
    )
    async def update_project(
        self,
        info: Info,
        id: Annotated[int, strawberry.argument(description="The project.")],
        input: Annotated[ProjectUpdateInput, strawberry.argument(description="What to change.")],
    ) -> ProjectUpdateResult:
        context = info.context
        try:
            row = await service.update_project(
                context.services, context.require_actor(), id, input.name, input.description, context.loaders
            )
        except InvalidInputError as error:
            return input_error(error)
        return ProjectSuccess(project=ProjectType.of(row))

    @strawberry.mutation(
        permission_classes=[CanManageProject],
        directives=[Cost(weight=10)],
        description="Delete a project with all its images, segmentations and jobs (owners only). Cannot be "
        "undone; its members lose access at once.",
    )
    async def delete_project(
        self, info: Info, id: Annotated[int, strawberry.argument(description="The project.")]
    ) -> OperationInfo:
        context = info.context
        await service.delete_project(context.services, context.require_actor(), id, context.loaders)
        return OperationInfo(message=f"project {id} deleted")

    @strawberry.mutation(
        permission_classes=[CanManageProject], description="Share a project, or change a role."
    )
    async def add_project_member(
        self,
        info: Info,
        id: Annotated[int, strawberry.argument(description="The project.")],
        username: Annotated[str, strawberry.argument(description="The user to share it with.")],
        role: Annotated[
            ProjectRole, strawberry.argument(description="Their role (replaces the one they have).")
        ],
    ) -> ProjectMemberResult:
        context = info.context
        try:
            row = await service.add_member(
                context.services, context.require_actor(), id, username, role, context.loaders
            )
        except InvalidInputError as error:
            return input_error(error)
        return ProjectSuccess(project=ProjectType.of(row))

    @strawberry.mutation(
        permission_classes=[CanManageProject],
        description="Take a project away from a member (owners only); their open subscriptions to it end. "
        "The last owner cannot be removed.",
    )
    async def remove_project_member(
        self,
        info: Info,
        id: Annotated[int, strawberry.argument(description="The project.")],
        username: Annotated[str, strawberry.argument(description="The member to remove.")],
    ) -> ProjectMemberResult:
        context = info.context
        try:
            row = await service.remove_member(
                context.services, context.require_actor(), id, username, context.loaders
            )
        except InvalidInputError as error:
            return input_error(error)
        return ProjectSuccess(project=ProjectType.of(row))
