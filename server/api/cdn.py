"""``purgeCdn``: an administrator empties the CDN of a project, some images, paths or cache tags.

The server purges by itself when images are deleted; this is for the rest (a CDN that kept something
it should not have, a re-rendered master). The work is :func:`server.services.cdn.purge_cdn`; what each
provider did and every error it met is returned.
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from server.api.context import Info
from server.api.cost import Cost
from server.api.permissions import IsAdmin
from server.api.results import InputError, input_error
from server.domain.errors import InvalidInputError
from server.services import cdn as service

__all__ = ["CdnMutation"]

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
        context = info.context
        try:
            actor = context.require_actor()
            report = await service.purge_cdn(
                context.services, actor, project_id, image_ids or [], paths or [], tags or []
            )
        except InvalidInputError as error:
            return input_error(error)
        if report.errors:
            return CdnPurgeFailed(provider=report.provider, requests=report.requests, errors=report.errors)
        return CdnPurgeSuccess(
            provider=report.provider, requests=report.requests, tags=report.tags, paths=report.paths
        )
