"""Importing image files into a project: what the project has already is skipped, the rest is sent with
progress in bytes, and every file ends with its image or the reason it was refused.

:func:`import_files` hashes the files first (SHA-256, in a thread, a MiB at a time), asks the server which
of those contents the project already holds (``imagesByHash``) and skips them before sending a byte. The
others go in requests of at most ``per_request`` files, streamed from disk; the server answers each file
as soon as it is stored or refused (its NDJSON answer), so a corrupt, too large or unsupported file is
reported with its reason while the others go on. ``on_progress`` hears the bytes sent of the total, the
files finished and the file going out now with its own bytes sent (multipart sends the files one after
another, so the bytes are counted to the file they belong to); ``on_result`` hears each file's result as
soon as it is known (skipped ones before any byte is sent). Cancelling the task that awaits it stops the
upload; the files the server already answered for stay imported.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.api import ApiError, LabClient

__all__ = ["FileResult", "UploadProgress", "import_files"]

HASH_CHUNK = 1024 * 1024
MAX_HASHES = 500
"""How many digests one ``imagesByHash`` takes."""


@dataclass(frozen=True)
class FileResult:
    path: Path
    image_id: int | None
    """The image the file is (or already was) in the project; ``None`` when refused."""
    reason: str | None = None
    """Why it was refused; ``None`` when imported."""
    skipped: bool = False
    """The project had the same content already (``reason`` names its image), so it was not sent."""


@dataclass(frozen=True)
class UploadProgress:
    sent_bytes: int
    total_bytes: int
    files_done: int
    files_total: int
    sending: int | None = None
    """The index (in the paths given) of the file going out now; ``None`` between requests."""
    sending_bytes: int = 0
    """Bytes of that file sent so far."""


async def import_files(
    client: LabClient,
    project_id: int,
    paths: Sequence[Path],
    *,
    per_request: int = 50,
    on_progress: Callable[[UploadProgress], None] | None = None,
    on_result: Callable[[int, FileResult], None] | None = None,
) -> list[FileResult]:
    """Import ``paths`` into the project; one result per path, in the order given."""
    digests = await asyncio.to_thread(lambda: [_sha256(path) for path in paths])
    present = await _present(client, project_id, sorted(set(digests)))
    results = _Results(on_result)
    to_send: list[int] = []
    for index, (path, digest) in enumerate(zip(paths, digests, strict=True)):
        if digest in present:
            image_id, name = present[digest]
            results[index] = FileResult(path, image_id, f"already in the project as {name!r}", skipped=True)
        else:
            to_send.append(index)
    sizes = {index: paths[index].stat().st_size for index in to_send}
    total = sum(sizes.values())
    sent = 0
    batch: list[int] = []
    batch_sent = 0  # bytes of this request so far: they fall to its files in order

    def tell() -> None:
        if on_progress is None:
            return
        sending, sending_bytes, before = None, 0, 0
        for index in batch:
            if batch_sent <= before + sizes[index]:
                sending, sending_bytes = index, batch_sent - before
                break
            before += sizes[index]
        on_progress(UploadProgress(sent, total, len(results), len(paths), sending, sending_bytes))

    def count(size: int) -> None:
        nonlocal sent, batch_sent
        sent += size
        batch_sent += size
        tell()

    tell()
    for start in range(0, len(to_send), per_request):
        batch, batch_sent = to_send[start : start + per_request], 0
        answered = 0
        async for line in client.upload(project_id, [(paths[i].name, paths[i]) for i in batch], count):
            if line.get("done"):
                if line.get("error"):  # the request was cut short: the files not answered for are refused
                    for index in batch[answered:]:
                        results[index] = FileResult(paths[index], None, str(line["error"]))
                continue
            index = batch[answered]
            answered += 1
            results[index] = _result(paths[index], line)
            tell()
        if any(index not in results for index in batch):
            raise ApiError(f"the server answered for {answered} of {len(batch)} files", "INCOMPLETE")
    return [results[index] for index in range(len(paths))]


class _Results(dict[int, FileResult]):
    """The results so far by index; each one is told to ``on_result`` as it is set."""

    def __init__(self, on_result: Callable[[int, FileResult], None] | None) -> None:
        super().__init__()
        self._on_result = on_result

    def __setitem__(self, index: int, result: FileResult) -> None:
        super().__setitem__(index, result)
        if self._on_result is not None:
            self._on_result(index, result)


def _result(path: Path, line: dict[str, object]) -> FileResult:
    if line.get("accepted"):
        image_id = line.get("imageId")
        return FileResult(path, image_id if isinstance(image_id, int) else None)
    duplicate = line.get("duplicateOf")
    if isinstance(duplicate, int):  # the same content arrived meanwhile: it is there
        return FileResult(path, duplicate, str(line.get("reason") or "already in the project"), skipped=True)
    return FileResult(path, None, str(line.get("reason") or "refused"))


async def _present(client: LabClient, project_id: int, digests: list[str]) -> dict[str, tuple[int, str]]:
    """The contents among ``digests`` the project already holds: digest → (image id, name)."""
    present: dict[str, tuple[int, str]] = {}
    for start in range(0, len(digests), MAX_HASHES):
        found = await client.call(
            "ImagesByHash", projectId=project_id, sha256s=digests[start : start + MAX_HASHES]
        )
        for image in found["imagesByHash"]:
            present[image["contentHash"]] = (image["id"], image["name"])
    return present


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
