"""Saving spheroids as a new version of an image's segmentation, and making an old version current again.

Both are all or nothing: drafts are checked and measured against the image, then stored as one version
by :func:`server.db.segmentations.save_segmentation`, which refuses a stale ``base_version``
(:class:`~server.domain.errors.VersionConflictError`). A revert stores the old version's spheroids as
they are, as a new version: history is never rewritten. Each save counts against the actor's budget of
expensive operations and is announced (``segmentation_saved``) once committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from cluster import Spheroid
from server.db import segmentations
from server.db.images import images_by_ids
from server.db.models import Image, SegmentationVersion
from server.domain.errors import InvalidInputError
from server.domain.roles import Action
from server.domain.spheroids import SpheroidDraft, checked_spheroids
from server.domain.versions import Provenance, SaveOrigin, SegmentationSave
from server.events import Event, EventKind
from server.services.events import announce
from server.services.limits import spend_expensive
from server.services.permissions import Actor, RoleLookup, StoredRoles, require_project_action
from server.services.runtime import Runtime

__all__ = ["revert_segmentation", "save_spheroids"]


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
    data = {"version": row.version, "spheroidCount": row.spheroid_count, "origin": origin.value}
    event = Event(EventKind.SEGMENTATION_SAVED, image.project_id, None, (image_id,), actor.username, data)
    await announce(runtime, event)
    return row


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
