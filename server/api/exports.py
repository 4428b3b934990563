"""``exportProject``: a zip of ``cluster`` exports (COCO, CSV, XLSX, masks, GeoJSON) behind a download URL.

The work is :func:`server.services.exports.export_project`; here a server-relative link becomes absolute.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

import strawberry

from cluster import ALL_FORMATS
from server.api.absolute import absolute_url
from server.api.context import Info
from server.api.cost import Cost
from server.api.images import ImageFilterInput
from server.api.permissions import CanViewProject
from server.api.results import RateLimited, rate_limited_result
from server.exceptions import RateLimitedError
from server.services import exports

__all__ = ["ExportMutation"]


@strawberry.enum
class ExportFormat(enum.Enum):
    COCO = "coco"
    CSV = "csv"
    XLSX = "xlsx"
    MASKS = "masks"
    GEOJSON = "geojson"
    ALL = "all"


@strawberry.type
class ProjectExportSuccess:
    url: str = strawberry.field(description="Fetch the zip from here, without credentials, until expiresAt.")
    expires_at: dt.datetime
    image_count: int
    spheroid_count: int


ProjectExportResult = Annotated[ProjectExportSuccess | RateLimited, strawberry.union("ProjectExportResult")]


@strawberry.type
class ExportMutation:
    @strawberry.mutation(
        permission_classes=[CanViewProject],
        directives=[Cost(weight=100)],
        description="Export the current segmentations of the project's images (filtered) as a zip.",
    )
    async def export_project(
        self,
        info: Info,
        id: int,
        format: ExportFormat = ExportFormat.ALL,
        filter: ImageFilterInput | None = None,
    ) -> ProjectExportResult:
        context = info.context
        formats = ALL_FORMATS if format is ExportFormat.ALL else (format.value,)
        try:
            export = await exports.export_project(
                context.services,
                context.require_actor(),
                id,
                formats,
                f"project-{id}-{format.value}",
                (filter or ImageFilterInput()).to_domain(),
                context.loaders,
            )
        except RateLimitedError as error:
            return rate_limited_result(error)
        return ProjectExportSuccess(
            url=absolute_url(context, export.url),
            expires_at=export.expires_at,
            image_count=export.image_count,
            spheroid_count=export.spheroid_count,
        )
