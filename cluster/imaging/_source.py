"""Where image bytes come from: a path, the bytes themselves, or an open binary file object."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeAlias

from cluster.imaging._sniff import HEAD_SIZE

__all__ = ["ImageSource", "OpenedSource", "open_source"]

ImageSource: TypeAlias = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
"""A path, the file's bytes, or a binary file object (read from its current position)."""


@dataclass(frozen=True)
class OpenedSource:
    """A seekable stream positioned at the start of the image, its display name and its first bytes."""

    stream: IO[bytes]
    name: str
    head: bytes


@contextmanager
def open_source(source: ImageSource, name: str | None = None) -> Iterator[OpenedSource]:
    """Open ``source`` for reading; a path is closed on exit, a caller's file object is left open.

    The image starts at a file object's current position, and a seekable one is put back there on exit,
    so the same object can be read twice (header at upload, then pixels). One that cannot seek, or is not
    at position 0, is copied into memory first so that the readers may seek freely. ``name`` (for
    messages) defaults to the path, else the file object's name.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield _opened(io.BytesIO(source), name or "<bytes>")
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        with path.open("rb") as handle:
            yield _opened(handle, name or str(path))
    elif not _seekable(source):
        yield _opened(io.BytesIO(source.read()), name or _stream_name(source))
    else:
        start = source.tell()
        try:
            stream = source if start == 0 else io.BytesIO(source.read())
            yield _opened(stream, name or _stream_name(source))
        finally:
            source.seek(start)


def _opened(stream: IO[bytes], name: str) -> OpenedSource:
    head = stream.read(HEAD_SIZE)
    stream.seek(0)
    return OpenedSource(stream=stream, name=name, head=head)


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def _stream_name(stream: IO[bytes]) -> str:
    name = getattr(stream, "name", None)
    return str(name) if isinstance(name, (str, os.PathLike)) else "<stream>"
