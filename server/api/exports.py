"""``exportProject``: a zip of ``cluster`` exports (COCO, CSV, XLSX, masks, GeoJSON) behind a download URL."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Annotated, Any

import strawberry

from cluster.exports import ALL_FORMATS, write_exports
from cluster.segmentation import Segmentation
from server.api.context import Info
from server.api.cost import Cost
from server.api.images import ImageFilterInput
from server.api.permissions import CanViewProject
from server.api.results import RateLimited, rate_limited
from server.db import images, segmentations

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


def _write_zip(items: list[Segmentation], formats: tuple[str, ...], folder: Path, stem: str) -> Path:
    written = write_exports(items, folder / "export", formats)
    archive = folder / f"{stem}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for paths in written.values():
            for path in paths:
                bundle.write(path, path.relative_to(folder / "export").as_posix())
    return archive


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
        services = context.services
        wait = services.expensive.hit(f"export:{context.require_user().id}")
        if wait:
            return rate_limited("exports", wait)
        async with services.db() as db:
            rows = await images.images_of_project(db, id, (filter or ImageFilterInput()).to_domain())
            # with the metrics stored when each version was saved: the export measures nothing again
            items = await segmentations.current_segmentations(db, rows)
        formats = ALL_FORMATS if format is ExportFormat.ALL else (format.value,)
        stem = f"project-{id}-{format.value}"
        key = f"exports/{uuid.uuid4().hex}/{stem}.zip"
        with tempfile.TemporaryDirectory(prefix="spheroseg-export-") as tmp:
            archive = await asyncio.to_thread(_write_zip, items, formats, Path(tmp), stem)
            await services.store.put_file(key, archive, "application/zip")
            services.exports.added(archive.stat().st_size)
        settings = services.settings
        # the zip is deleted once it expires: its URL must not outlive it
        seconds = min(settings.presign_seconds, settings.export_expiry_seconds)
        url = await services.store.presigned_url(key, seconds)
        return ProjectExportSuccess(
            url=_absolute(url, context),
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds),
            image_count=len(items),
            spheroid_count=sum(len(s.spheroids) for s in items),
        )


def _absolute(url: str, context: Any) -> str:
    if not url.startswith("/"):
        return url
    base = context.services.settings.public_url.rstrip("/")
    if not base and context.request is not None:
        base = str(context.request.base_url).rstrip("/")
    return f"{base}{url}"
