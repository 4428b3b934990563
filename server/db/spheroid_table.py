"""The project-wide spheroid table: one row per spheroid of each image's current segmentation.

Spheroids are stored as JSON per version (:mod:`server.db.records`); sorting a project's spheroids by a
metric needs them as rows. :func:`index_version` keeps ``spheroid_rows`` in step with the current
versions: the one save function (:func:`server.db.segmentations.save_segmentation`) calls it in its
transaction, so the table never shows a version that was not saved, and deleting an image or a project
empties its rows (``ON DELETE CASCADE``). Migration 0010 filled it from the versions current then.

:func:`spheroid_page` answers a page in two statements, whatever the page size or the project's size:
the rows (with their image's name) and the count matching the filter.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cluster import Spheroid, SpheroidMetrics, as_ring, touches_border
from server.db.models import Image, spheroid_rows
from server.domain.spheroid_table import SpheroidFilter, SpheroidOrder, decode_cursor

__all__ = ["SpheroidPage", "SpheroidRow", "index_changes", "index_version", "rescale_rows", "spheroid_page"]

_METRICS = SpheroidMetrics.names()


@dataclass(frozen=True)
class SpheroidRow:
    """A spheroid of the table: where it is (image, version, its id there) and its metrics by name."""

    row_id: int
    image_id: int
    image_name: str
    version: int
    spheroid_id: int
    touches_border: bool
    metrics: Mapping[str, float | int | None]

    def sort_value(self, order: SpheroidOrder) -> float | None:
        if order.metric is None:
            return float(self.image_id)
        value = self.metrics.get(order.metric)
        return None if value is None else float(value)


@dataclass(frozen=True)
class SpheroidPage:
    rows: list[SpheroidRow]
    has_next: bool
    total: int


async def index_version(db: AsyncSession, image: Image, records: Sequence[Mapping[str, Any]]) -> None:
    """Make ``records`` (the stored form of ``image``'s new current version) its rows of the table."""
    await db.execute(delete(spheroid_rows).where(spheroid_rows.c.image_id == image.id))
    if records:
        await db.execute(insert(spheroid_rows), [_row(image, record) for record in records])


async def index_changes(
    db: AsyncSession,
    image: Image,
    replaced: Mapping[int, Mapping[str, Any]],
    deleted: Collection[int],
    added: Sequence[Mapping[str, Any]],
) -> None:
    """The rows of an edit's new version: the changed spheroids' rows rewritten in place (by spheroid id),
    the deleted ones' removed, the added ones' appended; the others are not touched (an edit of one
    spheroid of 5,000 writes one row). A row's version is its image's current one, so none is stored."""
    mine = spheroid_rows.c.image_id == image.id
    if deleted:
        await db.execute(delete(spheroid_rows).where(mine, spheroid_rows.c.spheroid_id.in_(deleted)))
    for spheroid_id, record in replaced.items():
        await db.execute(
            update(spheroid_rows)
            .where(mine, spheroid_rows.c.spheroid_id == spheroid_id)
            .values(_row(image, record))
        )
    if added:
        await db.execute(insert(spheroid_rows), [_row(image, record) for record in added])


async def rescale_rows(db: AsyncSession, image_id: int, pixel_size_um: float | None) -> None:
    """The image's rows in µm for its new pixel size (``updateImage``): each ``*_um`` and ``*_um2``
    value derived again from its ``*_px`` one, as :meth:`SpheroidMetrics.at_pixel_size` does on read, so
    sorting and filtering by a µm metric agree with what every segmentation read shows. One statement."""
    scale = pixel_size_um
    values: dict[str, Any] = {}
    for name in _METRICS:
        if name.endswith("_um2"):
            px = spheroid_rows.c[name.removesuffix("_um2") + "_px"]
            values[name] = None if scale is None else px * (scale * scale)
        elif name.endswith("_um"):
            px = spheroid_rows.c[name.removesuffix("_um") + "_px"]
            values[name] = None if scale is None else px * scale
    await db.execute(update(spheroid_rows).where(spheroid_rows.c.image_id == image_id).values(values))


def _row(image: Image, record: Mapping[str, Any]) -> dict[str, Any]:
    metrics: Mapping[str, Any] = record.get("metrics") or {}
    return {
        "project_id": image.project_id,
        "image_id": image.id,
        "spheroid_id": record["id"],  # every stored spheroid has one (migration 0006)
        "touches_border": touches_border(Spheroid(as_ring(record["exterior"])), image.width, image.height),
        **{name: metrics.get(name) for name in _METRICS},
    }


def _filtered(project_id: int, where: SpheroidFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [spheroid_rows.c.project_id == project_id]
    if where.image_ids is not None:
        conditions.append(spheroid_rows.c.image_id.in_(where.image_ids))
    if where.review:
        conditions.append(Image.review_status.in_([r.value for r in where.review]))
    if where.touches_border is not None:
        conditions.append(spheroid_rows.c.touches_border.is_(where.touches_border))
    return conditions


def _after(order: SpheroidOrder, cursor: str) -> ColumnElement[bool]:
    """The rows after the cursor's, in ``order`` with unknown values last and ties by row id."""
    at = decode_cursor(cursor, order)
    column, row_id = spheroid_rows.c[order.key], spheroid_rows.c.id
    later_id = row_id < at.row_id if order.descending else row_id > at.row_id
    if at.value is None:  # among the unknown values already
        return and_(column.is_(None), later_id)
    value = int(at.value) if order.metric is None or order.metric == "hole_count" else at.value
    beyond = column < value if order.descending else column > value
    return or_(beyond, and_(column == value, later_id), column.is_(None))


async def spheroid_page(
    db: AsyncSession,
    project_id: int,
    where: SpheroidFilter,
    order: SpheroidOrder,
    first: int,
    after: str | None,
) -> SpheroidPage:
    """``first`` rows after the cursor, with the total matching the filter: two statements."""
    conditions = _filtered(project_id, where)
    column = spheroid_rows.c[order.key]
    query = (
        select(spheroid_rows, Image.name, Image.current_version)
        .join(Image, Image.id == spheroid_rows.c.image_id)
        .where(*conditions, *([_after(order, after)] if after is not None else []))
    )
    if order.descending:
        ordering = (column.desc().nulls_last(), spheroid_rows.c.id.desc())
    else:
        ordering = (column.asc().nulls_last(), spheroid_rows.c.id.asc())
    found = list(await db.execute(query.order_by(*ordering).limit(first + 1)))
    total_query = select(func.count()).select_from(spheroid_rows)
    if where.review:
        total_query = total_query.join(Image, Image.id == spheroid_rows.c.image_id)
    total = int(await db.scalar(total_query.where(*conditions)) or 0)
    return SpheroidPage([_spheroid(row) for row in found[:first]], len(found) > first, total)


def _spheroid(row: Row[Any]) -> SpheroidRow:
    values = row._mapping
    return SpheroidRow(
        row_id=values[spheroid_rows.c.id],
        image_id=values[spheroid_rows.c.image_id],
        image_name=values[Image.name],
        version=values[Image.current_version],
        spheroid_id=values[spheroid_rows.c.spheroid_id],
        touches_border=bool(values[spheroid_rows.c.touches_border]),
        metrics={name: values[spheroid_rows.c[name]] for name in _METRICS},
    )
