"""Edits of a segmentation: the spheroids a person changed, applied to the stored version, merged with what
others saved since.

An edit names the version it started from (its base) and brings only its changes (:class:`SpheroidEdit`):
spheroids to put in (with an id, one that replaces that spheroid's rings and keeps its id; without, a new
one) and ids to delete. It is applied to the *current* version (:func:`applied`), whose other spheroids go
into the next version as they are stored (:class:`StoredChanges`: not read, rebuilt or measured again); new
spheroids come last, in the order sent.

What others saved since the base is found by comparing the base version's spheroids with the current
ones, by id (:func:`conflicts_of`). An edited id (put in or deleted) whose spheroid someone else changed or
deleted meanwhile is a conflict; edits of different spheroids merge. A job's result replaces every
spheroid with new ids, so after one every edited id counts as deleted by the other. Ids an edit names must
be in its base version, once each (:func:`id_problems`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cluster import Spheroid
from server.domain.errors import ConflictReason
from server.domain.versions import StoredChanges, StoredVersion

__all__ = ["SpheroidEdit", "applied", "conflicts_of", "id_problems"]


@dataclass(frozen=True)
class SpheroidEdit:
    """The changes of one edit: measured spheroids to put in (``id`` set: replace that one; ``None``: a new
    one) and ids of spheroids to delete."""

    upsert: Sequence[Spheroid]
    delete: Sequence[int]

    @property
    def edited_ids(self) -> list[int]:
        """Ids this edit replaces or deletes, in the order it names them."""
        return [s.id for s in self.upsert if s.id is not None] + list(self.delete)


def id_problems(edit: SpheroidEdit, base: StoredVersion, base_version: int) -> list[str]:
    """What is wrong with the ids an edit names: an id named twice, or one its base version lacks."""
    named = [(f"spheroid {i} (id {s.id})", s.id) for i, s in enumerate(edit.upsert) if s.id is not None]
    named += [(f"delete {i} (id {spheroid_id})", spheroid_id) for i, spheroid_id in enumerate(edit.delete)]
    problems: list[str] = []
    first: dict[int, str] = {}
    for label, spheroid_id in named:
        if spheroid_id in first:
            problems.append(f"{label}: id {spheroid_id} is named by {first[spheroid_id]} too")
        elif base.get(spheroid_id) is None:
            problems.append(f"{label}: version {base_version} has no spheroid {spheroid_id}")
        first.setdefault(spheroid_id, label)
    return problems


def conflicts_of(
    edit: SpheroidEdit, base: StoredVersion, current: StoredVersion
) -> dict[int, ConflictReason]:
    """The edited ids whose spheroid changed or went between ``base`` and ``current``, with why."""
    if base is current:
        return {}
    found: dict[int, ConflictReason] = {}
    for spheroid_id in edit.edited_ids:
        now = current.get(spheroid_id)
        if now is None:
            found[spheroid_id] = ConflictReason.DELETED
        elif now != base.get(spheroid_id):
            found[spheroid_id] = ConflictReason.CHANGED
    return found


def applied(edit: SpheroidEdit, current: StoredVersion) -> StoredChanges:
    """The next version: ``current`` with the edit's spheroids replaced or deleted in place, the new ones
    appended in order. The edit must be free of conflicts with ``current`` (:func:`conflicts_of`)."""
    replace = {s.id: s for s in edit.upsert if s.id is not None}
    return StoredChanges(current, replace, frozenset(edit.delete), [s for s in edit.upsert if s.id is None])
