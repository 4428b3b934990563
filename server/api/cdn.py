"""``purgeCdn``: an administrator empties the CDN of a project, some images, paths or cache tags.

The server purges by itself when images are deleted; this is for the rest (a CDN that kept something
it should not have, a re-rendered master). What each provider did and every error it met is returned:
a purge that failed quietly would leave images on the edge that the server believes gone.
"""

from __future__ import annotations

import re
from typing import Annotated

import strawberry

from server.api.context import Info
from server.api.cost import Cost
from server.api.permissions import IsAdmin
from server.api.results import InputError
from server.delivery import PurgeRequest

__all__ = ["CdnMutation"]

_PATH = re.compile(r"^/img/[A-Za-z0-9_./-]{0,400}$")
_TAG = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_ITEMS = 10_000


@strawberry.type
class CdnPurgeSuccess:
    provider: str
    requests: int
    tags: int
    paths: int


@strawberry.type(description="The provider refused or could not be reached; `errors` says what and where.")
class CdnPurgeFailed:
    provider: str
    requests: int
    errors: list[str]


CdnPurgeResult = Annotated[CdnPurgeSuccess | CdnPurgeFailed | InputError, strawberry.union("CdnPurgeResult")]


@strawberry.type
class CdnMutation:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        directives=[Cost(weight=10)],
        description="Purge the CDN of a project, images, image paths (a path ending in '/' is a prefix) "
        "or cache tags (project-<id>, image-<id>). Administrators only.",
    )
    async def purge_cdn(
        self,
        info: Info,
        project_id: int | None = None,
        image_ids: list[int] | None = None,
        paths: list[str] | None = None,
        tags: list[str] | None = None,
    ) -> CdnPurgeResult:
        paths, tags, image_ids = paths or [], tags or [], image_ids or []
        if project_id is None and not (image_ids or paths or tags):
            return InputError(field="projectId", message="name a project, images, paths or tags to purge")
        if len(paths) + len(tags) + len(image_ids) > MAX_ITEMS:
            return InputError(field="paths", message=f"at most {MAX_ITEMS:,} items in one purge")
        bad_path = next((p for p in paths if not _PATH.match(p) or ".." in p), None)
        if bad_path is not None:
            return InputError(field="paths", message=f"{bad_path[:100]!r} is not an image path (/img/…)")
        bad_tag = next((t for t in tags if not _TAG.match(t)), None)
        if bad_tag is not None:
            return InputError(field="tags", message=f"{bad_tag[:100]!r} is not a cache tag")
        rows = await info.context.loaders.image.load_many(image_ids)
        missing = [i for i, row in zip(image_ids, rows, strict=True) if row is None]
        if missing:
            return InputError(field="imageIds", message=f"no images with ids {missing[:20]}")
        delivery = info.context.services.delivery
        derived = delivery.purge_request(
            images=[(row.project_id, row.id) for row in rows if row is not None],
            projects=[project_id] if project_id is not None else [],
        )
        request = PurgeRequest(tags=derived.tags + tuple(tags), paths=derived.paths + tuple(paths))
        report = await delivery.purge(request)
        if report.errors:
            return CdnPurgeFailed(provider=report.provider, requests=report.requests, errors=report.errors)
        return CdnPurgeSuccess(
            provider=report.provider, requests=report.requests, tags=report.tags, paths=report.paths
        )
