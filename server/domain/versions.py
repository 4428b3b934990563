"""Version rules of segmentations: every save makes a new version, based on the current one."""

from __future__ import annotations

from server.domain.errors import VersionConflictError

__all__ = ["next_version"]


def next_version(current_version: int, base_version: int) -> int:
    """The version a save creates; ``current_version`` is 0 when the image has no segmentation yet.

    A save must name the version it started from: anything but the current one is a conflict, never a
    silent overwrite (:class:`VersionConflictError` carries the current version).
    """
    if base_version != current_version:
        raise VersionConflictError(base_version, current_version)
    return current_version + 1
