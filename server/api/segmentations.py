"""Segmentations: spheroids with rings and metrics, versions, ``saveSegmentation``, ``revertSegmentation``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from cluster import Spheroid, SpheroidMetrics, touches_border
from server.api.absolute import absolute_url
from server.api.context import Info
from server.api.cost import Cost, ListSize
from server.api.extensions import CountedList
from server.api.permissions import CanEditProject
from server.api.results import InputError, RateLimited, input_error, rate_limited_result
from server.db.models import SegmentationVersion
from server.delivery import ImageRef
from server.domain.errors import InvalidInputError, InvalidSpheroidsError, VersionConflictError
from server.domain.spheroids import SpheroidDraft
from server.domain.versions import Provenance, SaveOrigin
from server.exceptions import PermissionDeniedError, RateLimitedError
from server.services import segmentations as service

__all__ = [
    "InvalidSpheroids",
    "Points",
    "SegmentationMutation",
    "SegmentationType",
    "SpheroidType",
    "VersionConflict",
    "invalid_spheroids",
    "version_conflict",
]

Points = list[list[float]]
SaveOriginEnum = strawberry.enum(SaveOrigin, name="SaveOrigin")


@strawberry.type(
    name="SpheroidMetrics", description="Morphology of one spheroid; units as in cluster.metrics."
)
class MetricsType:
    area_px: float
    area_um2: float | None
    perimeter_px: float
    perimeter_um: float | None
    equivalent_diameter_px: float
    equivalent_diameter_um: float | None
    circularity: float
    sphericity: float
    convexity: float
    solidity: float
    feret_max_px: float
    feret_min_px: float
    aspect_ratio: float
    centroid_x: float
    centroid_y: float
    hole_count: int

    @classmethod
    def of(cls, metrics: SpheroidMetrics) -> MetricsType:
        """The metrics this type shows (a subset of :class:`SpheroidMetrics`, by name)."""
        return cls(**{name: getattr(metrics, name) for name in cls.__annotations__})


@strawberry.type(name="Spheroid")
class SpheroidType:
    id: int = strawberry.field(
        description="Names the spheroid within its image: the same across versions while it is kept or "
        "edited, never given to another spheroid of the image (a job's result gets new ids)."
    )
    exterior: Points = strawberry.field(description="Open ring of (x, y) image pixels, top-left origin.")
    holes: list[Points]
    metrics: MetricsType | None = strawberry.field(
        description="Null only for a spheroid stored by an older server that cannot be measured."
    )
    touches_border: bool = strawberry.field(
        description="The outline comes within 1 px of the image's edge: the spheroid may be cut by it, so "
        "its size and shape describe only the part in view (statistics usually leave it out)."
    )

    @classmethod
    def of(cls, spheroid: Spheroid, image_size: tuple[int, int]) -> SpheroidType:
        if spheroid.id is None:  # every stored spheroid has one (migration 0006 numbered the older ones)
            raise ValueError("a stored spheroid without an id")
        return cls(
            id=spheroid.id,
            exterior=spheroid.exterior.tolist(),
            holes=[hole.tolist() for hole in spheroid.holes],
            metrics=MetricsType.of(spheroid.metrics) if spheroid.metrics is not None else None,
            touches_border=touches_border(spheroid, *image_size),
        )


@strawberry.type(name="Segmentation")
class SegmentationType:
    id: int
    image_id: int
    version: int
    author_id: strawberry.Private[int | None]
    origin: SaveOriginEnum = strawberry.field(  # type: ignore[valid-type]
        description="Where this version came from: a job's result, a person's edit, a revert or an import."
    )
    model_name: str
    model_version: str
    parameters: JSON
    spheroid_count: int
    created_at: dt.datetime

    @classmethod
    def of(cls, row: SegmentationVersion) -> SegmentationType:
        return cls(
            id=row.id,
            image_id=row.image_id,
            version=row.version,
            author_id=row.author_id,
            origin=SaveOrigin(row.origin),
            model_name=row.model_name,
            model_version=row.model_version,
            parameters=row.parameters,  # type: ignore[arg-type]
            spheroid_count=row.spheroid_count,
            created_at=row.created_at,
        )

    @strawberry.field(description="Name of the person who saved this version (empty for a model run).")
    async def author(self, info: Info) -> str:
        if self.author_id is None:
            return ""
        user = await info.context.loaders.user.load(self.author_id)
        return user.username if user is not None else ""

    @strawberry.field(
        directives=[Cost(weight=5), ListSize(assumed_size=50)],
        extensions=[CountedList()],
        description="The spheroids as JSON: rings as lists of (x, y) and metrics by name. For small uses "
        "and scripts; to show or edit all outlines of an image, fetch `geometryUrl` instead (about a tenth "
        "of the bytes, and decoded into arrays many times faster).",
    )
    async def spheroids(self, info: Info) -> list[SpheroidType]:
        spheroids = await info.context.loaders.spheroids.load(self.id)
        image = await info.context.loaders.image.load(self.image_id)  # loaded already: the parent's
        if image is None:
            return []  # deleted meanwhile, with its segmentations
        return [SpheroidType.of(spheroid, (image.width, image.height)) for spheroid in spheroids]

    @strawberry.field(
        directives=[Cost(weight=1)],
        description="A signed, immutable, cacheable URL (no token needed) of every outline of this version "
        "in a compact binary form: spheroid ids, rings (the exterior first, then the holes), coordinates "
        "and every metric as a column, compressed. Read it with `cluster.decode_outlines`; the format is "
        "in docs/geometry-format.md. With a bearer token, the same bytes are at "
        "GET /api/images/{imageId}/segmentations/{version}/geometry.",
    )
    async def geometry_url(self, info: Info) -> str:
        image = await info.context.loaders.image.load(self.image_id)  # loaded already: the parent's
        if image is None:
            raise PermissionDeniedError("not found, or you may not see it (geometryUrl)")  # deleted meanwhile
        ref = ImageRef(image.project_id, image.id, image.content_hash)
        return absolute_url(info.context, info.context.services.delivery.outlines_url(ref, self.version))


@strawberry.input
class SpheroidInput:
    exterior: Points
    holes: list[Points] = strawberry.field(default_factory=list)


@strawberry.type
class SegmentationSaveSuccess:
    segmentation: SegmentationType


@strawberry.type(description="Someone saved meanwhile: reload `currentVersion`, merge and save again.")
class VersionConflict:
    message: str
    base_version: int
    current_version: int


@strawberry.type(description="Rings that cannot be stored; `problems` names each spheroid and ring.")
class InvalidSpheroids:
    message: str
    problems: list[str]


SegmentationSaveResult = Annotated[
    SegmentationSaveSuccess | VersionConflict | InvalidSpheroids | InputError | RateLimited,
    strawberry.union("SegmentationSaveResult"),
]


def version_conflict(error: VersionConflictError) -> VersionConflict:
    return VersionConflict(
        message=str(error), base_version=error.base_version, current_version=error.current_version
    )


def invalid_spheroids(error: InvalidSpheroidsError) -> InvalidSpheroids:
    message = f"{len(error.problems)} problem(s); nothing saved"
    return InvalidSpheroids(message=message, problems=error.problems)


async def save_result(saving: Awaitable[SegmentationVersion]) -> SegmentationSaveResult:
    """A save of :mod:`server.services.segmentations` as the mutation's result union."""
    try:
        row = await saving
    except RateLimitedError as error:
        return rate_limited_result(error)
    except VersionConflictError as error:
        return version_conflict(error)
    except InvalidSpheroidsError as error:
        return invalid_spheroids(error)
    except InvalidInputError as error:
        return input_error(error)
    return SegmentationSaveSuccess(segmentation=SegmentationType.of(row))


