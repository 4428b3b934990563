"""``POST /api/projects/{id}/images``: several image files in one multipart request, streamed to storage.

The body is spooled to a per-request folder as it arrives (see :mod:`server.api.multipart` for the
limits per file, per request and on free disk space, and :mod:`server.services.spool` for the folder).
The route only receives and answers: who may upload, and what becomes of each complete file (decoded and
checked, stored once by content, recorded or reported as a duplicate) is :mod:`server.services.uploads`.

The answer lists every file with ``accepted`` and the image, or the reason it was refused. A request
refused as a whole is answered with ``error``: 413 when its declared size passes the per-request limit, 507
when the disk of the spool would keep too little free space. When either limit is passed while the body
arrives, the answer has both: the files complete by then are stored and listed, and ``error`` says why the
rest was not read.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import JSONResponse

from server.api.context import build_context
from server.api.multipart import Part, Receiver, SpoolLimits, receive
from server.exceptions import PermissionDeniedError
from server.services import uploads
from server.services.runtime import Runtime
from server.services.spool import free_bytes, make_spool, spool_root
from server.services.uploads import Duplicate, Refused, UploadedFile, UploadOutcome

__all__ = ["upload_images"]


async def upload_images(request: Request) -> JSONResponse:
    services: Runtime = request.app.state.services
    context = await build_context(services, request)
    actor = context.actor
    if actor is None:
        return _error(401, context.token_problem or "log in first: uploading needs a bearer token")
    try:
        project_id = int(request.path_params["project_id"])
    except ValueError:
        return _error(404, "no such project")
    try:
        upload = await uploads.open_upload(services, actor, project_id, context.loaders)
    except PermissionDeniedError as error:
        return _error(403, str(error))
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        return _error(400, "send the files as multipart/form-data in the field 'files'")
    limits = _limits(services)
    root = spool_root(services.settings.upload_temp_dir)
    refusal = await asyncio.to_thread(_refusal, request, limits, root)
    if refusal is not None:
        return refusal
    folder = await asyncio.to_thread(make_spool, root)
    receiver = Receiver(folder, limits, free_bytes)
    try:
        try:
            await receive(request, MultipartParser(boundary, receiver.callbacks()), receiver)  # type: ignore[arg-type]
        except Exception as error:  # python-multipart raises its own errors for broken bodies
            return _error(400, f"the multipart body is malformed: {error}")
        files = [p for p in receiver.parts if p.field_name == "files" or p.name]
        if not files and receiver.stopped is None:
            return _error(400, "no file in the field 'files'")
        outcomes = [await upload.add(_uploaded(part)) for part in files]
        upload.finish(outcomes)
    finally:
        receiver.close()
        await asyncio.to_thread(shutil.rmtree, folder, True)
    results = [_answer(outcome) for outcome in outcomes]
    accepted = sum(1 for r in results if r["accepted"])
    body: dict[str, Any] = {"accepted": accepted, "refused": len(results) - accepted, "files": results}
    if receiver.stopped is not None:
        return JSONResponse({"error": receiver.stopped.message, **body}, status_code=receiver.stopped.status)
    return JSONResponse(body)


def _limits(services: Runtime) -> SpoolLimits:
    settings = services.settings
    return SpoolLimits(
        file_bytes=settings.max_upload_bytes,
        files=settings.max_files_per_upload,
        request_bytes=settings.max_upload_request_bytes,
        min_free_bytes=settings.upload_min_free_bytes,
    )


def _refusal(request: Request, limits: SpoolLimits, root: Path) -> JSONResponse | None:
    """Refuse, before reading any of it, a request that declares more bytes than we take or than the
    disk can hold (blocking: it asks the disk)."""
    try:
        declared = int(request.headers.get("content-length", "0"))
    except ValueError:
        declared = 0
    if declared > limits.request_bytes:
        return _error(
            413,
            f"this request has {declared:,} bytes, more than the limit of {limits.request_bytes:,} for one "
            "upload; send the files in several requests",
        )
    root.mkdir(parents=True, exist_ok=True)
    if free_bytes(root) - declared < limits.min_free_bytes:
        return _error(
            507,
            "the server is low on disk space for uploads; nothing was stored: try again later, or ask the "
            "administrator to free space",
        )
    return None


def _uploaded(part: Part) -> UploadedFile:
    return UploadedFile(part.name or "(unnamed)", part.path, part.digest.hexdigest(), part.size, part.refused)


def _answer(outcome: UploadOutcome) -> dict[str, Any]:
    """An outcome as the JSON the route has always answered."""
    if isinstance(outcome, Refused):
        return _refused(outcome.name, outcome.reason)
    if isinstance(outcome, Duplicate):
        return _duplicate(outcome.name, outcome.image_id, outcome.existing_name)
    info = outcome.info
    return {
        "name": outcome.name,
        "accepted": True,
        "imageId": outcome.image_id,
        "width": info.width,
        "height": info.height,
        "bitDepth": info.bit_depth,
        "format": info.format,
        "pixelSizeUm": info.pixel_size_um,
    }


def _refused(name: str, reason: str) -> dict[str, Any]:
    return {"name": name, "accepted": False, "reason": reason}


def _duplicate(name: str, image_id: int, existing_name: str) -> dict[str, Any]:
    return {
        "name": name,
        "accepted": False,
        "reason": f"the same file is already here as {existing_name!r}",
        "duplicateOf": image_id,
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
