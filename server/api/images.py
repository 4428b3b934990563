"""Images: the ``image`` query, a project's image connection, ``deleteImages`` and ``setReview``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from server.api import image_urls
from server.api.context import Info
from server.api.cost import Cost, ListSize
from server.api.extensions import CountedList
from server.api.permissions import CanEditProject, CanViewProject
from server.api.results import InputError, RateLimited, input_error, rate_limited_result
from server.api.segmentations import SegmentationType
from server.db import images
from server.db.models import Image
from server.delivery import RenditionFormat
from server.domain.errors import ReviewRuleError
from server.domain.listing import ImageFilter, ImageOrder, encode_cursor
from server.domain.review import ReviewStatus, SegmentationStatus
from server.exceptions import ClientError, RateLimitedError
from server.services import images as service

__all__ = [
    "ImageConnection",
    "ImageFilterInput",
    "ImageMutation",
    "ImageOrderEnum",
    "ImageQuery",
    "ImageType",
]


HISTORY_PAGE_MAX = 100
"""The most versions one page of ``segmentationHistory`` holds."""

SegmentationStatusEnum = strawberry.enum(SegmentationStatus, name="SegmentationStatus")
ReviewStatusEnum = strawberry.enum(ReviewStatus, name="ReviewStatus")
ImageOrderEnum = strawberry.enum(ImageOrder, name="ImageOrder")


@strawberry.type(name="Image")
class ImageType:
    id: int
    project_id: int
    name: str
    content_hash: str
    format: str
    width: int
    height: int
    bit_depth: int
    pixel_size_um: float | None
    byte_size: int
    segmentation_status: SegmentationStatus
    review_status: ReviewStatus
    review_comment: str | None
    reviewed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: Image) -> ImageType:
        return cls(
            id=row.id,
            project_id=row.project_id,
            name=row.name,
            content_hash=row.content_hash,
            format=row.format,
            width=row.width,
            height=row.height,
            bit_depth=row.bit_depth,
            pixel_size_um=row.pixel_size_um,
            byte_size=row.byte_size,
            segmentation_status=SegmentationStatus(row.segmentation_status),
            review_status=ReviewStatus(row.review_status),
            review_comment=row.review_comment,
            reviewed_at=row.reviewed_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(
        permission_classes=[CanViewProject],
        description="The current segmentation, if any; with `version`, that version of it (null when the "
        "image has none of that number).",
    )
    async def segmentation(
        self,
        info: Info,
        version: Annotated[
            int | None,
            strawberry.argument(
                description="A version from `segmentationHistory`; omit for the current one."
            ),
        ] = None,
    ) -> SegmentationType | None:
        loaders = info.context.loaders
        row = await (
            loaders.segmentation.load(self.id)
            if version is None
            else loaders.version.load((self.id, version))
        )
        return SegmentationType.of(row) if row is not None else None

    @strawberry.field(
        permission_classes=[CanViewProject],
        directives=[ListSize(slicing_arguments=["first"])],
        extensions=[CountedList()],
        description="Saved versions, newest first, each with its author, time and origin; a page of "
        "`first`. Versions are numbered 1, 2, … without gaps: pass the last version of a page as "
        "`before` for the next one. Fetch one version's spheroids with `segmentation(version:)`.",
    )
    async def segmentation_history(
        self,
        info: Info,
        first: Annotated[
            int, strawberry.argument(description=f"How many versions, 0 to {HISTORY_PAGE_MAX}.")
        ] = 20,
        before: Annotated[
            int | None,
            strawberry.argument(
                description="Only versions older than this one; omit to start at the newest."
            ),
        ] = None,
    ) -> list[SegmentationType]:
        if not 0 <= first <= HISTORY_PAGE_MAX:
            raise_input("first", f"must be between 0 and {HISTORY_PAGE_MAX}")
        rows = await info.context.loaders.history.load((self.id, first, before))
        return [SegmentationType.of(row) for row in rows]

    @strawberry.field(
        permission_classes=[CanViewProject],
        directives=[Cost(weight=1)],
        description="A signed, cacheable URL of an 8-bit contrast-stretched thumbnail that fits in "
        "`size` x `size` pixels (default: the server's thumbnail size, made right after upload). `size` "
        "(16 to 1024) is rounded up to the next of 64, 128, 256, 512 or 1024, so that a few renditions of "
        "each image serve every size; scale the image in the client for sizes in between.",
    )
    def thumbnail_url(self, info: Info, size: int | None = None) -> str:
        return image_urls.thumbnail_url(info, self, size)

    @strawberry.field(
        permission_classes=[CanViewProject],
        directives=[Cost(weight=1)],
        description="A signed, cacheable URL of a display preview `width` CSS pixels wide on a screen of "
        "device pixel ratio `dpr` (snapped to `previewWidths`; quality chosen by `dpr`).",
    )
    def preview_url(
        self,
        info: Info,
        width: int = 1024,
        format: image_urls.RenditionFormatEnum = RenditionFormat.WEBP,  # type: ignore[valid-type]
        dpr: float = 1.0,
    ) -> str:
        return image_urls.preview_url(info, self, width, format, dpr)

    @strawberry.field(
        permission_classes=[CanViewProject],
        directives=[Cost(weight=1)],
        description="A signed, cacheable URL of the original file as uploaded (Range requests work).",
    )
    def original_url(self, info: Info) -> str:
        return image_urls.original_url(info, self)

    @strawberry.field(description="Preview widths worth asking for (a srcset ladder up to the original).")
    def preview_widths(self) -> list[int]:
        return image_urls.preview_widths(self)


@strawberry.type
class ImageEdge:
    node: ImageType
    order: strawberry.Private[ImageOrder]
    sort_value: strawberry.Private[str]

    @strawberry.field(description="Pass as `after` to continue the listing from this image.")
    def cursor(self) -> str:
        return encode_cursor(self.order, self.sort_value, self.node.id)  # made only when asked for


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class ImageConnection:
    edges: list[ImageEdge]
    page_info: PageInfo
    total_count: int


@strawberry.input
class ImageFilterInput:
    status: list[SegmentationStatus] | None = None
    review: list[ReviewStatus] | None = None
    name_contains: str | None = None

    def to_domain(self) -> ImageFilter:
        return ImageFilter(tuple(self.status or ()), tuple(self.review or ()), self.name_contains or None)


async def image_connection(
    info: Info,
    project_id: int,
    first: int,
    after: str | None,
    where: ImageFilterInput | None,
    order: ImageOrder,
) -> ImageConnection:
    settings = info.context.services.settings
    if not 0 <= first <= settings.max_page_size:
        raise_input("first", f"must be between 0 and {settings.max_page_size}")
    async with info.context.services.db() as db:
        page = await images.images_page(
            db, project_id, (where or ImageFilterInput()).to_domain(), order, first, after
        )
    info.context.loaders.prime_images(page.images)
    edges = [
        ImageEdge(node=ImageType.of(row), order=order, sort_value=images.sort_key(row, order))
        for row in page.images
    ]
    return ImageConnection(
        edges=edges,
        total_count=page.total,
        page_info=PageInfo(has_next_page=page.has_next, end_cursor=edges[-1].cursor() if edges else None),
    )


def raise_input(field: str, message: str) -> None:
    raise ClientError(f"{field}: {message}", field=field)


@strawberry.type
class ImagesDeleteSuccess:
    deleted_ids: list[int]
    cdn_purge_errors: list[str] = strawberry.field(
        default_factory=list,
        description="What went wrong purging the deleted images from the CDN (empty when all went well).",
    )


@strawberry.type
class ReviewSetSuccess:
    images: list[ImageType]


ImagesDeleteResult = Annotated[ImagesDeleteSuccess | RateLimited, strawberry.union("ImagesDeleteResult")]
ReviewSetResult = Annotated[ReviewSetSuccess | InputError, strawberry.union("ReviewSetResult")]


@strawberry.type
class ImageQuery:
    @strawberry.field(permission_classes=[CanViewProject])
    async def image(self, info: Info, id: int) -> ImageType:
        row = await info.context.loaders.image.load(id)
        assert row is not None  # the permission refused a missing image
        return ImageType.of(row)


@strawberry.type
class ImageMutation:
    @strawberry.mutation(permission_classes=[CanEditProject], directives=[Cost(weight=10)])
    async def delete_images(self, info: Info, image_ids: list[int]) -> ImagesDeleteResult:
        context = info.context
        try:
            done = await service.delete_images(
                context.services, context.require_actor(), image_ids, context.loaders
            )
        except RateLimitedError as error:
            return rate_limited_result(error)
        return ImagesDeleteSuccess(deleted_ids=done.deleted_ids, cdn_purge_errors=done.cdn_purge_errors)

    @strawberry.mutation(
        permission_classes=[CanEditProject],
        description="Set the review state of images: ACCEPTED needs a segmentation, NEEDS_FIX and REJECTED a "
        "comment. All images change or none.",
    )
    async def set_review(
        self, info: Info, image_ids: list[int], status: ReviewStatus, comment: str | None = None
    ) -> ReviewSetResult:
        context = info.context
        try:
            updated = await service.set_review(
                context.services, context.require_actor(), image_ids, status, comment, context.loaders
            )
        except ReviewRuleError as error:
            return InputError(field="status", message=str(error))
        return ReviewSetSuccess(images=[ImageType.of(row) for row in updated])


__all__ += ["image_connection", "input_error"]
