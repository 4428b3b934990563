"""How a client filters and orders a project's images, and the opaque cursors of a page."""

from __future__ import annotations

import base64
import binascii
import enum
import json
from dataclasses import dataclass

from server.domain.errors import InvalidInputError
from server.domain.review import ReviewStatus, SegmentationStatus

__all__ = ["ImageFilter", "ImageOrder", "decode_cursor", "encode_cursor"]


class ImageOrder(enum.StrEnum):
    NAME_ASC = "name_asc"
    NAME_DESC = "name_desc"
    CREATED_ASC = "created_asc"
    CREATED_DESC = "created_desc"

    @property
    def descending(self) -> bool:
        return self.endswith("_desc")

    @property
    def key(self) -> str:
        return "name" if self.startswith("name") else "created_at"


@dataclass(frozen=True)
class ImageFilter:
    status: tuple[SegmentationStatus, ...] = ()
    review: tuple[ReviewStatus, ...] = ()
    name_contains: str | None = None


def encode_cursor(order: ImageOrder, key: str, image_id: int) -> str:
    raw = json.dumps([order.value, key, image_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, order: ImageOrder) -> tuple[str, int]:
    """The sort key and image id in ``cursor``; refused when forged or made for another order."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, key, image_id = json.loads(raw)
    except (ValueError, binascii.Error, TypeError) as error:
        raise InvalidInputError("after", "not a cursor this server made") from error
    if made_for != order.value or not isinstance(key, str) or not isinstance(image_id, int):
        raise InvalidInputError("after", "the cursor belongs to another ordering; start from the first page")
    return key, image_id
