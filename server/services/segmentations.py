"""Saving spheroids as a new version of an image's segmentation, editing some of them, and making an old
version current again.

All are all or nothing: drafts are checked and measured against the image, then stored as one version
by :func:`server.db.segmentations.save_segmentation`, which refuses a stale ``base_version``
(:class:`~server.domain.errors.VersionConflictError`). A whole-image save (imports) and a revert send every
spheroid; a revert stores the old version's spheroids as they are, as a new version: history is never
rewritten. An edit (:func:`edit_segmentation`) sends only the spheroids it changes; it is applied to the
current version, merged with what others saved since its base unless they touched the same spheroids
(:mod:`server.domain.edits`), and measures only the changed spheroids. Each save counts against the
actor's budget of expensive operations and is announced (``segmentation_saved``) once committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from cluster import Spheroid
from server.db import segmentations
from server.db.images import images_by_ids
from server.db.models import Image, SegmentationVersion
from server.db.records import spheroid_of_stored
from server.domain.edits import SpheroidEdit, applied, conflicts_of, id_problems
from server.domain.errors import (
    ConflictReason,
    EditConflictError,
    InvalidInputError,
    InvalidSpheroidsError,
    SpheroidConflict,
    VersionConflictError,
)
from server.domain.roles import Action
from server.domain.spheroids import MAX_SPHEROIDS, SpheroidDraft, checked_spheroids
from server.domain.versions import Provenance, SaveOrigin, SegmentationSave, StoredVersion
from server.events import Event, EventKind
from server.services.events import announce
from server.services.limits import spend_expensive
from server.services.permissions import Actor, RoleLookup, StoredRoles, require_project_action
from server.services.runtime import Runtime

__all__ = ["EditSaved", "edit_segmentation", "revert_segmentation", "save_spheroids"]

logger = logging.getLogger(__name__)

MERGE_ATTEMPTS = 3
"""How often an edit is merged again when another save lands between its reading and its storing."""


async def save_spheroids(
    runtime: Runtime,
    actor: Actor,
    image_id: int,
    base_version: int,
    spheroids: Sequence[SpheroidDraft] | Sequence[Spheroid],
    origin: SaveOrigin,
    provenance: Provenance,
    lookup: RoleLookup | None = None,
) -> SegmentationVersion:
    """Store a new version and return it.

    Raises :class:`RateLimitedError` (budget spent), :class:`PermissionDeniedError` (may not edit the
    image's project), :class:`InvalidInputError` (no such image), :class:`InvalidSpheroidsError` (rings
    that cannot be stored; ``problems`` names each) or :class:`VersionConflictError` (someone saved
    meanwhile); nothing is saved then.
    """
    spend_expensive(runtime, actor, "save", "saves")
    roles = lookup or StoredRoles(runtime.db, actor.user_id)
    async with runtime.db.begin() as db:
        image = (await images_by_ids(db, [image_id])).get(image_id)
        if image is None:  # deleted since the caller looked
            raise InvalidInputError("imageId", f"there is no image {image_id}; it may have been deleted")
        await require_project_action(actor, image.project_id, Action.EDIT, roles, "change it")
        measured = await _checked(spheroids, image)
        change = SegmentationSave(image_id, base_version, measured, origin, actor.user_id, provenance)
        row = await segmentations.save_segmentation(db, change)
    await _announce_saved(runtime, actor, image, row)
    return row


@dataclass(frozen=True)
class EditSaved:
    """An edit stored: the new version; ``merged`` when it went on top of others' saves made since its
    base; ``new_ids``, the ids the spheroids it added got, in the order they were sent."""

    row: SegmentationVersion
    merged: bool
    new_ids: list[int]


async def edit_segmentation(
    runtime: Runtime,
    actor: Actor,
    image_id: int,
    base_version: int,
    upsert: Sequence[SpheroidDraft],
    delete: Sequence[int],
    lookup: RoleLookup | None = None,
) -> EditSaved:
    """Store the next version: the current one with ``upsert`` put in (a draft with an id replaces that
    spheroid, one without is added) and the ``delete`` ids taken out; the rest is kept as stored.

    Raises :class:`EditConflictError` (another save since ``base_version`` changed or deleted a spheroid
    this edit touches; it names each with both shapes) and otherwise as :func:`save_spheroids`
    (:class:`InvalidSpheroidsError` also for an id the base version lacks or one named twice,
    :class:`InvalidInputError` for a base version the image does not have); nothing is saved then.
    """
    spend_expensive(runtime, actor, "save", "saves")
    roles = lookup or StoredRoles(runtime.db, actor.user_id)
    async with runtime.db() as db:
        image = (await images_by_ids(db, [image_id])).get(image_id)
    if image is None:
        raise InvalidInputError("imageId", f"there is no image {image_id}; it may have been deleted")
    await require_project_action(actor, image.project_id, Action.EDIT, roles, "change it")
    if len(delete) > MAX_SPHEROIDS:
        raise InvalidSpheroidsError([f"{len(delete)} deletions, at most {MAX_SPHEROIDS} allowed"])
    edit = SpheroidEdit(await _checked(upsert, image), list(delete))
    for attempt in range(1, MERGE_ATTEMPTS + 1):
        try:
            async with runtime.db.begin() as db:
                row = await _applied_edit(db, image, base_version, edit, actor)
                added = sum(spheroid.id is None for spheroid in edit.upsert)
                new_ids = await segmentations.last_added_ids(db, row, added)
            break
        except VersionConflictError:  # saved meanwhile: merge again on top of that save
            logger.info("image %d: edit merged again after a concurrent save (try %d)", image_id, attempt)
            if attempt == MERGE_ATTEMPTS:
                raise
    await _announce_saved(runtime, actor, image, row)
    return EditSaved(row, row.version != base_version + 1, new_ids)


async def _applied_edit(
    db: AsyncSession, image: Image, base_version: int, edit: SpheroidEdit, actor: Actor
) -> SegmentationVersion:
    """Apply ``edit`` to the image's current version in this transaction, or raise."""
    current_version = await segmentations.current_version_of(db, image.id)
    if current_version is None:
        raise InvalidInputError("imageId", f"there is no image {image.id}; it may have been deleted")
    if not 0 <= base_version <= current_version:
        message = f"image {image.id} has versions 0 to {current_version}, not {base_version}"
        raise InvalidInputError("baseVersion", message)
    ids = edit.edited_ids  # only the spheroids an edit names are read
    current_row, current = await segmentations.stored_version(db, image.id, current_version, ids)
    if base_version == current_version:
        base = current
    else:
        _, base = await segmentations.stored_version(db, image.id, base_version, ids)
    if problems := id_problems(edit, base, base_version):
        raise InvalidSpheroidsError(problems)
    if conflicts := conflicts_of(edit, base, current):
        shapes = _conflicts(edit, current, conflicts, image.pixel_size_um)
        raise EditConflictError(base_version, current_version, shapes)
    provenance = (
        Provenance(current_row.model_name, current_row.model_version, dict(current_row.parameters))
        if current_row is not None
        else Provenance()
    )
    save = SegmentationSave(
        image.id, current_version, applied(edit, current), SaveOrigin.EDIT, actor.user_id, provenance
    )
    return await segmentations.save_segmentation(db, save)


