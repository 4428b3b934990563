"""Images: ``image``, ``imagesByHash``, ``deleteImages``, ``setReview`` (with the review history) and
``updateImage`` (a project's pages of images: :mod:`server.api.image_pages`)."""

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
from server.db.models import Image, Review
from server.delivery import RenditionFormat
from server.domain.errors import InvalidInputError, ReviewRuleError, StaleReviewError
from server.domain.listing import ImageFilter, ImageOrder
from server.domain.review import ReviewStatus, SegmentationStatus
from server.exceptions import ClientError, RateLimitedError
from server.services import images as service

__all__ = [
    "ImageFilterInput",
    "ImageMutation",
    "ImageOrderEnum",
    "ImageQuery",
    "ImageType",
]


HISTORY_PAGE_MAX = 100
"""The most versions one page of ``segmentationHistory`` holds."""

SegmentationStatusEnum = strawberry.enum(
    SegmentationStatus,
    name="SegmentationStatus",
    description="Whether an image has outlines: NONE (never segmented or saved), QUEUED and RUNNING (in a "
    "segmentation job), DONE (a segmentation is stored), FAILED (the last job could not segment it; see "
    "the job's `failures`).",
)
ReviewStatusEnum = strawberry.enum(
    ReviewStatus,
    name="ReviewStatus",
    description="A person's verdict on an image's outlines: UNREVIEWED (every image starts so, and an "
    "accepted one returns to it when a new version is saved), ACCEPTED, NEEDS_FIX or REJECTED (both with "
    "a comment). Set with `setReview`.",
)
ImageOrderEnum = strawberry.enum(
    ImageOrder,
    name="ImageOrder",
    description="Order of a project's image list: by name, by upload time (CREATED) or by the time of the "
    "last change (UPDATED; an image moves when it changes, so page through it to catch up), ascending "
    "(ASC) or descending (DESC).",
)


@strawberry.type(
    name="Image",
    description="An uploaded microscope image of a project, with its segmentation and review state. "
    "Visible to every member of the project.",
)
class ImageType:
    id: int = strawberry.field(description="The image's id, unique on the server.")
    project_id: int = strawberry.field(description="The project it belongs to.")
    name: str = strawberry.field(description="Its file name (as uploaded, or as renamed by `updateImage`).")
    content_hash: str = strawberry.field(
        description="SHA-256 of the uploaded file's bytes, 64 hex digits (as `imagesByHash` takes it)."
    )
    format: str = strawberry.field(description="The uploaded file's format (tiff, ome-tiff, png, jpeg, …).")
    width: int = strawberry.field(description="Width in pixels.")
    height: int = strawberry.field(description="Height in pixels.")
    bit_depth: int = strawberry.field(description="Bits per grayscale sample of the original (8, 16, …).")
    pixel_size_um: float | None = strawberry.field(
        description="Edge of one pixel in µm; null when unknown (then every µm metric is null). Set it with "
        "`updateImage`."
    )
    byte_size: int = strawberry.field(description="Size of the original file in bytes.")
    segmentation_status: SegmentationStatus = strawberry.field(
        description="Whether outlines exist, or a job is making them."
    )
    review_status: ReviewStatus = strawberry.field(description="The current review verdict.")
    review_comment: str | None = strawberry.field(
        description="The comment of the current verdict (null: none given)."
    )
    reviewed_at: dt.datetime | None = strawberry.field(
        description="When the current verdict was given (null: never reviewed)."
    )
    reviewer_id: strawberry.Private[int | None]
    created_at: dt.datetime = strawberry.field(description="When it was uploaded.")
    updated_at: dt.datetime = strawberry.field(
        description="When the image last changed: its fields, its segmentation (a save, a job's status), "
        "or its review. Pass the newest you have seen as `updatedSince` to catch up."
    )

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
            reviewer_id=row.reviewed_by,
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
            raise ClientError(f"first: must be between 0 and {HISTORY_PAGE_MAX}", field="first")
        rows = await info.context.loaders.history.load((self.id, first, before))
        return [SegmentationType.of(row) for row in rows]

    @strawberry.field(description="Name of the person who gave the current review verdict (null: nobody).")
    async def reviewed_by(self, info: Info) -> str | None:
        if self.reviewer_id is None:
            return None
        user = await info.context.loaders.user.load(self.reviewer_id)
        return user.username if user is not None else None

    @strawberry.field(
        permission_classes=[CanViewProject],
        directives=[ListSize(slicing_arguments=["first"])],
        description="Review verdicts given on this image, newest first (`first` of them).",
    )
    async def review_history(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="How many, from the newest.")] = 20,
    ) -> list[ReviewType]:
        rows = await info.context.loaders.reviews.load(self.id)
        return [ReviewType.of(row) for row in rows[: max(first, 0)]]

    @strawberry.field(
        permission_classes=[CanViewProject],
        directives=[Cost(weight=1)],
        description="A signed, cacheable URL of an 8-bit contrast-stretched thumbnail that fits in "
        "`size` x `size` pixels (default: the server's thumbnail size, made right after upload). `size` "
        "(16 to 1024) is rounded up to the next of 64, 128, 256, 512 or 1024, so that a few renditions of "
        "each image serve every size; scale the image in the client for sizes in between.",
    )
    def thumbnail_url(
        self,
        info: Info,
        size: Annotated[
            int | None,
            strawberry.argument(description="Largest edge in pixels, 16 to 1024; omit for the default size."),
        ] = None,
    ) -> str:
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
        width: Annotated[
            int,
            strawberry.argument(description="Display width in CSS pixels; snapped to `previewWidths`."),
        ] = 1024,
        format: Annotated[
            image_urls.RenditionFormatEnum,  # type: ignore[valid-type]
            strawberry.argument(description="Image format of the preview (WEBP unless the client lacks it)."),
        ] = RenditionFormat.WEBP,
        dpr: Annotated[
            float,
            strawberry.argument(description="The screen's device pixel ratio (1 normal, 2 for HiDPI)."),
        ] = 1.0,
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


