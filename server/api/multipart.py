"""The body of an upload, parsed as it arrives: each file part to its own temporary file, limits enforced.

Each part of field ``files`` is written to a file in the request's spool folder while it arrives (SHA-256
and size counted on the way, nothing held whole in memory). Parsing, hashing and writing run in a worker
thread, fed about a MiB of the body at a time, so a large upload never blocks the event loop.

Limits, each with a message that says what to do:

- a part over ``file_bytes`` is dropped (and its file removed) as soon as it passes it; the others go on;
- more than ``files`` file parts: the extra ones are refused;
- once the parts together pass ``request_bytes``, or the spool's disk would keep less than
  ``min_free_bytes`` free, the part being written is dropped and the rest of the body is not read
  (:attr:`Receiver.stopped` says why); the files complete by then are kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

__all__ = ["FEED_BYTES", "MAX_NAME", "Part", "Receiver", "SpoolLimits", "Stop", "receive"]

MAX_NAME = 255
FEED_BYTES = 1024 * 1024
"""How much of the body is gathered before the parser (hashing and writing) gets it in a thread."""


@dataclass(frozen=True)
class SpoolLimits:
    file_bytes: int
    files: int
    request_bytes: int
    min_free_bytes: int


@dataclass(frozen=True)
class Stop:
    """Why the rest of a body was not read, and the HTTP status that says so (413 or 507)."""

    status: int
    message: str


@dataclass
class Part:
    name: str = ""
    field_name: str = ""
    file: IO[bytes] | None = None
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    refused: str | None = None

    @property
    def path(self) -> Path | None:
        return Path(self.file.name) if self.file is not None else None

    def drop(self, reason: str) -> None:
        """Refuse this part and remove what was written of it."""
        self.refused = reason
        if self.file is not None:
            self.file.close()
            Path(self.file.name).unlink(missing_ok=True)
            self.file = None


class Receiver:
    """Callbacks of the streaming multipart parser: one temporary file per part, limits as bytes arrive.

    ``on_part_end``, when given, is called with each part as it ends, in the parser's worker thread.
    """

    def __init__(
        self,
        folder: Path,
        limits: SpoolLimits,
        free_bytes: Callable[[Path], int],
        on_part_end: Callable[[Part], None] | None = None,
    ) -> None:
        self.folder = folder
        self.limits = limits
        self.on_part_end = on_part_end
        self.parts: list[Part] = []
        self.total = 0
        self.stopped: Stop | None = None
        self._free_bytes = free_bytes
        self._header_field = b""
        self._headers: dict[bytes, bytes] = {}
        self._header_value = b""

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_header_field": self._field,
            "on_header_value": self._value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
        }

    def check_space(self, incoming: int) -> None:
        """Stop before writing ``incoming`` more bytes would leave the disk below its reserve."""
        if self.stopped is None and self._free_bytes(self.folder) - incoming < self.limits.min_free_bytes:
            self._stop(
                507,
                "the server is low on disk space for uploads; the rest of this request was not read: "
                "try again later, or ask the administrator to free space",
            )

    def _stop(self, status: int, message: str) -> None:
        self.stopped = Stop(status, message)
        if self.parts and self.parts[-1].file is not None and not self.parts[-1].file.closed:
            self.parts[-1].drop(message)

    def _begin(self) -> None:
        self._headers = {}
        self.parts.append(Part())

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_done(self) -> None:
        part = self.parts[-1]
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        part.field_name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_name = options.get(b"filename")
        part.name = (
            (raw_name or b"").decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1][:MAX_NAME]
        )
        if self.stopped is not None:
            part.refused = self.stopped.message
        elif part.field_name != "files" or raw_name is None:
            part.refused = "not a file in the field 'files'"
        elif sum(1 for p in self.parts if p.refused is None) > self.limits.files:
            part.refused = f"more than {self.limits.files} files in one request; send the rest in another"
        else:
            part.file = tempfile.NamedTemporaryFile(dir=self.folder, delete=False)  # noqa: SIM115

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        self.total += end - start  # every part counts, kept or not: all of them are read
        if self.stopped is None and self.total > self.limits.request_bytes:
            self._stop(
                413,
                f"the files of this request together pass the limit of {self.limits.request_bytes:,} bytes; "
                "the rest of it was not read: send the remaining files in another request",
            )
        if part.file is None:
            return
        part.size += end - start
        if part.size > self.limits.file_bytes:
            part.drop(f"larger than the limit of {self.limits.file_bytes:,} bytes")
            return
        part.digest.update(data[start:end])
        part.file.write(data[start:end])

    def _end(self) -> None:
        part = self.parts[-1]
        if part.file is not None:
            part.file.close()
        if self.on_part_end is not None:
            self.on_part_end(part)

    def close(self) -> None:
        """Close the file of a part the body broke off in."""
        for part in self.parts:
            if part.file is not None and not part.file.closed:
                part.file.close()


async def receive(
    request: Request, parser: MultipartParser, receiver: Receiver, feed_bytes: int = FEED_BYTES
) -> None:
    """Feed the body to the parser in a worker thread, ``feed_bytes`` at a time (less wakes the parser more
    often, so that a part ends as soon as its last bytes arrive), then finalize it; stop reading as soon
    as the receiver stops (request total, or disk space)."""

    def feed(chunks: list[bytes], size: int, final: bool) -> None:
        receiver.check_space(size)
        for chunk in chunks:
            if receiver.stopped is not None:
                return
            parser.write(chunk)
        if final and receiver.stopped is None:
            parser.finalize()

    pending: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        pending.append(chunk)
        size += len(chunk)
        if size >= feed_bytes:
            await asyncio.to_thread(feed, pending, size, False)
            pending, size = [], 0
            if receiver.stopped is not None:
                return
    await asyncio.to_thread(feed, pending, size, True)
