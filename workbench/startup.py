"""How the workbench was asked to start (``spheroseg workbench``'s options), Qt-free so the command line
and the window share it and tests build it directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["StartOptions", "default_config_dir"]


def default_config_dir() -> Path:
    """Where the workbench keeps its sessions file (the platform's per-user configuration folder)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("spheroseg", appauthor=False))


@dataclass
class StartOptions:
    offline: bool = False
    """Work offline at once, without waiting on the start screen."""
    server_url: str | None = None
    """A lab server to offer on the start screen (and to resume a saved session on)."""
    data_dir: Path | None = None
    """The offline server's data folder (``None``: the server's default, or SPHEROSEG_DATA_DIR)."""
    config_dir: Path = field(default_factory=default_config_dir)
    cache_dir: Path | None = None
    """The image fetcher's HTTP cache (``None``: the fetcher's default)."""
    journal_dir: Path | None = None
    """Where edits not confirmed by the server are kept (``None``: ``journal.user_journal_folder()``)."""
    environment: dict[str, str] | None = None
    """The offline server's environment (``None``: this process's)."""
    sample_project: bool = False
    """Open the "Samples" project once signed in, importing and segmenting the bundled samples first."""
    check: bool = False
    """Check the installation (:mod:`workbench.installation_check`) offline, print the report and close."""
