"""Version rules of segmentations: every save makes a new version, based on the current one.

A save, whoever makes it, is a :class:`SegmentationSave`: the measured spheroids, the version they were
based on, where they come from (:class:`SaveOrigin`), who saved them and what produced them. The database
applies every one of them the same way (``server.db.segmentations.save_segmentation``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cluster import Spheroid
from server.domain.errors import InvalidSpheroidsError, VersionConflictError

__all__ = [
    "Provenance",
    "SaveOrigin",
    "SegmentationSave",
    "StoredChanges",
    "StoredSpheroid",
    "StoredVersion",
    "next_version",
    "with_spheroid_ids",
]


class SaveOrigin(enum.StrEnum):
    """Where a new version comes from."""

    JOB = "job"
    """A segmentation job's result for the image."""
    EDIT = "edit"
    """Spheroids a person drew or corrected."""
    REVERT = "revert"
    """An older version made current again."""
    IMPORT = "import"
    """Spheroids read from a file (COCO, GeoJSON)."""


@dataclass(frozen=True)
class Provenance:
    """What produced the spheroids: a model's name, version and parameters; empty for a person's drawing."""

    model_name: str = ""
    model_version: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredSpheroid:
    """A spheroid of a stored version as it is stored: ``record`` is its stored form as text (which only
    ``server.db.records`` reads or writes).

    Two are equal when their records are: the spheroid has not changed between the versions holding them.
    """

    id: int
    record: str


class StoredVersion(Protocol):
    """A stored version's spheroids, each found by id without reading the others (``server.db.records``)."""

    def get(self, spheroid_id: int) -> StoredSpheroid | None:
        """The spheroid with this id, or ``None`` when the version has none."""
        ...


@dataclass(frozen=True)
class StoredChanges:
    """A new version made of a stored one (``onto``) with some spheroids replaced (by id; each keeps it),
    some deleted and some added (they get new ids, and come last, in order). Every other spheroid of
    ``onto`` stays as it was stored, shared with ``onto``: not read, rebuilt or measured again (an edit)."""

    onto: StoredVersion
    replace: Mapping[int, Spheroid]
    delete: frozenset[int]
    add: Sequence[Spheroid]


@dataclass(frozen=True)
class SegmentationSave:
    """One save of an image's segmentation: ``spheroids`` become version ``base_version + 1``.

    ``base_version`` is the version the spheroids were made from (0 for an image without one); the save is
    refused when it is no longer the current one. ``spheroids`` is the whole new version, or
    :class:`StoredChanges` to the current one (``onto`` must be version ``base_version``). Spheroids
    should carry their metrics; any that do not are measured when saved.
    """

    image_id: int
    base_version: int
    spheroids: Sequence[Spheroid] | StoredChanges
    origin: SaveOrigin
    author_id: int | None = None
    provenance: Provenance = field(default_factory=Provenance)


def next_version(current_version: int, base_version: int) -> int:
    """The version a save creates; ``current_version`` is 0 when the image has no segmentation yet.

    A save must name the version it started from: anything but the current one is a conflict, never a
    silent overwrite (:class:`VersionConflictError` carries the current version).
    """
    if base_version != current_version:
        raise VersionConflictError(base_version, current_version)
    return current_version + 1


def with_spheroid_ids(spheroids: Sequence[Spheroid], last_id: int) -> tuple[list[Spheroid], int]:
    """The spheroids with ids, and the image's new last id.

    A spheroid keeps the id it has (an edit keeps the ids of what it did not touch, a revert those of the
    version it restores); one without gets the next unused id of its image, so a job's result gets new
    ones. Ids are never given out twice within an image, which is why the image keeps its ``last_id``.
    Two spheroids of one save with the same id are refused (:class:`InvalidSpheroidsError`).
    """
    seen: dict[int, int] = {}
    problems = []
    for index, spheroid in enumerate(spheroids):
        if spheroid.id is None:
            continue
        if spheroid.id in seen:
            problems.append(f"spheroid {index}: id {spheroid.id} is spheroid {seen[spheroid.id]}'s too")
        seen[spheroid.id] = index
    if problems:
        raise InvalidSpheroidsError(problems)
    next_id = max([last_id, *seen])
    named: list[Spheroid] = []
    for spheroid in spheroids:
        if spheroid.id is None:
            next_id += 1
            spheroid = spheroid.with_id(next_id)
        named.append(spheroid)
    return named, next_id