def _conflicts(
    edit: SpheroidEdit, current: StoredVersion, found: dict[int, ConflictReason], pixel_size_um: float | None
) -> list[SpheroidConflict]:
    """Each conflicting spheroid with what this edit makes of it and what is stored now."""
    mine = {spheroid.id: spheroid for spheroid in edit.upsert}
    conflicts = []
    for spheroid_id, reason in found.items():
        theirs = current.get(spheroid_id)
        stored = spheroid_of_stored(theirs, pixel_size_um) if theirs is not None else None
        conflicts.append(SpheroidConflict(spheroid_id, reason, mine.get(spheroid_id), stored))
    return conflicts


async def _announce_saved(runtime: Runtime, actor: Actor, image: Image, row: SegmentationVersion) -> None:
    data = {"version": row.version, "spheroidCount": row.spheroid_count, "origin": row.origin}
    event = Event(EventKind.SEGMENTATION_SAVED, image.project_id, None, (image.id,), actor.username, data)
    await announce(runtime, event)


async def revert_segmentation(
    runtime: Runtime,
    actor: Actor,
    image_id: int,
    version: int,
    base_version: int,
    lookup: RoleLookup | None = None,
) -> SegmentationVersion:
    """Save version ``version`` again as the newest one; :class:`InvalidInputError` (field ``version``)
    when the image has no such version, else as :func:`save_spheroids`."""
    async with runtime.db() as db:
        old = await segmentations.segmentation_at(db, image_id, version)
    if old is None:
        raise InvalidInputError("version", f"image {image_id} has no version {version}")
    provenance = Provenance(old.model_name, old.model_version, {**old.parameters, "revertedFrom": version})
    return await save_spheroids(
        runtime, actor, image_id, base_version, old.spheroids, SaveOrigin.REVERT, provenance, lookup
    )


async def _checked(spheroids: Sequence[SpheroidDraft] | Sequence[Spheroid], image: Image) -> list[Spheroid]:
    """Drafts checked and measured against the image (in a thread); stored spheroids as they are."""
    drafts = [s for s in spheroids if isinstance(s, SpheroidDraft)]
    if not drafts:
        return [s for s in spheroids if isinstance(s, Spheroid)]
    return await asyncio.to_thread(checked_spheroids, drafts, image.width, image.height, image.pixel_size_um)
