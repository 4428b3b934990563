"""Segmentations: spheroids with rings and metrics, versions, ``saveSegmentation``, ``revertSegmentation``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from cluster import CONFIDENCE_NOTE, Spheroid, SpheroidMetrics, touches_border
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
SaveOriginEnum = strawberry.enum(
    SaveOrigin,
    name="SaveOrigin",
    description="Where a segmentation version came from: JOB (a segmentation job's result), EDIT (spheroids "
    "a person drew or corrected), REVERT (an older version made current again), IMPORT (spheroids read "
    "from a file).",
)


@strawberry.type(
    name="SpheroidMetrics", description="Morphology of one spheroid; units as in cluster.metrics."
)
class MetricsType:
    area_px: float = strawberry.field(description="Net area in px², holes excluded.")
    area_um2: float | None = strawberry.field(
        description="Net area in µm² (null: the image has no pixel size)."
    )
    perimeter_px: float = strawberry.field(description="Length of the exterior ring in pixels.")
    perimeter_um: float | None = strawberry.field(
        description="Length of the exterior ring in µm (null: no pixel size)."
    )
    equivalent_diameter_px: float = strawberry.field(
        description="Diameter in pixels of the disc with the net area, sqrt(4 area / pi)."
    )
    equivalent_diameter_um: float | None = strawberry.field(
        description="The same in µm (null: no pixel size)."
    )
    circularity: float = strawberry.field(
        description="4 pi A / P² of the outline (holes ignored): 1 for a disc, smaller otherwise (ImageJ "
        "Circ.)."
    )
    sphericity: float = strawberry.field(
        description="sqrt(circularity), the AnaSP / SpheroidJ definition: 1 for a disc."
    )
    convexity: float = strawberry.field(
        description="Perimeter of the convex hull over the perimeter, at most 1."
    )
    solidity: float = strawberry.field(description="Net area over the convex hull's area, at most 1.")
    feret_max_px: float = strawberry.field(
        description="Largest distance between two points of the outline, in pixels."
    )
    feret_min_px: float = strawberry.field(description="Smallest caliper width of the outline, in pixels.")
    aspect_ratio: float = strawberry.field(
        description="Major over minor axis of the ellipse with the same second moments, at least 1 "
        "(ImageJ AR)."
    )
    centroid_x: float = strawberry.field(description="Centre of mass, x in image pixels (holes excluded).")
    centroid_y: float = strawberry.field(
        description="Centre of mass, y in image pixels, downwards from the top edge."
    )
    hole_count: int = strawberry.field(description="Number of hole rings.")
    confidence: float | None = strawberry.field(
        description="How sure the segmenter was of this outline, 0 to 1 (sort by it to review the least "
        "certain first). " + CONFIDENCE_NOTE
    )

    @classmethod
    def of(cls, metrics: SpheroidMetrics) -> MetricsType:
        """The metrics this type shows (a subset of :class:`SpheroidMetrics`, by name)."""
        return cls(**{name: getattr(metrics, name) for name in cls.__annotations__})


@strawberry.type(
    name="Spheroid",
    description="One spheroid's outline in a segmentation version: an exterior ring, its holes and its "
    "metrics. Coordinates are image pixels (x right, y down from the top-left corner).",
)
class SpheroidType:
    id: int = strawberry.field(
        description="Names the spheroid within its image: the same across versions while it is kept or "
        "edited, never given to another spheroid of the image (a job's result gets new ids)."
    )
    exterior: Points = strawberry.field(description="Open ring of (x, y) image pixels, top-left origin.")
    holes: list[Points] = strawberry.field(
        description="Rings of the holes inside it (necrotic cores, lumens), as `exterior`; empty: none."
    )
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


@strawberry.type(
    name="Segmentation",
    description="One saved version of an image's spheroid outlines. Versions are never changed: every save, "
    "edit, revert or job result makes a new one.",
)
class SegmentationType:
    id: int = strawberry.field(description="The version's id, unique on the server.")
    image_id: int = strawberry.field(description="The image it outlines.")
    version: int = strawberry.field(
        description="Its number within the image: 1, 2, … without gaps. Pass it as `baseVersion` when you "
        "save an edit of it."
    )
    author_id: strawberry.Private[int | None]
    origin: SaveOriginEnum = strawberry.field(  # type: ignore[valid-type]
        description="Where this version came from: a job's result, a person's edit, a revert or an import."
    )
    model_name: str = strawberry.field(
        description="The model or method that made the outlines it started from (empty: drawn by hand)."
    )
    model_version: str = strawberry.field(description="That model's version (empty: none).")
    parameters: JSON = strawberry.field(
        description="The options the model ran with, by name (revertedFrom names the version a revert "
        "restored)."
    )
    spheroid_count: int = strawberry.field(description="Spheroids in this version.")
    created_at: dt.datetime = strawberry.field(description="When it was saved.")

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


@strawberry.input(description="A spheroid's outline to store; the server measures it.")
class SpheroidInput:
    exterior: Points = strawberry.field(
        description="Ring of (x, y) image pixels, top-left origin, inside [0, width] x [0, height]; at least "
        "3 distinct points; the first point may be repeated at the end or not."
    )
    holes: list[Points] = strawberry.field(
        default_factory=list, description="Rings of holes inside the exterior, as it (default: none)."
    )


@strawberry.type(description="Saved: a new version is now current.")
class SegmentationSaveSuccess:
    segmentation: SegmentationType = strawberry.field(
        description="The new version; use its `version` as the base of the next save."
    )


@strawberry.type(description="Someone saved meanwhile: reload `currentVersion`, merge and save again.")
class VersionConflict:
    message: str = strawberry.field(description="What happened and what to do, for the user.")
    base_version: int = strawberry.field(description="The version your edit started from.")
    current_version: int = strawberry.field(description="The version stored now, saved by someone else.")


@strawberry.type(description="Rings that cannot be stored; `problems` names each spheroid and ring.")
class InvalidSpheroids:
    message: str = strawberry.field(description="How many problems were found; nothing was saved.")
    problems: list[str] = strawberry.field(
        description="Each problem, naming the spheroid (its index in the list sent, and its id if any) and "
        "the ring: too few points, a point outside the image, rings that cross, no area, …"
    )


SegmentationSaveResult = Annotated[
    SegmentationSaveSuccess | VersionConflict | InvalidSpheroids | InputError | RateLimited,
    strawberry.union(
        "SegmentationSaveResult",
        description="The new version, or why nothing was saved: someone saved meanwhile, rings that cannot "
        "be stored, a wrong argument, or too many saves lately.",
    ),
]


def version_conflict(error: VersionConflictError) -> VersionConflict:
    return VersionConflict(
        message=str(error), base_version=error.base_version, current_version=error.current_version
    )


def invalid_spheroids(error: InvalidSpheroidsError) -> InvalidSpheroids:
    message = f"{len(error.problems)} problem(s); nothing saved"
    return InvalidSpheroids(message=message, problems=error.problems)


SAVE_REFUSALS = (RateLimitedError, VersionConflictError, InvalidSpheroidsError, InvalidInputError)
"""What any save of a segmentation version (whole, or an edit) may be refused with, answered as a result."""


def save_refusal(
    error: RateLimitedError | VersionConflictError | InvalidSpheroidsError | InvalidInputError,
) -> RateLimited | VersionConflict | InvalidSpheroids | InputError:
    """One of :data:`SAVE_REFUSALS` as the result type a client reads."""
    if isinstance(error, RateLimitedError):
        return rate_limited_result(error)
    if isinstance(error, VersionConflictError):
        return version_conflict(error)
    if isinstance(error, InvalidSpheroidsError):
        return invalid_spheroids(error)
    return input_error(error)


async def save_result(saving: Awaitable[SegmentationVersion]) -> SegmentationSaveResult:
    """A save of :mod:`server.services.segmentations` as the mutation's result union."""
    try:
        row = await saving
    except SAVE_REFUSALS as error:
        return save_refusal(error)
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
        image_id: Annotated[int, strawberry.argument(description="The image.")],
        base_version: Annotated[
            int,
            strawberry.argument(
                description="The version your edit started from (0 when the image had none)."
            ),
        ],
        spheroids: Annotated[
            list[SpheroidInput],
            strawberry.argument(description="Every spheroid of the new version (an empty list clears it)."),
        ],
        model_name: Annotated[
            str,
            strawberry.argument(description="The model whose outlines were edited (empty: drawn by hand)."),
        ] = "",
        model_version: Annotated[str, strawberry.argument(description="That model's version.")] = "",
        parameters: Annotated[
            JSON | None, strawberry.argument(description="The options that model ran with, by name.")
        ] = None,
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
        self,
        info: Info,
        image_id: Annotated[int, strawberry.argument(description="The image.")],
        version: Annotated[
            int, strawberry.argument(description="The old version to restore (see segmentationHistory).")
        ],
        base_version: Annotated[
            int,
            strawberry.argument(
                description="The version you saw as current; another one current returns VersionConflict."
            ),
        ],
    ) -> SegmentationSaveResult:
        context = info.context
        return await save_result(
            service.revert_segmentation(
                context.services, context.require_actor(), image_id, version, base_version, context.loaders
            )
        )
