"""Exporting a project: the current segmentations of its images (filtered) as a zip behind a link.

The zip holds ``cluster``'s exports (COCO, CSV, XLSX, masks, GeoJSON) written from the metrics stored
with each version, so nothing is measured again. It is put in the blob store under ``exports/`` and
deleted by the export sweeper once ``export_expiry_seconds`` have passed, so its link never outlives it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cluster import Segmentation, write_exports
from server.db import images, segmentations
from server.domain.listing import ImageFilter
from server.domain.roles import Action
from server.services.limits import spend_expensive
from server.services.permissions import Actor, RoleLookup, StoredRoles, require_project_action
from server.services.runtime import Runtime

__all__ = ["ProjectExport", "export_project"]


@dataclass(frozen=True)
class ProjectExport:
    url: str
    """As the store hands it out: a presigned S3 URL, or a path on this server (``/api/blobs/…``)."""
    expires_at: dt.datetime
    image_count: int
    spheroid_count: int


async def export_project(
    runtime: Runtime,
    actor: Actor,
    project_id: int,
    formats: tuple[str, ...],
    name: str,
    where: ImageFilter,
    lookup: RoleLookup | None = None,
) -> ProjectExport:
    """Write ``formats`` of the project's images that ``where`` selects into ``<name>.zip``.

    Raises :class:`RateLimitedError` (budget spent) or :class:`PermissionDeniedError` (may not view it).
    """
    spend_expensive(runtime, actor, "export", "exports")
    roles = lookup or StoredRoles(runtime.db, actor.user_id)
    await require_project_action(actor, project_id, Action.VIEW, roles, "see it")
    async with runtime.db() as db:
        rows = await images.images_of_project(db, project_id, where)
        # with the metrics stored when each version was saved: the export measures nothing again
        items = await segmentations.current_segmentations(db, rows)
    key = f"exports/{uuid.uuid4().hex}/{name}.zip"
    with tempfile.TemporaryDirectory(prefix="spheroseg-export-") as tmp:
        archive = await asyncio.to_thread(_write_zip, items, formats, Path(tmp), name)
        await runtime.store.put_file(key, archive, "application/zip")
        runtime.exports.added(archive.stat().st_size)
    settings = runtime.settings
    # the zip is deleted once it expires: its URL must not outlive it
    seconds = min(settings.presign_seconds, settings.export_expiry_seconds)
    url = await runtime.store.presigned_url(key, seconds)
    return ProjectExport(
        url=url,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds),
        image_count=len(items),
        spheroid_count=sum(len(s.spheroids) for s in items),
    )


def _write_zip(items: list[Segmentation], formats: tuple[str, ...], folder: Path, stem: str) -> Path:
    written = write_exports(items, folder / "export", formats)
    archive = folder / f"{stem}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for paths in written.values():
            for path in paths:
                bundle.write(path, path.relative_to(folder / "export").as_posix())
    return archive
