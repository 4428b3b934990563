"""How a client filters, orders and pages through a project's images, and the opaque cursors of a page.

A page is asked for with :class:`PageRequest`: ``first`` images after a cursor, or ``last`` images before
one (the other way through the same order); ``ids`` and ``updated_since`` narrow what comes back to the
images an event named, or those changed since a time (a client catching up after a reconnect). An image's
*position* is its place (from 1) in the list the filter and order alone give, whatever else narrows the
page, so that "image 37 of 120" and next/previous mean the same in every view of that list.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import enum
import json
from dataclasses import dataclass

from server.domain.errors import InvalidInputError
from server.domain.review import ReviewStatus, SegmentationStatus

__all__ = [
    "MAX_IDS",
    "ImageFilter",
    "ImageOrder",
    "PageRequest",
    "checked_page",
    "decode_cursor",
    "encode_cursor",
    "sort_key",
]

MAX_IDS = 500
"""The most image ids one page may name (``ids``)."""


class ImageOrder(enum.StrEnum):
    """By name, by upload time, or by the time of the last change (an image moves in that order when it
    changes: page through it to catch up, through the others to browse)."""

    NAME_ASC = "name_asc"
    NAME_DESC = "name_desc"
    CREATED_ASC = "created_asc"
    CREATED_DESC = "created_desc"
    UPDATED_ASC = "updated_asc"
    UPDATED_DESC = "updated_desc"

    @property
    def descending(self) -> bool:
        return self.endswith("_desc")

    @property
    def key(self) -> str:
        """The image column the order sorts by (then by id)."""
        return {"name": "name", "created": "created_at", "updated": "updated_at"}[self.split("_")[0]]


@dataclass(frozen=True)
class ImageFilter:
    status: tuple[SegmentationStatus, ...] = ()
    review: tuple[ReviewStatus, ...] = ()
    name_contains: str | None = None


@dataclass(frozen=True)
class PageRequest:
    """Which page of the filtered, ordered images: ``first`` after ``after``, or, when ``last`` or
    ``before`` is given, the ``last`` (else ``first``) images before ``before`` (else before the end);
    ``ids`` and ``updated_since`` (inclusive) narrow what comes back, not positions."""

    order: ImageOrder = ImageOrder.NAME_ASC
    first: int = 50
    after: str | None = None
    last: int | None = None
    before: str | None = None
    ids: tuple[int, ...] | None = None
    updated_since: dt.datetime | None = None

    @property
    def backwards(self) -> bool:
        return self.last is not None or self.before is not None

    @property
    def size(self) -> int:
        return self.last if self.last is not None else self.first

    @property
    def cursor(self) -> str | None:
        return self.before if self.backwards else self.after


def checked_page(page: PageRequest, max_page_size: int) -> PageRequest:
    """``page`` if it can be answered, else :class:`InvalidInputError` naming the argument at fault."""
    if page.backwards and page.after is not None:
        raise InvalidInputError("after", "`last` and `before` page backwards: give `before`, not `after`")
    name = "last" if page.last is not None else "first"
    if not 0 <= page.size <= max_page_size:
        raise InvalidInputError(name, f"must be between 0 and {max_page_size}")
    if page.ids is not None and len(page.ids) > MAX_IDS:
        raise InvalidInputError("ids", f"{len(page.ids)} ids; at most {MAX_IDS} in one request")
    if page.updated_since is not None:  # stored times are UTC (SQLite compares them as text)
        since = page.updated_since
        since = since.replace(tzinfo=dt.UTC) if since.tzinfo is None else since.astimezone(dt.UTC)
        page = dataclasses.replace(page, updated_since=since)
    return page


def sort_key(image: object, order: ImageOrder) -> str:
    """What a cursor keeps of an image (its name or time) to find its place in ``order`` again."""
    value = getattr(image, order.key)
    if isinstance(value, dt.datetime):  # stored times are UTC; SQLite gives them back without a zone
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    return str(value)


def encode_cursor(order: ImageOrder, key: str, image_id: int) -> str:
    raw = json.dumps([order.value, key, image_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, order: ImageOrder, argument: str = "after") -> tuple[str, int]:
    """The sort key and image id in ``cursor``; refused (naming ``argument``) when forged or made for
    another order."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, key, image_id = json.loads(raw)
    except (ValueError, binascii.Error, TypeError) as error:
        raise InvalidInputError(argument, "not a cursor this server made") from error
    if made_for != order.value or not isinstance(key, str) or not isinstance(image_id, int):
        raise InvalidInputError(argument, "the cursor belongs to another ordering; start from the first page")
    return key, image_id
