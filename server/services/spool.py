"""The folder uploads are spooled to while they arrive: one subfolder per request, free space, and cleanup.

Each request gets ``spheroseg-upload-<pid>-<random>`` in ``upload_temp_dir`` (default: the system's temp
folder), removed when the request ends. A server that is killed mid-upload cannot remove its own, so
:func:`remove_stale_spools` runs at startup and removes every such folder whose process is gone. The pid in
the name keeps the spools of other servers on the same machine (replicas, workers) safe; a folder with our
own pid is stale too, since a container restarts its server with the same pid and this one has made none.
Folders of older versions, which carry no pid, are removed once nothing has touched them for an hour.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["PREFIX", "free_bytes", "make_spool", "remove_stale_spools", "spool_root"]

logger = logging.getLogger(__name__)

PREFIX = "spheroseg-upload-"
_UNOWNED_AGE_SECONDS = 3600.0


def spool_root(configured: str) -> Path:
    """The folder holding the spools: ``upload_temp_dir``, or the system's temp folder when empty."""
    return Path(configured) if configured else Path(tempfile.gettempdir())


def make_spool(root: Path) -> Path:
    """A fresh, private folder for one request's files (blocking: call it in a thread)."""
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))


def free_bytes(folder: Path) -> int:
    """Bytes free for us on the disk holding ``folder``."""
    return shutil.disk_usage(folder).free


def remove_stale_spools(root: Path) -> list[Path]:
    """Remove the spools that no running server owns (blocking: call it in a thread); return them."""
    removed: list[Path] = []
    try:
        candidates = [p for p in root.iterdir() if p.name.startswith(PREFIX) and p.is_dir()]
    except FileNotFoundError:
        return removed
    for folder in candidates:
        if _is_stale(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        logger.info("removed %d upload spool(s) left by a server that stopped mid-upload", len(removed))
    return removed


def _is_stale(folder: Path) -> bool:
    owner, _, rest = folder.name.removeprefix(PREFIX).partition("-")
    if not (owner.isdigit() and rest):
        try:
            return time.time() - folder.stat().st_mtime > _UNOWNED_AGE_SECONDS
        except FileNotFoundError:
            return False
    pid = int(owner)
    return pid == os.getpid() or not _running(pid)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
