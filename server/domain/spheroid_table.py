"""How a client filters and orders a project's spheroid table, and the opaque cursors of its pages.

The table has a row per spheroid of each image's current segmentation (see ``server.db.spheroid_table``). It
is ordered by one metric (a name of :meth:`cluster.SpheroidMetrics.names`), or, without one, by image and as
the image's version lists them. Rows whose metric is unknown (a µm value without a pixel size) come last in
either direction; ties go by row, so a page boundary never splits or repeats a row.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from cluster import SpheroidMetrics
from server.domain.errors import InvalidInputError
from server.domain.review import ReviewStatus

__all__ = ["SpheroidCursor", "SpheroidFilter", "SpheroidOrder", "decode_cursor", "encode_cursor"]

MAX_IMAGE_IDS = 10_000
"""Images one filter may name (a filter longer than this is refused, naming the limit)."""


@dataclass(frozen=True)
class SpheroidOrder:
    """By ``metric`` (``None``: by image, then as its version lists them), ascending unless ``descending``."""

    metric: str | None = None
    descending: bool = False

    def __post_init__(self) -> None:
        if self.metric is not None and self.metric not in SpheroidMetrics.names():
            raise InvalidInputError("orderBy", f"{self.metric!r} is not a metric of cluster.SpheroidMetrics")

    @property
    def key(self) -> str:
        return self.metric or "image_id"


@dataclass(frozen=True)
class SpheroidFilter:
    """Spheroids of these images (``None``: all), whose image's review state is one of ``review`` (empty:
    any), touching the image border or not (``None``: either)."""

    image_ids: tuple[int, ...] | None = None
    review: tuple[ReviewStatus, ...] = ()
    touches_border: bool | None = None

    def __post_init__(self) -> None:
        if self.image_ids is not None and len(self.image_ids) > MAX_IMAGE_IDS:
            raise InvalidInputError("imageIds", f"at most {MAX_IMAGE_IDS} images; leave it out for all")


@dataclass(frozen=True)
class SpheroidCursor:
    """Where a page ended: the sort value of its last row (``None``: unknown) and that row's id."""

    value: float | None
    row_id: int


def encode_cursor(order: SpheroidOrder, value: float | None, row_id: int) -> str:
    raw = json.dumps([order.key, order.descending, value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, order: SpheroidOrder) -> SpheroidCursor:
    """The position in ``cursor``; :class:`InvalidInputError` (field ``after``) when forged or made for
    another order."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, descending, value, row_id = json.loads(raw)
    except (ValueError, binascii.Error, TypeError) as error:
        raise InvalidInputError("after", "not a cursor this server made") from error
    if key != order.key or descending != order.descending:
        raise InvalidInputError("after", "the cursor belongs to another ordering; start from the first page")
    if not isinstance(row_id, int) or not (value is None or isinstance(value, int | float)):
        raise InvalidInputError("after", "not a cursor this server made")
    return SpheroidCursor(None if value is None else float(value), row_id)