@strawberry.type(name="Review", description="One review verdict on an image, as it was given.")
class ReviewType:
    status: ReviewStatus = strawberry.field(description="The verdict.")
    comment: str | None = strawberry.field(description="Why, in the reviewer's words (null: none given).")
    version: int = strawberry.field(description="The segmentation version reviewed (0: there was none).")
    created_at: dt.datetime = strawberry.field(description="When the verdict was given.")
    reviewer_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, row: Review) -> ReviewType:
        return cls(
            status=ReviewStatus(row.status),
            comment=row.comment,
            version=row.version,
            created_at=row.created_at,
            reviewer_id=row.reviewer_id,
        )

    @strawberry.field(description="Name of the reviewer (empty when their account was deleted).")
    async def reviewer(self, info: Info) -> str:
        if self.reviewer_id is None:
            return ""
        user = await info.context.loaders.user.load(self.reviewer_id)
        return user.username if user is not None else ""


@strawberry.input(
    description="Which images of a project: those matching every condition given (omitted: no condition)."
)
class ImageFilterInput:
    status: list[SegmentationStatus] | None = strawberry.field(
        default=None, description="Only images with one of these segmentation states."
    )
    review: list[ReviewStatus] | None = strawberry.field(
        default=None, description="Only images with one of these review verdicts."
    )
    name_contains: str | None = strawberry.field(
        default=None, description="Only images whose name contains this text (case-insensitive)."
    )

    def to_domain(self) -> ImageFilter:
        return ImageFilter(tuple(self.status or ()), tuple(self.review or ()), self.name_contains or None)


@strawberry.type(description="The images are gone, with their files, segmentations and reviews.")
class ImagesDeleteSuccess:
    deleted_ids: list[int] = strawberry.field(
        description="The images deleted (ids that named no image are left out): drop them from your lists."
    )
    cdn_purge_errors: list[str] = strawberry.field(
        default_factory=list,
        description="What went wrong purging the deleted images from the CDN (empty when all went well).",
    )


@strawberry.type(description="Every image got the verdict.")
class ReviewSetSuccess:
    images: list[ImageType] = strawberry.field(description="The images reviewed, with their new state.")


@strawberry.type(
    description="The segmentation changed after you looked at it: nothing was reviewed. Look at "
    "`currentVersion` of image `imageId` and review again."
)
class StaleReview:
    message: str = strawberry.field(description="What happened and what to do, for the reviewer.")
    image_id: int = strawberry.field(description="The image whose segmentation changed.")
    reviewed_version: int = strawberry.field(description="The version you said you reviewed.")
    current_version: int = strawberry.field(description="The image's current segmentation version.")


@strawberry.input(description="An image reviewed, and the segmentation version that was looked at.")
class ReviewedImageInput:
    image_id: int = strawberry.field(description="The image reviewed.")
    version: int = strawberry.field(
        description="The segmentation version you looked at (0 for an image without a segmentation)."
    )


@strawberry.type(description="The image as stored now.")
class ImageUpdateSuccess:
    image: ImageType = strawberry.field(description="The image, with its new name and pixel size.")


