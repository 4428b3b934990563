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


@strawberry.type(description="The CDN accepted every purge request.")
class CdnPurgeSuccess:
    provider: str = strawberry.field(description="The CDN purged (as configured on the server).")
    requests: int = strawberry.field(description="Purge requests sent to it.")
    tags: int = strawberry.field(description="Cache tags purged.")
    paths: int = strawberry.field(description="URL paths (or path prefixes) purged.")


@strawberry.type(description="The provider refused or could not be reached; `errors` says what and where.")
class CdnPurgeFailed:
    provider: str = strawberry.field(description="The CDN asked (as configured on the server).")
    requests: int = strawberry.field(description="Purge requests sent to it, the failed ones included.")
    errors: list[str] = strawberry.field(
        description="Each failure, with the request it belongs to; purging again is safe."
    )


CdnPurgeResult = Annotated[
    CdnPurgeSuccess | CdnPurgeFailed | InputError,
    strawberry.union(
        "CdnPurgeResult",
        description="What the CDN purged, what it refused, or which argument was wrong.",
    ),
]


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
        project_id: Annotated[
            int | None, strawberry.argument(description="Purge everything of this project.")
        ] = None,
        image_ids: Annotated[
            list[int] | None, strawberry.argument(description="Purge everything of these images.")
        ] = None,
        paths: Annotated[
            list[str] | None,
            strawberry.argument(description="URL paths to purge; one ending in '/' purges all below it."),
        ] = None,
        tags: Annotated[
            list[str] | None,
            strawberry.argument(description="Cache tags to purge: project-<id> or image-<id>."),
        ] = None,
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
