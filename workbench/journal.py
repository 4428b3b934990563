"""Edits the server has not confirmed yet, kept on disk so that no edit is lost.

One file per server and image (``<folder>/<server-digest>/image-<id>.jsonl``), readable by its owner
only. Each pending change is one JSON line (image id, base version, the change, a client change id, the
time), appended, flushed and fsynced before :meth:`Journal.append` returns: a workbench killed right after
an edit (SIGKILL, a power cut after the fsync) finds it again on the next start. A last line cut short by
a kill in the middle of a write is skipped with a log line, never a crash. Confirmed changes are removed by
writing the rest to a temporary file and renaming it over the journal (atomic: a kill leaves the old file or
the new one, never a mix), under a lock file (``flock``) that appends take too, so two workbenches on one
server and image lose no line to each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["Journal", "JournalEntry", "Journals", "user_journal_folder"]

logger = logging.getLogger(__name__)

_OWNER_ONLY = 0o600


@dataclass(frozen=True)
class JournalEntry:
    """One change of one image not yet confirmed: ``change`` is ``{"upsert": {...}}`` (``id``, ``exterior``,
    ``holes``; no ``id`` for a new spheroid) or ``{"delete": id}``."""

    image_id: int
    base_version: int
    change: Mapping[str, Any]
    change_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: float = field(default_factory=time.time)

    def line(self) -> str:
        record = {
            "image_id": self.image_id,
            "base_version": self.base_version,
            "change": self.change,
            "change_id": self.change_id,
            "at": self.at,
        }
        return json.dumps(record, separators=(",", ":")) + "\n"

    def rebased(self, version: int) -> JournalEntry:
        return replace(self, base_version=version)


class Journal:
    """The pending changes of one image on one server, in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entry: JournalEntry) -> None:
        """Add ``entry``; on disk (fsynced) when this returns."""
        with self._locked():
            descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, _OWNER_ONLY)
            self._append(descriptor, entry)

    def _append(self, descriptor: int, entry: JournalEntry) -> None:
        try:
            if self._ends_torn(descriptor):
                # a line cut short by a kill: start ours on a line of its own so it is not read as garbage
                os.write(descriptor, b"\n")
            os.write(descriptor, entry.line().encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def entries(self) -> list[JournalEntry]:
        """The pending changes, oldest first; lines that cannot be read (a write cut short) are skipped."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        found: list[JournalEntry] = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                found.append(
                    JournalEntry(
                        int(record["image_id"]),
                        int(record["base_version"]),
                        dict(record["change"]),
                        str(record["change_id"]),
                        float(record["at"]),
                    )
                )
            except (ValueError, KeyError, TypeError):
                logger.warning(
                    "%s line %d is incomplete (a write cut short?) and is skipped", self.path, number
                )
        return found

    def remove(
        self, change_ids: Collection[str], rebase_to: int | None = None, add: Iterable[JournalEntry] = ()
    ) -> list[JournalEntry]:
        """Drop the confirmed (or replaced) ``change_ids``; the others, moved onto ``rebase_to`` when given
        (the version they will now be sent on), are kept, then ``add`` follows. Returns what is kept."""
        with self._locked():
            kept = [entry for entry in self.entries() if entry.change_id not in change_ids]
            if rebase_to is not None:
                kept = [entry.rebased(max(entry.base_version, rebase_to)) for entry in kept]
            kept.extend(add)
            self._rewrite(kept)
        return kept

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the journal's lock: another workbench on this server and image appending while this one
        rewrites would otherwise lose its line. The lock file stays (removing it would race)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, _OWNER_ONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def _rewrite(self, entries: Iterable[JournalEntry]) -> None:
        lines = "".join(entry.line() for entry in entries)
        if not lines:
            self.path.unlink(missing_ok=True)
            return
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _OWNER_ONLY)
        try:
            os.write(descriptor, lines.encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        temporary.replace(self.path)
        _sync_folder(self.path.parent)

    @staticmethod
    def _ends_torn(descriptor: int) -> bool:
        size = os.fstat(descriptor).st_size
        return size > 0 and os.pread(descriptor, 1, size - 1) != b"\n"


class Journals:
    """The journals of one server (``url``) under ``folder`` (the user's data folder)."""

    def __init__(self, folder: Path, url: str) -> None:
        digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
        self.folder = folder / digest
        self.url = url

    def of(self, image_id: int) -> Journal:
        return Journal(self.folder / f"image-{image_id}.jsonl")

    def image_ids(self) -> list[int]:
        """The images with a journal (pending changes, perhaps)."""
        if not self.folder.is_dir():
            return []
        return sorted(int(path.stem.removeprefix("image-")) for path in self.folder.glob("image-*.jsonl"))


def user_journal_folder() -> Path:
    """Where the desktop keeps its journals: ``edits`` in the workbench's own data folder (beside,
    not inside, the offline server's data, which a user may move or delete as a whole)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("spheroseg-workbench", appauthor=False)) / "edits"


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