ImagesDeleteResult = Annotated[
    ImagesDeleteSuccess | RateLimited,
    strawberry.union(
        "ImagesDeleteResult", description="The images deleted, or none when too many deletions were asked."
    ),
]
ReviewSetResult = Annotated[
    ReviewSetSuccess | StaleReview | InputError,
    strawberry.union(
        "ReviewSetResult",
        description="The reviewed images, or why none changed: a version looked at is no longer current, "
        "or the verdict breaks a rule (a comment missing, nothing to accept).",
    ),
]
ImageUpdateResult = Annotated[
    ImageUpdateSuccess | InputError,
    strawberry.union("ImageUpdateResult", description="The image as changed, or which argument was wrong."),
]


@strawberry.type
class ImageQuery:
    @strawberry.field(permission_classes=[CanViewProject], description="One image.")
    async def image(
        self, info: Info, id: Annotated[int, strawberry.argument(description="The image's id.")]
    ) -> ImageType:
        row = await info.context.loaders.image.load(id)
        assert row is not None  # the permission refused a missing image
        return ImageType.of(row)

    @strawberry.field(
        permission_classes=[CanViewProject],
        directives=[ListSize(assumed_size=50)],
        extensions=[CountedList()],
        description="The project's images whose file has one of these SHA-256 digests (64 hex digits; at "
        "most the files one upload takes): hash files before uploading and send only those not here.",
    )
    async def images_by_hash(
        self,
        info: Info,
        project_id: Annotated[int, strawberry.argument(description="The project to look in.")],
        sha256s: Annotated[
            list[str], strawberry.argument(description="SHA-256 digests of the files' bytes, in hex.")
        ],
    ) -> list[ImageType]:
        context = info.context
        try:
            rows = await service.images_with_content(
                context.services, context.require_actor(), project_id, sha256s, context.loaders
            )
        except InvalidInputError as error:
            raise ClientError(f"{error.field}: {error.message}", field=error.field) from error
        context.loaders.prime_images(rows)
        return [ImageType.of(row) for row in rows]


@strawberry.type
class ImageMutation:
    @strawberry.mutation(
        permission_classes=[CanEditProject],
        directives=[Cost(weight=10)],
        description="Delete images with their files, segmentations and reviews (editors and owners of every "
        "project concerned; otherwise nothing is deleted). Cannot be undone; deletions are rate-limited.",
    )
    async def delete_images(
        self,
        info: Info,
        image_ids: Annotated[list[int], strawberry.argument(description="The images to delete.")],
    ) -> ImagesDeleteResult:
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
        description="Set the review state of images, each with the segmentation version you looked at: "
        "StaleReview when another version is current (someone saved after you looked). ACCEPTED needs a "
        "segmentation, NEEDS_FIX and REJECTED a comment. All images change or none; each verdict joins "
        "the image's `reviewHistory`.",
    )
    async def set_review(
        self,
        info: Info,
        images: Annotated[
            list[ReviewedImageInput],
            strawberry.argument(description="The images reviewed, each with the version looked at."),
        ],
        status: Annotated[ReviewStatus, strawberry.argument(description="The verdict, for every image.")],
        comment: Annotated[
            str | None, strawberry.argument(description="Why (needed for NEEDS_FIX and REJECTED).")
        ] = None,
    ) -> ReviewSetResult:
        context = info.context
        reviewed = {given.image_id: given.version for given in images}
        try:
            updated = await service.set_review(
                context.services, context.require_actor(), reviewed, status, comment, context.loaders
            )
        except StaleReviewError as error:
            return StaleReview(
                message=str(error),
                image_id=error.image_id,
                reviewed_version=error.reviewed_version,
                current_version=error.current_version,
            )
        except ReviewRuleError as error:
            return InputError(field="status", message=str(error))
        return ReviewSetSuccess(images=[ImageType.of(row) for row in updated])

    @strawberry.mutation(
        permission_classes=[CanEditProject],
        description="Rename an image and/or set its pixel size in µm (omitted: unchanged). Metrics in µm of "
        "every segmentation version follow the new pixel size at once; no version is rewritten.",
    )
    async def update_image(
        self,
        info: Info,
        id: Annotated[int, strawberry.argument(description="The image.")],
        pixel_size_um: Annotated[
            float | None, strawberry.argument(description="Edge of one pixel in µm, in (0, 1000].")
        ] = None,
        name: Annotated[
            str | None, strawberry.argument(description="Not empty, no / or \\, at most 255 characters.")
        ] = None,
    ) -> ImageUpdateResult:
        context = info.context
        try:
            row = await service.update_image(
                context.services, context.require_actor(), id, name, pixel_size_um, context.loaders
            )
        except InvalidInputError as error:
            return input_error(error)
        context.loaders.image.clear(id)
        context.loaders.image.prime(id, row)
        return ImageUpdateSuccess(image=ImageType.of(row))


__all__ += ["input_error"]