@strawberry.type
class SegmentationMutation:
    @strawberry.mutation(
        permission_classes=[CanEditProject],
        directives=[Cost(weight=20)],
        description="Save spheroids as a new version; `baseVersion` is the version the edit started from "
        "(0 for an image without one). A stale base returns VersionConflict and saves nothing.",
    )
    async def save_segmentation(
        self,
        info: Info,
        image_id: int,
        base_version: int,
        spheroids: list[SpheroidInput],
        model_name: str = "",
        model_version: str = "",
        parameters: JSON | None = None,
    ) -> SegmentationSaveResult:
        drafts = [SpheroidDraft(s.exterior, s.holes) for s in spheroids]
        params: dict[str, Any] = dict(parameters) if isinstance(parameters, dict) else {}
        provenance = Provenance(model_name, model_version, params)
        context = info.context
        return await save_result(
            service.save_spheroids(
                context.services,
                context.require_actor(),
                image_id,
                base_version,
                drafts,
                SaveOrigin.EDIT,
                provenance,
                context.loaders,
            )
        )

    @strawberry.mutation(
        permission_classes=[CanEditProject],
        directives=[Cost(weight=20)],
        description="Make an old version current again, as a new version (history is never rewritten).",
    )
    async def revert_segmentation(
        self, info: Info, image_id: int, version: int, base_version: int
    ) -> SegmentationSaveResult:
        context = info.context
        return await save_result(
            service.revert_segmentation(
                context.services, context.require_actor(), image_id, version, base_version, context.loaders
            )
        )
