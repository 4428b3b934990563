"""Exporting a project's images: a background job that writes a zip and hands out a signed download link.

:func:`start_export` checks the request, creates a job of kind ``export`` and answers at once; the job
then runs in this server's event loop (:attr:`Runtime.background`). Why a job row, not a thing of its
own: clients already follow jobs (``job``, ``Project.jobs``, the ``jobProgress`` subscription with its
resync, access and session checks), and an export needs exactly that: progress (``done`` of ``total``
images gathered), an end state, and a reason when it fails. An export has no tasks, so the dispatcher
never sees it, and it needs no cluster.

The run reads the images' current segmentations a chunk at a time, with the metrics stored with each
version (nothing is measured again), announcing progress after each chunk; then ``cluster``'s exports
(COCO, CSV, XLSX, masks, GeoJSON) are written into a zip in a thread, and the zip is put in the blob store
under ``exports/``. The job ends ``done`` with the zip's key and expiry: :func:`export_download` signs a
URL for the time left, never beyond the sweep that deletes the zip (``export_expiry_seconds``). A failure
(the store refuses the zip, the files cannot be written) ends the job ``failed`` with the reason in
``problem``; a job cancelled meanwhile stops at its next chunk and stores nothing; a server that stops
ends its running exports ``failed`` ("start it again"). Images deleted during the run are left out.

A server that is killed cannot say so: while an export runs, its server beats (``jobs.heartbeat_at``)
every :data:`HEARTBEAT_SECONDS`, and every server looks for exports silent for :data:`ABANDONED_SECONDS`
(:func:`watch_abandoned_exports`) and ends them ``failed``, so nobody waits for a job that nothing runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import tempfile
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from cluster import ALL_FORMATS, Segmentation, write_exports
from server.db import exports, images, segmentations
from server.db.models import Job
from server.domain.errors import InvalidInputError
from server.domain.jobs import JobKind, JobStatus
from server.domain.listing import ImageFilter
from server.domain.roles import Action
from server.events import EventKind
from server.exceptions import StorageError
from server.jobs.progress import progress_event
from server.services.events import announce
from server.services.limits import spend_expensive
from server.services.permissions import Actor, RoleLookup, StoredRoles, require_project_action
from server.services.runtime import Runtime

__all__ = [
    "CHUNK_IMAGES",
    "ExportDownload",
    "ExportRequest",
    "export_download",
    "export_expiry",
    "fail_abandoned_exports",
    "start_export",
    "watch_abandoned_exports",
]

logger = logging.getLogger(__name__)

CHUNK_IMAGES = 50
"""Images read per transaction; progress is announced after each chunk."""

STOPPED = "the server stopped before the export finished; start it again"
HEARTBEAT_SECONDS = 15.0
"""How often a running export tells that its server is alive."""
ABANDONED_SECONDS = 120.0
"""An unfinished export not heard of for this long has lost its server."""


@dataclass(frozen=True)
class ExportRequest:
    """What to export: ``image_ids`` of the project, or (``None``) its images that ``where`` selects."""

    project_id: int
    formats: tuple[str, ...] = ALL_FORMATS
    image_ids: Sequence[int] | None = None
    where: ImageFilter = field(default_factory=ImageFilter)


@dataclass(frozen=True)
class ExportDownload:
    url: str
    """As the store hands it out: a presigned S3 URL, or a path on this server (``/api/blobs/…``)."""
    expires_at: dt.datetime


async def start_export(
    runtime: Runtime, actor: Actor, request: ExportRequest, lookup: RoleLookup | None = None
) -> Job:
    """Create the export job, start it in the background and return it (``queued``).

    Raises :class:`InvalidInputError` (``formats``; ``imageIds`` naming images not in the project; more
    images than a job may have), :class:`RateLimitedError` or :class:`PermissionDeniedError` (may not
    view the project).
    """
    formats = _checked_formats(request.formats)
    spend_expensive(runtime, actor, "export", "exports")
    roles = lookup or StoredRoles(runtime.db, actor.user_id)
    await require_project_action(actor, request.project_id, Action.VIEW, roles, "see it")
    limit = runtime.settings.max_images_per_job
    async with runtime.db.begin() as db:
        ids = await _selected(db, request, limit)
        job = await exports.create_export_job(db, request.project_id, actor.user_id, formats, len(ids))
    await announce(runtime, progress_event(job, EventKind.JOB_CREATED, actor=actor.username))
    name = f"project-{request.project_id}-export-{job.id}"
    runtime.background.spawn(_run(runtime, job.id, ids, formats, name), name=f"spheroseg-{name}")
    return job


def _checked_formats(formats: Sequence[str]) -> tuple[str, ...]:
    if not formats:
        raise InvalidInputError("formats", f"give at least one of: {', '.join(ALL_FORMATS)}")
    unknown = sorted(set(formats) - set(ALL_FORMATS))
    if unknown:
        raise InvalidInputError("formats", f"{', '.join(unknown)}: not one of {', '.join(ALL_FORMATS)}")
    return tuple(name for name in ALL_FORMATS if name in formats)


async def _selected(db: AsyncSession, request: ExportRequest, limit: int) -> list[int]:
    """The ids of the images to export, by name; refused beyond ``limit``."""
    if request.image_ids is not None:
        found = await images.images_by_ids(db, request.image_ids)
        missing = sorted(
            set(request.image_ids) - {i for i, row in found.items() if row.project_id == request.project_id}
        )
        if missing:
            shown = ", ".join(str(i) for i in missing[:10])
            raise InvalidInputError("imageIds", f"not images of project {request.project_id}: {shown}")
        ids = [row.id for row in sorted(found.values(), key=lambda row: (row.name, row.id))]
    else:
        ids = await images.image_ids_of_project(db, request.project_id, request.where, limit + 1)
    if len(ids) > limit:
        raise InvalidInputError("imageIds", f"at most {limit} images per export; select fewer")
    return ids


async def _run(
    runtime: Runtime, job_id: int, image_ids: list[int], formats: tuple[str, ...], name: str
) -> None:
    """The job itself: gather, write, store, end; a failure ends it ``failed`` with the reason."""
    beating = asyncio.create_task(_heartbeat(runtime, job_id), name=f"spheroseg-export-{job_id}-heartbeat")
    try:
        items = await _gathered(runtime, job_id, image_ids)
        if items is not None:
            await _store(runtime, job_id, items, formats, name)
    except asyncio.CancelledError:
        await asyncio.shield(_fail(runtime, job_id, STOPPED))
        raise
    except StorageError as error:
        logger.error("export job %d: the store refused the zip: %s", job_id, error)
        await _fail(runtime, job_id, "the zip could not be stored (the storage failed); try again later")
    except Exception:
        logger.exception("export job %d failed", job_id)
        await _fail(runtime, job_id, "the export failed unexpectedly; the server's log says why")
    finally:
        beating.cancel()


async def _heartbeat(runtime: Runtime, job_id: int) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        try:
            async with runtime.db.begin() as db:
                await exports.beat(db, job_id)
        except Exception:  # the database may be away for a moment; the next beat tries again
            logger.exception("export job %d: could not record the heartbeat", job_id)


async def fail_abandoned_exports(runtime: Runtime, silent_for: float = ABANDONED_SECONDS) -> list[int]:
    """End ``failed`` the exports whose server has been silent for ``silent_for`` seconds; their ids."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=silent_for)
    async with runtime.db() as db:
        found = await exports.abandoned_exports(db, since)
    failed = []
    for job_id in found:
        async with runtime.db.begin() as db:
            job = await exports.end_export(db, job_id, JobStatus.FAILED, problem=STOPPED)
        if job is not None:
            failed.append(job_id)
            await announce(runtime, progress_event(job, EventKind.JOB_FINISHED))
    return failed


