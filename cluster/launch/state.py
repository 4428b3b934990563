"""The deployed cluster's record: how later ``spheroseg cluster`` commands find what ``deploy`` started.

A small JSON file in the user's data directory (``SPHEROSEG_CLUSTER_STATE`` names another file, which is
what the tests do). It holds the scheduler's address, the spec, and the process that keeps the cluster
running (the daemon), so ``stop`` can end it. It is written atomically and removed when the cluster stops.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from platformdirs import user_data_path

from cluster.exceptions import ClusterNotFoundError
from cluster.launch.spec import ClusterSpec

__all__ = [
    "STATE_ENV",
    "ClusterState",
    "clear_state",
    "default_state_path",
    "load_state",
    "process_alive",
    "save_state",
]

STATE_ENV = "SPHEROSEG_CLUSTER_STATE"


def default_state_path() -> Path:
    """The state file: ``$SPHEROSEG_CLUSTER_STATE``, else ``cluster.json`` in the user data directory.

    That directory is platformdirs' (the server keeps its data there too). It is the folder the state file
    always had (``$XDG_DATA_HOME/spheroseg``, ``~/Library/Application Support/spheroseg``,
    ``%LOCALAPPDATA%\\spheroseg``), so a cluster deployed before still is found.
    """
    override = os.environ.get(STATE_ENV)
    return Path(override) if override else user_data_path("spheroseg", appauthor=False) / "cluster.json"


@dataclass(frozen=True)
class ClusterState:
    """What ``deploy`` started and how to reach it."""

    scheduler_address: str
    spec: ClusterSpec
    pid: int | None = None
    """The daemon keeping the cluster alive; ``None`` for a scheduler we only point at."""
    dashboard_link: str | None = None
    log_file: str | None = None
    started_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        data = asdict(self)
        data["spec"] = json.loads(self.spec.to_json())
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        data: dict[str, Any] = json.loads(text)
        data["spec"] = ClusterSpec.from_dict(data["spec"])
        return cls(**data)


def save_state(state: ClusterState, path: Path | None = None) -> Path:
    """Write ``state`` atomically (a reader never sees half a file); return the path."""
    path = path or default_state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(state.to_json(), encoding="utf-8")
    temporary.replace(path)
    return path


def load_state(path: Path | None = None) -> ClusterState:
    """The recorded cluster; :class:`ClusterNotFoundError` when none is recorded or the file is unreadable."""
    path = path or default_state_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClusterNotFoundError(
            f"no cluster is deployed (no state file at {path}); run 'spheroseg cluster deploy' "
            "or pass --scheduler ADDR"
        ) from None
    try:
        return ClusterState.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise ClusterNotFoundError(f"the cluster state file {path} is damaged ({exc}); remove it") from exc


def clear_state(path: Path | None = None, pid: int | None = None) -> None:
    """Remove the state file; with ``pid``, only if it still records that process."""
    path = path or default_state_path()
    if pid is not None:
        try:
            if load_state(path).pid != pid:
                return
        except ClusterNotFoundError:
            return
    path.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (and is not a zombie we could reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return waited == 0
