"""A project's images: reading them a page at a time, finding files it has, renaming them, setting their
pixel size, deleting them and setting their review state.

Reading needs the ``view`` right; a page (:func:`image_page`) costs two statements whatever its size, and
the positions of its images (:func:`image_positions`) one more, asked only when wanted.

Changes need the ``edit`` right in every project the images belong to; ids of images that do not exist
are left out (the GraphQL permission refuses them before). A deletion cancels the images' unfinished
tasks, removes originals no image holds any more, purges the images from a CDN, and is announced per
project; a review change is all or nothing (:func:`server.domain.review.check_review` and
:func:`~server.domain.review.check_reviewed_version` for each image), kept in each image's review
history, and announced per project. Every change moves the image's ``updated_at`` (as segmentation saves
and job status changes do), so a client catching up with ``updated_since`` finds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from server.db import images, jobs, reviews, spheroid_table
from server.db.images import ImagePage
from server.db.models import Image
from server.domain.errors import InvalidInputError, StaleReviewError
from server.domain.images import checked_image_name, checked_pixel_size
from server.domain.listing import ImageFilter, ImageOrder, PageRequest, checked_page
from server.domain.review import ReviewStatus, check_review, check_reviewed_version
from server.domain.roles import Action
from server.events import Event, EventKind
from server.jobs.progress import progress_event
from server.services.blobs import remove_unused_originals
from server.services.events import announce
from server.services.limits import spend_expensive
from server.services.permissions import Actor, RoleLookup, StoredRoles, require_project_action
from server.services.runtime import Runtime

__all__ = [
    "ImagesDeleted",
    "delete_images",
    "image_page",
    "image_positions",
    "images_with_content",
    "set_review",
    "update_image",
]


@dataclass(frozen=True)
class ImagesDeleted:
    deleted_ids: list[int]
    cdn_purge_errors: list[str]
    """What went wrong purging the deleted images from the CDN (empty when all went well)."""


async def delete_images(
    runtime: Runtime, actor: Actor, image_ids: Sequence[int], lookup: RoleLookup | None = None
) -> ImagesDeleted:
    """Delete the images; :class:`RateLimitedError` once the actor's budget is spent,
    :class:`PermissionDeniedError` unless they may edit every project concerned (nothing deleted then)."""
    spend_expensive(runtime, actor, "delete", "deletions")
    async with runtime.db() as db:
        projects = {i: row.project_id for i, row in (await images.images_by_ids(db, image_ids)).items()}
    await _require_edit(runtime, actor, projects.values(), lookup)
    async with runtime.db.begin() as db:
        touched_jobs = await jobs.cancel_tasks_of_images(db, image_ids)
        deleted, orphans = await images.delete_images(db, image_ids)
        changed_jobs = (await jobs.jobs_by_ids(db, touched_jobs)).values()
    user = actor.username
    await announce(
        runtime,
        *(progress_event(job, actor=user) for job in changed_jobs),
        *(
            Event(
                EventKind.IMAGE_STATUS,
                project,
                None,
                tuple(i for i in deleted if projects[i] == project),
                user,
                {"deleted": True},
            )
            for project in sorted({projects[i] for i in deleted})
        ),
    )
    await remove_unused_originals(runtime, orphans)
    delivery = runtime.delivery
    purge = await delivery.purge(delivery.purge_request(images=[(projects[i], i) for i in deleted]))
    return ImagesDeleted(deleted, purge.errors)


async def set_review(
    runtime: Runtime,
    actor: Actor,
    reviewed: Mapping[int, int],
    status: ReviewStatus,
    comment: str | None,
    lookup: RoleLookup | None = None,
) -> list[Image]:
    """Give every image (id -> the segmentation version the reviewer looked at) the verdict, or none of
    them: :class:`StaleReviewError` names an image whose current version is another one (saved after the
    reviewer looked), :class:`ReviewRuleError` an image that broke another rule. Each verdict joins the
    image's review history. The images as stored now, in the order asked."""
    image_ids = list(reviewed)
    async with runtime.db.begin() as db:
        rows = await images.images_by_ids(db, image_ids)
        await _require_edit(runtime, actor, (row.project_id for row in rows.values()), lookup)
        for row in rows.values():
            check_reviewed_version(row.id, row.name, reviewed[row.id], row.current_version)
            check_review(status, comment, row.current_version > 0, row.name)
        seen = {image_id: reviewed[image_id] for image_id in rows}
        stale = await reviews.record_reviews(db, seen, status.value, comment, actor.user_id)
        if stale:  # a save landed after the check: the whole change is rolled back
            row = rows[stale[0]]
            await db.refresh(row)
            raise StaleReviewError(row.id, row.name, seen[row.id], row.current_version)
        db.expire_all()
        updated = await images.images_by_ids(db, list(rows))
    for project in sorted({row.project_id for row in updated.values()}):
        changed = tuple(i for i, row in updated.items() if row.project_id == project)
        data = {"status": status.value, "comment": comment}
        await announce(runtime, Event(EventKind.REVIEW_CHANGED, project, None, changed, actor.username, data))
    return [updated[i] for i in image_ids if i in updated]