async def watch_abandoned_exports(runtime: Runtime) -> None:
    """Every :data:`HEARTBEAT_SECONDS`, :func:`fail_abandoned_exports` (every replica does; the change is
    a compare-and-set, so two replicas never both announce it)."""
    while True:
        try:
            await fail_abandoned_exports(runtime)
        except Exception:  # the database may be away for a moment; the next round tries again
            logger.exception("could not look for abandoned exports; trying again later")
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def _gathered(runtime: Runtime, job_id: int, image_ids: list[int]) -> list[Segmentation] | None:
    """The images' current segmentations, in order; ``None`` when the job was cancelled meanwhile."""
    items: list[Segmentation] = []
    for start in range(0, len(image_ids), CHUNK_IMAGES):
        chunk = image_ids[start : start + CHUNK_IMAGES]
        async with runtime.db.begin() as db:
            found = await images.images_by_ids(db, chunk)  # an image deleted meanwhile is left out
            items += await segmentations.current_segmentations(db, [found[i] for i in chunk if i in found])
            job = await exports.export_progress(db, job_id, start + len(chunk), chunk[-1])
        if job is None:
            return None
        await announce(runtime, progress_event(job))
    return items


async def _store(
    runtime: Runtime, job_id: int, items: list[Segmentation], formats: tuple[str, ...], name: str
) -> None:
    key = f"exports/{uuid.uuid4().hex}/{name}.zip"
    with tempfile.TemporaryDirectory(prefix="spheroseg-export-") as tmp:
        archive = await asyncio.to_thread(_write_zip, items, formats, Path(tmp), name)
        size = archive.stat().st_size
        await runtime.store.put_file(key, archive, "application/zip")
    runtime.exports.added(size)
    # the zip is deleted once it expires: its URL must not outlive it
    seconds = min(runtime.settings.presign_seconds, runtime.settings.export_expiry_seconds)
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    parameters = {"formats": list(formats), "spheroidCount": sum(len(s.spheroids) for s in items)}
    async with runtime.db.begin() as db:
        job = await exports.end_export(
            db, job_id, JobStatus.DONE, result_key=key, expires_at=expires_at, parameters=parameters
        )
    if job is None:  # cancelled at the last moment: nobody will fetch it
        await runtime.store.delete(key)
        return
    await announce(runtime, progress_event(job), progress_event(job, EventKind.JOB_FINISHED))


