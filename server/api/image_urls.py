"""The image URLs the API hands out: thumbnail, preview and original, from the configured URL builder.

Each is a signed, cacheable, absolute URL (see :mod:`server.delivery`, :mod:`server.api.absolute`); the
fields that return them carry ``CanViewProject``, so only a user allowed to see an image is ever given one.
Arguments are checked here so a client cannot ask the origin for a 100,000-pixel "thumbnail", and
thumbnail sizes are snapped to a short ladder so it cannot ask for a thousand different ones of each
image either.
"""

from __future__ import annotations

from typing import Protocol

import strawberry

from server.api.absolute import absolute_url
from server.api.context import Info
from server.delivery import ImageRef, RenditionFormat
from server.delivery.responsive import THUMBNAIL_SIZES, responsive_widths, snap_thumbnail
from server.exceptions import ClientError

__all__ = ["RenditionFormatEnum", "original_url", "preview_url", "preview_widths", "thumbnail_url"]

RenditionFormatEnum = strawberry.enum(
    RenditionFormat,
    name="RenditionFormat",
    description="Image format of a preview: WEBP (the default), AVIF, PNG (lossless) or JPEG.",
)

THUMBNAIL_RANGE = range(16, THUMBNAIL_SIZES[-1] + 1)
PREVIEW_WIDTHS = range(16, 8193)


class _ImageLike(Protocol):
    id: int
    project_id: int
    content_hash: str
    width: int


def _ref(image: _ImageLike) -> ImageRef:
    return ImageRef(image.project_id, image.id, image.content_hash)


def thumbnail_url(info: Info, image: _ImageLike, size: int | None) -> str:
    if size is not None and size not in THUMBNAIL_RANGE:
        raise ClientError(f"size: must be between 16 and {THUMBNAIL_RANGE[-1]} pixels", field="size")
    delivery = info.context.services.delivery
    snapped = None if size is None else snap_thumbnail(size)
    return absolute_url(info.context, delivery.rendition_url(_ref(image), delivery.thumbnail_spec(snapped)))


def preview_url(info: Info, image: _ImageLike, width: int, fmt: RenditionFormat, dpr: float) -> str:
    if width not in PREVIEW_WIDTHS:
        raise ClientError("width: must be between 16 and 8192 pixels", field="width")
    if not 0.5 <= dpr <= 4.0:
        raise ClientError("dpr: must be between 0.5 and 4", field="dpr")
    delivery = info.context.services.delivery
    spec = delivery.preview_spec(width, image.width, fmt, dpr)
    return absolute_url(info.context, delivery.rendition_url(_ref(image), spec))


def original_url(info: Info, image: _ImageLike) -> str:
    return absolute_url(info.context, info.context.services.delivery.original_url(_ref(image)))


def preview_widths(image: _ImageLike) -> list[int]:
    return responsive_widths(image.width)
