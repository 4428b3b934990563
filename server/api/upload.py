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

A client that sends ``Accept: application/x-ndjson`` gets the answer as it happens instead (to show
progress over a request of hundreds of files): status 200 once the request is let in, then one JSON line
per file, written as soon as that file is stored or refused while the rest of the body is still arriving,
then a last line ``{"done": true, "accepted": …, "refused": …}``, with ``error`` and ``status`` (400, 413
or 507) when the rest of the body could not be read. Refusals of the whole request (401, 403, 400, 413,
507 before reading) are answered as above, before any line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from server.api.context import build_context
from server.api.multipart import Part, Receiver, SpoolLimits, Stop, receive
from server.exceptions import PermissionDeniedError
from server.services import uploads
from server.services.runtime import Runtime
from server.services.spool import free_bytes, make_spool, spool_root
from server.services.uploads import Accepted, Duplicate, ProjectUpload, Refused, UploadedFile, UploadOutcome

__all__ = ["NDJSON", "upload_images"]

NDJSON = "application/x-ndjson"


async def upload_images(request: Request) -> Response:
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
    if _wants_lines(request):
        return _LineResponse(_lines(request, boundary, upload, Receiver(folder, limits, free_bytes)))
    receiver = Receiver(folder, limits, free_bytes)
    try:
        try:
            await receive(request, MultipartParser(boundary, receiver.callbacks()), receiver)  # type: ignore[arg-type]
        except Exception as error:  # python-multipart raises its own errors for broken bodies
            return _error(400, f"the multipart body is malformed: {error}")
        files = [p for p in receiver.parts if _is_file(p)]
        if not files and receiver.stopped is None:
            return _error(400, "no file in the field 'files'")
        outcomes = [await upload.add(_uploaded(part)) for part in files]
        await upload.finish(outcomes)
    finally:
        receiver.close()
        await asyncio.to_thread(shutil.rmtree, folder, True)
    results = [_answer(outcome) for outcome in outcomes]
    accepted = sum(1 for r in results if r["accepted"])
    body: dict[str, Any] = {"accepted": accepted, "refused": len(results) - accepted, "files": results}
    if receiver.stopped is not None:
        return JSONResponse({"error": receiver.stopped.message, **body}, status_code=receiver.stopped.status)
    return JSONResponse(body)


def _wants_lines(request: Request) -> bool:
    accepted = request.headers.get("accept", "")
    return any(item.split(";")[0].strip().lower() == NDJSON for item in accepted.split(","))


class _LineResponse(StreamingResponse):
    """A streamed answer that leaves ``receive`` to the route: the body it reads meanwhile is the request's
    (Starlette's own listens there for a disconnect, which would take the body's messages)."""

    def __init__(self, lines: AsyncGenerator[bytes]) -> None:
        super().__init__(lines, media_type=NDJSON, headers={"Cache-Control": "no-store"})
        self._lines = lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.stream_response(send)
        finally:  # a client gone mid-answer: stop reading and clean up now, not when collected
            await self._lines.aclose()


async def _lines(
    request: Request, boundary: bytes, upload: ProjectUpload, receiver: Receiver
) -> AsyncGenerator[bytes]:
    """Each file's answer as a JSON line as soon as it is stored, while the body goes on arriving; then
    the summary line. The spool folder goes when the answer ends, however it ends."""
    loop = asyncio.get_running_loop()
    ended: asyncio.Queue[Part | None] = asyncio.Queue()

    def part_ended(part: Part) -> None:  # in the parser's thread
        loop.call_soon_threadsafe(ended.put_nowait, part)

    receiver.on_part_end = part_ended
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    # each chunk as it arrives: a file's line must not wait for the next MiB of the body
    reading = asyncio.create_task(receive(request, parser, receiver, feed_bytes=1))
    reading.add_done_callback(lambda _: ended.put_nowait(None))  # after the parts it ended
    outcomes: list[UploadOutcome] = []
    try:
        seen = 0
        while (part := await ended.get()) is not None:
            seen += 1
            if _is_file(part):
                outcomes.append(await upload.add(_uploaded(part)))
                if part.path is not None:  # stored or refused: its spooled copy may go now
                    await asyncio.to_thread(part.path.unlink, True)
                yield _line(_answer(outcomes[-1]))
        stop = receiver.stopped
        if (problem := reading.exception()) is not None:
            stop = Stop(400, f"the multipart body is malformed: {problem}")
        for part in receiver.parts[seen:]:  # broken off: refused, with why
            if _is_file(part):
                outcomes.append(await upload.add(_uploaded(part)))
                yield _line(_answer(outcomes[-1]))
        if not outcomes and stop is None:
            stop = Stop(400, "no file in the field 'files'")
        accepted = sum(1 for outcome in outcomes if isinstance(outcome, Accepted))
        summary: dict[str, Any] = {"done": True, "accepted": accepted, "refused": len(outcomes) - accepted}
        if stop is not None:
            summary |= {"error": stop.message, "status": stop.status}
        yield _line(summary)
    finally:
        if not reading.done():  # the client went away mid-answer
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
        await upload.finish(outcomes)
        receiver.close()
        await asyncio.to_thread(shutil.rmtree, receiver.folder, True)


def _is_file(part: Part) -> bool:
    return part.field_name == "files" or bool(part.name)


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


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
