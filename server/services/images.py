"""Changing a project's images: deleting them, and setting their review state.

Both need the ``edit`` right in every project the images belong to; ids of images that do not exist are
left out (the GraphQL permission refuses them before). A deletion cancels the images' unfinished tasks,
removes originals no image holds any more, purges the images from a CDN, and is announced per project;
a review change is all or nothing (:func:`server.domain.review.check_review` for each image) and
announced per project.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from server.db import images, jobs
from server.db.models import Image
from server.domain.review import ReviewStatus, check_review
from server.domain.roles import Action
from server.events import Event, EventKind
from server.jobs.progress import progress_event
from server.services.blobs import remove_unused_originals
from server.services.events import announce
from server.services.limits import spend_expensive
from server.services.permissions import Actor, RoleLookup, StoredRoles, require_project_action
from server.services.runtime import Runtime

__all__ = ["ImagesDeleted", "delete_images", "set_review"]


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
    image_ids: Sequence[int],
    status: ReviewStatus,
    comment: str | None,
    lookup: RoleLookup | None = None,
) -> list[Image]:
    """Set the review state of every image, or of none (:class:`ReviewRuleError` says which image broke
    which rule); the images as stored now, in the order asked."""
    async with runtime.db.begin() as db:
        rows = await images.images_by_ids(db, image_ids)
        await _require_edit(runtime, actor, (row.project_id for row in rows.values()), lookup)
        for row in rows.values():
            check_review(status, comment, row.current_version > 0, row.name)
        await images.set_review(db, list(rows), status.value, comment, actor.user_id)
        db.expire_all()
        updated = await images.images_by_ids(db, list(rows))
    for project in sorted({row.project_id for row in updated.values()}):
        changed = tuple(i for i, row in updated.items() if row.project_id == project)
        data = {"status": status.value, "comment": comment}
        await announce(runtime, Event(EventKind.REVIEW_CHANGED, project, None, changed, actor.username, data))
    return [updated[i] for i in image_ids if i in updated]


async def _require_edit(
    runtime: Runtime, actor: Actor, project_ids: Iterable[int], lookup: RoleLookup | None
) -> None:
    roles = lookup or StoredRoles(runtime.db, actor.user_id)
    for project_id in sorted(set(project_ids)):
        await require_project_action(actor, project_id, Action.EDIT, roles, "change it")
