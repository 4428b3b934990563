"""An administrator empties the CDN of a project, some images, paths or cache tags.

The server purges by itself when images are deleted; this is for the rest (a CDN that kept something it
should not have, a re-rendered master). The report says what each provider did and every error it met:
a purge that failed quietly would leave images on the edge that the server believes gone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from server.db.images import images_by_ids
from server.delivery import PurgeReport, PurgeRequest
from server.domain.errors import InvalidInputError
from server.services.permissions import Actor, require_admin
from server.services.runtime import Runtime

__all__ = ["MAX_ITEMS", "purge_cdn"]

_PATH = re.compile(r"^/img/[A-Za-z0-9_./-]{0,400}$")
_TAG = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_ITEMS = 10_000


async def purge_cdn(
    runtime: Runtime,
    actor: Actor,
    project_id: int | None,
    image_ids: Sequence[int],
    paths: Sequence[str],
    tags: Sequence[str],
) -> PurgeReport:
    """Purge what is named; :class:`InvalidInputError` naming the wrong field (nothing purged then)."""
    require_admin(actor)
    _check(project_id, image_ids, paths, tags)
    async with runtime.db() as db:
        rows = await images_by_ids(db, image_ids)
    missing = [i for i in image_ids if i not in rows]
    if missing:
        raise InvalidInputError("imageIds", f"no images with ids {missing[:20]}")
    delivery = runtime.delivery
    derived = delivery.purge_request(
        images=[(rows[i].project_id, i) for i in image_ids],
        projects=[project_id] if project_id is not None else [],
    )
    request = PurgeRequest(tags=derived.tags + tuple(tags), paths=derived.paths + tuple(paths))
    return await delivery.purge(request)


def _check(
    project_id: int | None, image_ids: Sequence[int], paths: Sequence[str], tags: Sequence[str]
) -> None:
    if project_id is None and not (image_ids or paths or tags):
        raise InvalidInputError("projectId", "name a project, images, paths or tags to purge")
    if len(paths) + len(tags) + len(image_ids) > MAX_ITEMS:
        raise InvalidInputError("paths", f"at most {MAX_ITEMS:,} items in one purge")
    bad_path = next((p for p in paths if not _PATH.match(p) or ".." in p), None)
    if bad_path is not None:
        raise InvalidInputError("paths", f"{bad_path[:100]!r} is not an image path (/img/…)")
    bad_tag = next((t for t in tags if not _TAG.match(t)), None)
    if bad_tag is not None:
        raise InvalidInputError("tags", f"{bad_tag[:100]!r} is not a cache tag")
