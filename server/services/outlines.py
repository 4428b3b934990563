"""A segmentation version's outlines in the binary format, for someone allowed to see the image.

The signed ``/img/…/outlines-v<version>.bin`` URL that ``Segmentation.geometryUrl`` hands out needs no
check when fetched (only someone allowed to see the image was given it). The token route, for clients
that do not follow URLs, asks here: the same bytes, from the same cache, after the viewer check.
"""

from __future__ import annotations

from server.db.images import images_by_ids
from server.delivery.outlines import EncodedOutlines
from server.domain.errors import InvalidInputError
from server.domain.roles import Action
from server.exceptions import PermissionDeniedError
from server.services.permissions import Actor, RoleLookup, StoredRoles, require_project_action
from server.services.runtime import Runtime

__all__ = ["version_outlines"]

NOT_SEEN = "not found, or you may not see it"
"""The refusal for an image that does not exist, word for word the one for an image one may not see."""


async def version_outlines(
    runtime: Runtime, actor: Actor, image_id: int, version: int, lookup: RoleLookup | None = None
) -> EncodedOutlines:
    """The encoded outlines of ``image_id`` at ``version``.

    Raises :class:`PermissionDeniedError` when there is no such image or the actor may not see it (the
    same answer, so strangers learn nothing) and :class:`InvalidInputError` (field ``version``) when the
    image has no such version.
    """
    async with runtime.db() as db:
        image = (await images_by_ids(db, [image_id])).get(image_id)
    if image is None:
        raise PermissionDeniedError(NOT_SEEN)
    roles = lookup or StoredRoles(runtime.db, actor.user_id)
    await require_project_action(actor, image.project_id, Action.VIEW, roles, "see it")
    encoded = await runtime.delivery.outlines.get(runtime.db, image, version)
    if encoded is None:
        raise InvalidInputError("version", f"image {image_id} has no segmentation version {version}")
    return encoded