async def update_image(
    runtime: Runtime,
    actor: Actor,
    image_id: int,
    name: str | None,
    pixel_size_um: float | None,
    lookup: RoleLookup | None = None,
) -> Image:
    """Rename the image and/or set its pixel size (``None``: unchanged); :class:`InvalidInputError` names
    the field at fault (or ``id`` for an image that is gone), changing nothing.

    Stored segmentations are not rewritten: their metrics in µm are derived, when read, from the metrics
    in pixels and the image's pixel size (:mod:`server.db.records`), so every version shows the new
    pixel size at once and the history keeps what was saved. The project's spheroid table, which holds
    the current version's µm values as columns to sort by, is rescaled in the same transaction."""
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = checked_image_name(name)
    if pixel_size_um is not None:
        values["pixel_size_um"] = checked_pixel_size(pixel_size_um)
    async with runtime.db.begin() as db:
        row = (await images.images_by_ids(db, [image_id])).get(image_id)
        if row is None:
            raise InvalidInputError("id", f"there is no image {image_id}; it may have been deleted")
        await _require_edit(runtime, actor, [row.project_id], lookup)
        if values:
            await images.update_image(db, image_id, values)
        if pixel_size_um is not None:  # the project's spheroid table keeps µm values: they follow too
            await spheroid_table.rescale_rows(db, image_id, checked_pixel_size(pixel_size_um))
        await db.refresh(row)
    if values:
        data = {"changed": sorted(_FIELDS[name] for name in values)}
        event = Event(EventKind.IMAGE_STATUS, row.project_id, None, (image_id,), actor.username, data)
        await announce(runtime, event)
    return row


_FIELDS = {"name": "name", "pixel_size_um": "pixelSizeUm"}
"""How an event names each changed field (as the API does)."""


async def image_page(
    runtime: Runtime,
    actor: Actor,
    project_id: int,
    where: ImageFilter,
    page: PageRequest,
    lookup: RoleLookup | None = None,
) -> ImagePage:
    """A page of the project's images (:class:`InvalidInputError` names a wrong argument); two
    statements whatever the page size or the project's."""
    await require_project_action(actor, project_id, Action.VIEW, _roles(runtime, actor, lookup), "see it")
    page = checked_page(page, runtime.settings.max_page_size)
    async with runtime.db() as db:
        return await images.images_page(db, project_id, where, page)


async def image_positions(
    runtime: Runtime,
    actor: Actor,
    project_id: int,
    where: ImageFilter,
    order: ImageOrder,
    image_ids: Sequence[int],
    lookup: RoleLookup | None = None,
) -> dict[int, int]:
    """Where each image stands (from 1) among the project's images ``where`` selects, in ``order``; one
    statement for any number of images."""
    await require_project_action(actor, project_id, Action.VIEW, _roles(runtime, actor, lookup), "see it")
    async with runtime.db() as db:
        return await images.positions_of(db, project_id, where, order, image_ids)


async def images_with_content(
    runtime: Runtime,
    actor: Actor,
    project_id: int,
    sha256s: Sequence[str],
    lookup: RoleLookup | None = None,
) -> list[Image]:
    """The project's images holding any of these SHA-256 digests of file contents, so a client can skip
    files the project has before sending them; :class:`InvalidInputError` (field ``sha256s``) for more
    digests than one upload takes, or one that is not 64 hexadecimal digits."""
    await require_project_action(actor, project_id, Action.VIEW, _roles(runtime, actor, lookup), "see it")
    limit = runtime.settings.max_files_per_upload
    if len(sha256s) > limit:
        raise InvalidInputError("sha256s", f"{len(sha256s)} digests; at most {limit} in one request")
    digests = []
    for given in sha256s:
        digest = given.strip().lower()
        if not _SHA256.fullmatch(digest):
            raise InvalidInputError("sha256s", f"{given[:80]!r} is not a SHA-256 digest (64 hex digits)")
        digests.append(digest)
    async with runtime.db() as db:
        return await images.images_holding(db, project_id, sorted(set(digests)))


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _roles(runtime: Runtime, actor: Actor, lookup: RoleLookup | None) -> RoleLookup:
    return lookup or StoredRoles(runtime.db, actor.user_id)


async def _require_edit(
    runtime: Runtime, actor: Actor, project_ids: Iterable[int], lookup: RoleLookup | None
) -> None:
    roles = lookup or StoredRoles(runtime.db, actor.user_id)
    for project_id in sorted(set(project_ids)):
        await require_project_action(actor, project_id, Action.EDIT, roles, "change it")
