"""Writing export files safely: atomic replacement, JSON that any reader accepts, unique file names.

Every export file is first written to a hidden temporary file in the same folder, flushed to disk, then
moved over the final name with :func:`os.replace`, so a crash leaves either the old file or the new one,
never half of one. A left-over ``.<name>.<pid>.<random>.tmp`` file is safe to delete.
"""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cluster.exceptions import ExportError

__all__ = ["atomic_write", "json_bytes", "json_safe", "safe_stem", "unique_stems"]

_UNSAFE_CHARACTERS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{kind}{n}" for kind in ("COM", "LPT") for n in range(1, 10)
}


def atomic_write(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; raise :class:`ExportError` naming the file on failure."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        try:
            with temporary.open("xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as error:
        raise ExportError(f"{path}: could not write the file: {error.strerror or error}") from error
    return path


def json_safe(value: Any) -> Any:
    """``value`` made of JSON types only: numpy scalars and arrays unwrapped, NaN and infinities as
    ``None``, paths and other objects as strings, mapping keys as strings."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, Sequence | set | frozenset):
        return [json_safe(item) for item in value]
    return str(value)


def json_bytes(document: Any, *, indent: int | None = None) -> bytes:
    """UTF-8 JSON of ``document`` (which must already be :func:`json_safe`); NaN is refused."""
    return json.dumps(document, ensure_ascii=False, allow_nan=False, indent=indent).encode("utf-8")


def safe_stem(stem: str) -> str:
    """``stem`` usable as a file name on Linux, macOS and Windows: characters that are not allowed there
    become ``_``, trailing dots and spaces go, reserved device names get a ``_`` appended."""
    cleaned = _UNSAFE_CHARACTERS.sub("_", stem).rstrip(". ")
    if not cleaned:
        return "image"
    if cleaned.upper() in _WINDOWS_RESERVED:
        return f"{cleaned}_"
    return cleaned


def unique_stems(stems: Sequence[str]) -> list[str]:
    """File-name stems, one per input, unique without regard to case (as on macOS and Windows).

    Deterministic: the first image with a stem keeps it; each later one gets ``<stem>_2``, ``<stem>_3``, …
    (the smallest number giving a name that is neither another image's own stem nor already handed out),
    so ``a.tif, b/a.tif, a_2.tif`` become ``a, a_3, a_2``.
    """
    cleaned = [safe_stem(stem) for stem in stems]
    taken = {stem.casefold() for stem in cleaned}
    given: set[str] = set()
    result: list[str] = []
    for stem in cleaned:
        candidate = stem
        number = 1
        while candidate.casefold() in given or (number > 1 and candidate.casefold() in taken):
            number += 1
            candidate = f"{stem}_{number}"
        given.add(candidate.casefold())
        result.append(candidate)
    return result