async def _fail(runtime: Runtime, job_id: int, reason: str) -> None:
    async with runtime.db.begin() as db:
        job = await exports.end_export(db, job_id, JobStatus.FAILED, problem=reason)
    if job is not None:
        await announce(runtime, progress_event(job, EventKind.JOB_FINISHED))


def _write_zip(items: list[Segmentation], formats: tuple[str, ...], folder: Path, stem: str) -> Path:
    written = write_exports(items, folder / "export", formats)
    archive = folder / f"{stem}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for paths in written.values():
            for path in paths:
                bundle.write(path, path.relative_to(folder / "export").as_posix())
    return archive


def export_expiry(job: Job) -> dt.datetime | None:
    """When a finished export's zip is swept (UTC); ``None`` for another kind of job or one not ``done``."""
    if job.kind != JobKind.EXPORT.value or job.status != JobStatus.DONE.value:
        return None
    expires_at = job.result_expires_at
    if expires_at is None or job.result_key is None:
        return None
    return expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=dt.UTC)


async def export_download(runtime: Runtime, job: Job) -> ExportDownload | None:
    """A signed link to a finished export's zip, valid until the zip is swept; ``None`` for another kind
    of job, one not ``done``, or one whose zip has expired."""
    expires_at = export_expiry(job)
    if expires_at is None or job.result_key is None:
        return None
    seconds = int((expires_at - dt.datetime.now(dt.UTC)).total_seconds())
    if seconds <= 0:
        return None
    return ExportDownload(await runtime.store.presigned_url(job.result_key, seconds), expires_at)
