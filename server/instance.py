"""The offline server's lock file: one server per data folder, and where a client finds the running one.

``<data dir>/server.lock`` (mode 0600) holds one JSON object::

    {"pid": 4242, "url": "http://127.0.0.1:53817", "data_dir": "/home/ana/.local/share/spheroseg",
     "started_at": "2026-12-06T22:10:00+00:00", "state": "ready", "parent_pid": 4200}

``state`` is ``"starting"`` (``url`` null) until the server listens, then ``"ready"``. ``parent_pid`` names
the process the server stops after (the workbench that started it; null when none): a client that finds it
dead knows the server is about to stop, and waits for it rather than reusing it. The file is locked
(a POSIX record lock, ``fcntl.lockf``) for as long as the server runs: the kernel drops the lock when the
process dies, however it dies, and processes the server starts do not inherit it. So a file nobody holds
locked is stale (its server died without removing it) and the next start takes it over; a locked one names
the running server, which :class:`InstanceLock.acquire` refuses with :class:`AlreadyRunningError`. The
server removes the file when it stops.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["LOCK_FILE", "AlreadyRunningError", "InstanceLock", "read_lock", "running_instance"]

LOCK_FILE = "server.lock"


class AlreadyRunningError(Exception):
    """Another server holds the data folder's lock; ``running`` is what its lock file says."""

    def __init__(self, path: Path, running: dict[str, Any]) -> None:
        pid, url = running.get("pid", "?"), running.get("url") or "not listening yet"
        super().__init__(
            f"another SpheroSeg server (pid {pid}, {url}) is running on the data folder {path.parent}; "
            f"reuse it (`spheroseg server bootstrap-token` gives a new sign-in token) or stop it first"
        )
        self.path = path
        self.running = running


def read_lock(path: Path) -> dict[str, Any]:
    """What a lock file says (empty when it is missing or unreadable)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def running_instance(data_dir: Path) -> dict[str, Any] | None:
    """What the lock file of the server running on ``data_dir`` says; ``None`` when none runs there (no
    file, or one nobody holds locked: its server died). For other processes than the server: closing the
    file here would release the server's own lock."""
    path = data_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return read_lock(path)  # held: its server runs
    finally:
        os.close(fd)  # releases the lock this took, if it took one
    return None


class InstanceLock:
    """The lock of one data folder, held from :meth:`acquire` until :meth:`release`."""

    def __init__(self, data_dir: Path, parent_pid: int | None = None) -> None:
        self.data_dir = data_dir
        self.parent_pid = parent_pid
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None
        self._started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    def acquire(self) -> None:
        """Take the lock (a stale file is taken over) and say this process is starting; raises
        :class:`AlreadyRunningError` while another server holds it."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise AlreadyRunningError(self.path, read_lock(self.path)) from None
            if self._still_the_file(fd):
                break
            os.close(fd)  # the server that held it removed it meanwhile: lock the file there now
        os.fchmod(fd, 0o600)
        self._fd = fd
        self.write(None)

    def write(self, url: str | None) -> None:
        """Say where this server listens (``None``: not yet)."""
        if self._fd is None:
            raise RuntimeError("the instance lock is not held")
        content = {
            "pid": os.getpid(),
            "url": url,
            "data_dir": str(self.data_dir),
            "started_at": self._started_at,
            "state": "starting" if url is None else "ready",
            "parent_pid": self.parent_pid,
        }
        data = (json.dumps(content) + "\n").encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def release(self) -> None:
        """Remove the file, then let go of the lock."""
        if self._fd is None:
            return
        if self._still_the_file(self._fd):
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def _still_the_file(self, fd: int) -> bool:
        """Whether ``fd`` is the file at :attr:`path` (not one removed since it was opened)."""
        try:
            return self.path.stat().st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False
