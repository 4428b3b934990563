"""Exporting a project's segmentations into a folder on this computer, without Qt.

The server writes the files (:func:`start_export`: ``exportProject``, a job of kind ``EXPORT``), the
desktop follows that job live like a segmentation (:func:`~workbench.jobs.follow_job`), then fetches its
zip from the signed ``downloadUrl``. A biologist wants the files, not an archive: :func:`download_export`
streams the zip to a temporary file beside the destination, unpacks it into a temporary folder there and
renames that to a new folder (``<project> export <job>``, never over an earlier export), so a folder that
exists is always complete. :func:`export_project` does all of it, telling ``on_progress`` each stage; a
cancel while the server still works cancels its job too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from workbench.api import ApiError, LabClient, LiveChannel, RateLimitedError, ServerUnreachableError
from workbench.jobs import JobState, cancel_job, follow_job

__all__ = [
    "FORMATS",
    "ExportProgress",
    "ExportResult",
    "download_export",
    "export_project",
    "folder_name",
    "start_export",
]

FORMATS: dict[str, str] = {
    "CSV": "CSV table, one row per spheroid (metrics.csv)",
    "XLSX": "Excel workbook: spheroids and images (metrics.xlsx)",
    "COCO": "COCO annotations (annotations.coco.json)",
    "MASKS": "Label masks, one PNG per image (masks/)",
    "GEOJSON": "GeoJSON outlines for QuPath (geojson/)",
}
"""The server's ``ExportFormat`` values (ALL aside), with what each one writes."""

CHUNK = 256 * 1024


@dataclass(frozen=True)
class ExportProgress:
    stage: str
    """``exporting`` (the server gathers the images), ``downloading`` or ``unpacking``."""
    done: int
    """Images gathered, or bytes received."""
    total: int
    """Images in the export, or the zip's size (0 while unknown)."""

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total > 0 else None


@dataclass(frozen=True)
class ExportResult:
    job_id: int
    folder: Path
    """The new folder holding the exported files."""
    files: tuple[Path, ...]


async def start_export(
    client: LabClient,
    project_id: int,
    formats: Sequence[str],
    *,
    image_ids: Sequence[int] | None = None,
    image_filter: Mapping[str, Any] | None = None,
) -> int:
    """Start the export of the images (``image_ids``, else those matching ``image_filter``, else all);
    the job's id. A refusal is an :class:`ApiError` naming the field."""
    variables: dict[str, Any] = {"projectId": project_id, "formats": list(formats)}
    if image_ids is not None:
        variables["imageIds"] = list(image_ids)
    elif image_filter is not None:
        variables["filter"] = dict(image_filter)
    answer = (await client.call("ExportProject", **variables))["exportProject"]
    if answer["__typename"] == "RateLimited":
        raise RateLimitedError(answer["message"], "RATE_LIMITED", answer)
    if answer["__typename"] != "ExportStarted":
        raise ApiError(f"{answer['field']}: {answer['message']}", "BAD_USER_INPUT", answer)
    job_id: int = answer["job"]["id"]
    return job_id


def folder_name(project_name: str, job_id: int) -> str:
    """``Plate 1 export 7``: the project's name made safe as a folder name on every system."""
    safe = re.sub(r'[<>:"/\\|?*\x00-\x1f]+', "_", project_name).strip(" .") or "project"
    return f"{safe} export {job_id}"


async def download_export(
    url: str,
    destination: Path,
    name: str,
    *,
    on_progress: Callable[[ExportProgress], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 60.0,
) -> tuple[Path, tuple[Path, ...]]:
    """Fetch the zip at ``url`` and unpack it into a new folder ``name`` in ``destination`` (``name (2)``
    when that exists); the folder and the files in it."""
    destination.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {"transport": transport} if transport is not None else {}
    handle, part = tempfile.mkstemp(prefix=".spheroseg-", suffix=".zip.part", dir=destination)
    archive = Path(part)
    try:
        with os.fdopen(handle, "wb") as file:
            async with (
                httpx.AsyncClient(timeout=timeout, follow_redirects=True, **extra) as http,
                http.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise ApiError(
                        f"the export could not be downloaded (HTTP {response.status_code})",
                        f"HTTP_{response.status_code}",
                    )
                total, received = int(response.headers.get("content-length") or 0), 0
                async for chunk in response.aiter_bytes(CHUNK):
                    file.write(chunk)
                    received += len(chunk)
                    if on_progress is not None:
                        on_progress(ExportProgress("downloading", received, total))
        if on_progress is not None:
            on_progress(ExportProgress("unpacking", 0, 0))
        return await asyncio.to_thread(_unpack, archive, destination, name)
    except httpx.TransportError as lost:
        raise ServerUnreachableError(f"the download of the export broke off: {lost}") from lost
    finally:
        archive.unlink(missing_ok=True)


def _unpack(archive: Path, destination: Path, name: str) -> tuple[Path, tuple[Path, ...]]:
    unpacking = Path(tempfile.mkdtemp(prefix=".spheroseg-", suffix=".part", dir=destination))
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():  # a member may not leave the folder ("../", "/etc")
                target = (unpacking / member).resolve()
                if not target.is_relative_to(unpacking.resolve()):
                    raise ApiError(f"the export holds a file outside its folder: {member!r}", "BAD_EXPORT")
            bundle.extractall(unpacking)
        folder = _free(destination / name)
        unpacking.rename(folder)
    except BaseException:
        shutil.rmtree(unpacking, ignore_errors=True)
        raise
    return folder, tuple(sorted(path for path in folder.rglob("*") if path.is_file()))


def _free(wanted: Path) -> Path:
    candidate, number = wanted, 1
    while candidate.exists():
        number += 1
        candidate = wanted.with_name(f"{wanted.name} ({number})")
    return candidate


async def export_project(
    client: LabClient,
    live: LiveChannel,
    project_id: int,
    destination: Path,
    formats: Sequence[str],
    *,
    image_ids: Sequence[int] | None = None,
    image_filter: Mapping[str, Any] | None = None,
    on_progress: Callable[[ExportProgress], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ExportResult:
    """Export, follow the job to its end, download and unpack into a new folder in ``destination``."""
    project = (await client.call("ProjectName", id=project_id))["project"]
    job_id = await start_export(client, project_id, formats, image_ids=image_ids, image_filter=image_filter)

    def told(state: JobState) -> None:
        if on_progress is not None:
            on_progress(ExportProgress("exporting", state.done, state.total))

    try:
        final = await follow_job(client, live, job_id, told)
    except asyncio.CancelledError:
        with contextlib.suppress(ApiError, ServerUnreachableError):  # it may have ended meanwhile
            await asyncio.shield(cancel_job(client, job_id))
        raise
    job = (await client.call("ExportJob", id=job_id))["job"]
    if final.status != "DONE" or not job["downloadUrl"]:
        why = job["problem"] or f"the export ended {final.status.lower()}"
        raise ApiError(f"the export failed: {why}", "EXPORT_FAILED")
    url = urljoin(f"{client.url}/", job["downloadUrl"])
    folder, files = await download_export(
        url, destination, folder_name(project["name"], job_id), on_progress=on_progress, transport=transport
    )
    return ExportResult(job_id, folder, files)
