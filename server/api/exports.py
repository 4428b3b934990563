"""``exportProject``: start an export job (a zip of ``cluster`` exports: COCO, CSV, XLSX, masks, GeoJSON).

The work is :func:`server.services.exports.start_export`; the mutation answers at once with the job.
Its progress comes over ``jobProgress``; once it is ``DONE``, ``Job.downloadUrl`` is a signed link to the
zip until ``Job.downloadExpiresAt``.
"""

from __future__ import annotations

import enum
from typing import Annotated

import strawberry

from cluster import ALL_FORMATS
from server.api.context import Info
from server.api.cost import Cost
from server.api.images import ImageFilterInput
from server.api.jobs import JobType
from server.api.permissions import CanViewProject
from server.api.results import InputError, RateLimited, input_error, rate_limited_result
from server.domain.errors import InvalidInputError
from server.exceptions import RateLimitedError
from server.services import exports

__all__ = ["ExportMutation"]


@strawberry.enum(description="A file format of the export; ALL is every one of them.")
class ExportFormat(enum.Enum):
    COCO = "coco"
    CSV = "csv"
    XLSX = "xlsx"
    MASKS = "masks"
    GEOJSON = "geojson"
    ALL = "all"


@strawberry.type(
    description="The export job was started: follow it with jobProgress(jobId), then fetch job.downloadUrl."
)
class ExportStarted:
    job: JobType = strawberry.field(description="The export job, queued.")


ProjectExportResult = Annotated[
    ExportStarted | InputError | RateLimited,
    strawberry.union(
        "ProjectExportResult",
        description="The export job started, which input was wrong, or too many exports started lately.",
    ),
]


@strawberry.type
class ExportMutation:
    @strawberry.mutation(
        permission_classes=[CanViewProject],
        directives=[Cost(weight=100)],
        description="Export the current segmentations of the selected images (imageIds, else the project's "
        "images matching filter, else all) as a zip, in a background job that this answers with at once.",
    )
    async def export_project(
        self,
        info: Info,
        project_id: Annotated[int, strawberry.argument(description="The project to export from.")],
        formats: Annotated[
            list[ExportFormat] | None, strawberry.argument(description="The files to write (default: ALL).")
        ] = None,
        image_ids: Annotated[
            list[int] | None, strawberry.argument(description="Exactly these images of the project.")
        ] = None,
        filter: Annotated[
            ImageFilterInput | None,
            strawberry.argument(description="The project's images matching this (when imageIds is absent)."),
        ] = None,
    ) -> ProjectExportResult:
        context = info.context
        given = [ExportFormat.ALL] if formats is None else formats
        chosen = ALL_FORMATS if ExportFormat.ALL in given else tuple(f.value for f in given)
        request = exports.ExportRequest(
            project_id, chosen, image_ids, (filter or ImageFilterInput()).to_domain()
        )
        try:
            job = await exports.start_export(
                context.services, context.require_actor(), request, context.loaders
            )
        except RateLimitedError as error:
            return rate_limited_result(error)
        except InvalidInputError as error:
            return input_error(error)
        return ExportStarted(job=JobType.of(job))
