"""Images: pages with filters and keyset cursors, positions, stats, uploads, changes and deletion.

Originals are stored once per content hash, shared by every image (in any project) with that content.
Whoever stores an original and records its image, or decides that no image uses it any more and removes
it, first takes :func:`lock_content` in the same transaction: the two can then never interleave, so an
upload cannot lose its original to a deletion elsewhere, and two uploads of one file cannot both pass
the duplicate check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, case, delete, false, func, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from server.db.models import Image, ProjectStatsRow, utcnow
from server.domain.listing import ImageFilter, ImageOrder, PageRequest, decode_cursor
from server.domain.review import ReviewStatus, SegmentationStatus

__all__ = [
    "ImagePage",
    "ProjectStats",
    "add_image",
    "content_in_use",
    "delete_images",
    "image_ids_of_project",
    "images_by_ids",
    "images_holding",
    "images_page",
    "images_with_hashes",
    "lock_content",
    "positions_of",
    "stats_of",
    "update_image",
]


@dataclass
class ImagePage:
    images: list[Image]
    has_next: bool
    has_previous: bool
    total: int
    """How many images the page's arguments select, on every page."""


@dataclass
class ProjectStats:
    image_count: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_review: dict[str, int] = field(default_factory=dict)
    segmented_images: int = 0
    spheroid_count: int = 0
    area_sum_px: float = 0.0
    diameter_sum_px: float = 0.0


def _filtered(query: Select[tuple[Image]], project_id: int, where: ImageFilter) -> Select[tuple[Image]]:
    query = query.where(Image.project_id == project_id)
    if where.status:
        query = query.where(Image.segmentation_status.in_([s.value for s in where.status]))
    if where.review:
        query = query.where(Image.review_status.in_([r.value for r in where.review]))
    if where.name_contains:
        query = query.where(func.lower(Image.name).contains(where.name_contains.lower(), autoescape=True))
    return query


def _narrowed(
    query: Select[tuple[Image]], project_id: int, where: ImageFilter, page: PageRequest
) -> Select[tuple[Image]]:
    query = _filtered(query, project_id, where)
    if page.ids is not None:
        query = query.where(Image.id.in_(page.ids))
    if page.updated_since is not None:
        query = query.where(Image.updated_at >= page.updated_since)
    return query


def _sort_column(order: ImageOrder) -> InstrumentedAttribute[Any]:
    column: InstrumentedAttribute[Any] = getattr(Image, order.key)
    return column


def _before(order: ImageOrder, cursor: str, argument: str, *, inclusive: bool) -> ColumnElement[bool]:
    """Images that come before the cursor's image in ``order`` (and the cursor's image when
    ``inclusive``), whether or not that image still exists."""
    key, image_id = decode_cursor(cursor, order, argument)
    value: object = key if order.key == "name" else dt.datetime.fromisoformat(key)
    column = _sort_column(order)
    pair, bound = tuple_(column, Image.id), tuple_(value, image_id)
    if order.descending:
        return pair >= bound if inclusive else pair > bound
    return pair <= bound if inclusive else pair < bound


async def images_page(db: AsyncSession, project_id: int, where: ImageFilter, page: PageRequest) -> ImagePage:
    """One page of images and the counts around it: two statements, whatever the page or the project.

    The first reads the page (one more image than asked, to know whether the list goes on that way); the
    second counts what the page's arguments select and how many of those lie before the cursor, which
    says whether the list goes on the other way.
    """
    order, cursor = page.order, page.cursor
    column = _sort_column(order)
    argument = "before" if page.backwards else "after"
    query = _narrowed(select(Image), project_id, where, page)
    toward_end = order.descending == page.backwards  # reading in ascending column order
    if cursor is not None:
        before = _before(order, cursor, argument, inclusive=not page.backwards)
        query = query.where(before if page.backwards else ~before)
    ordering = (column.asc(), Image.id.asc()) if toward_end else (column.desc(), Image.id.desc())
    rows = list(await db.scalars(query.order_by(*ordering).limit(page.size + 1)))
    more = len(rows) > page.size
    rows = rows[: page.size]
    if page.backwards:
        rows.reverse()
    counted = _narrowed(select(Image), project_id, where, page)
    if cursor is None:
        counts = counted.with_only_columns(func.count(Image.id), literal(0))
    else:
        behind = _before(order, cursor, argument, inclusive=not page.backwards)
        counts = counted.with_only_columns(func.count(Image.id), func.sum(case((behind, 1), else_=0)))
    total, before_cursor = (await db.execute(counts)).one()
    total, before_cursor = int(total or 0), int(before_cursor or 0)
    if page.backwards:
        has_previous, has_next = more, cursor is not None and total - before_cursor > 0
    else:
        has_previous, has_next = before_cursor > 0, more
    return ImagePage(rows, has_next, has_previous, total)  # type: ignore[arg-type]


async def positions_of(
    db: AsyncSession, project_id: int, where: ImageFilter, order: ImageOrder, image_ids: Sequence[int]
) -> dict[int, int]:
    """Where each image stands (from 1) in the project's images that ``where`` selects, in ``order``: one
    statement (a window over the filtered images); images the filter leaves out are missing."""
    column = _sort_column(order)
    ordering = (column.desc(), Image.id.desc()) if order.descending else (column.asc(), Image.id.asc())
    ranked = (
        _filtered(select(Image), project_id, where)
        .with_only_columns(Image.id, func.row_number().over(order_by=ordering).label("position"))
        .subquery()
    )
    rows = await db.execute(select(ranked.c.id, ranked.c.position).where(ranked.c.id.in_(image_ids)))
    return {image_id: int(position) for image_id, position in rows}


async def stats_of(db: AsyncSession, project_ids: Sequence[int]) -> dict[int, ProjectStats]:
    """Counts per status and review state, spheroid totals: one statement, read from the counters that the
    database's triggers keep (migration 0002), so it costs the same for 10 or 100,000 images."""
    stats = {pid: ProjectStats() for pid in project_ids}
    for row in await db.scalars(select(ProjectStatsRow).where(ProjectStatsRow.project_id.in_(project_ids))):
        stats[row.project_id] = ProjectStats(
            image_count=row.image_count,
            by_status=_nonzero({s.value: getattr(row, f"status_{s.value}") for s in SegmentationStatus}),
            by_review=_nonzero({r.value: getattr(row, f"review_{r.value}") for r in ReviewStatus}),
            segmented_images=row.segmented_images,
            spheroid_count=row.spheroid_count,
            area_sum_px=row.area_sum_px,
            diameter_sum_px=row.diameter_sum_px,
        )
    return stats


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {state: count for state, count in counts.items() if count}


async def images_by_ids(db: AsyncSession, ids: Sequence[int]) -> dict[int, Image]:
    return {image.id: image for image in await db.scalars(select(Image).where(Image.id.in_(ids)))}


async def image_ids_of_project(
    db: AsyncSession, project_id: int, where: ImageFilter, limit: int
) -> list[int]:
    """Ids of the project's images matching the filter, by name, at most ``limit``."""
    query = _filtered(select(Image), project_id, where).with_only_columns(Image.id)
    return list(await db.scalars(query.order_by(Image.name, Image.id).limit(limit)))


async def images_of_project(db: AsyncSession, project_id: int, where: ImageFilter) -> list[Image]:
    return list(await db.scalars(_filtered(select(Image), project_id, where).order_by(Image.name, Image.id)))


async def images_with_hashes(
    db: AsyncSession, project_id: int, hashes: Sequence[str]
) -> dict[str, tuple[int, str]]:
    """The project's images holding these content hashes: hash -> (image id, name)."""
    rows = await db.execute(
        select(Image.content_hash, Image.id, Image.name).where(
            Image.project_id == project_id, Image.content_hash.in_(hashes)
        )
    )
    return {content_hash: (image_id, name) for content_hash, image_id, name in rows}


async def images_holding(db: AsyncSession, project_id: int, hashes: Sequence[str]) -> list[Image]:
    """The project's images holding any of these content hashes, by name."""
    query = select(Image).where(Image.project_id == project_id, Image.content_hash.in_(hashes))
    return list(await db.scalars(query.order_by(Image.name, Image.id)))


async def lock_content(db: AsyncSession, content_hash: str) -> None:
    """Hold the lock of one content hash until this transaction ends; call it before anything else.

    PostgreSQL: a transaction-scoped advisory lock on the hash, so different contents do not wait for each
    other. SQLite allows one writer at a time: a first statement that writes (and changes nothing) makes
    this transaction that writer until it ends, and the reads after it see every commit before it.
    """
    bind = db.get_bind()
    if bind.dialect.name == "postgresql":
        key = int(content_hash[:16], 16) - (1 << 63)  # the hash's first 64 bits as a signed bigint
        await db.execute(select(func.pg_advisory_xact_lock(key)))
    else:
        await db.execute(update(Image).where(false()).values(id=Image.id))


async def content_in_use(db: AsyncSession, content_hash: str) -> bool:
    """Whether any image, in any project, holds this content."""
    found = await db.scalar(select(Image.id).where(Image.content_hash == content_hash).limit(1))
    return found is not None


async def add_image(db: AsyncSession, image: Image) -> Image:
    now = utcnow()
    image.created_at = image.updated_at = now
    db.add(image)
    await db.flush()
    return image


async def delete_images(db: AsyncSession, image_ids: Sequence[int]) -> tuple[list[int], list[str]]:
    """Delete images; return the ids deleted and the content hashes that no image uses any more."""
    rows = list(await db.execute(select(Image.id, Image.content_hash).where(Image.id.in_(image_ids))))
    hashes = {content_hash for _, content_hash in rows}
    await db.execute(delete(Image).where(Image.id.in_([image_id for image_id, _ in rows])))
    still_used = set(await db.scalars(select(Image.content_hash).where(Image.content_hash.in_(hashes))))
    return sorted(image_id for image_id, _ in rows), sorted(hashes - still_used)


async def update_image(db: AsyncSession, image_id: int, values: dict[str, Any]) -> None:
    """Change the image's fields (names as in :class:`Image`); ``updated_at`` moves with them."""
    await db.execute(
        update(Image)
        .where(Image.id == image_id)
        .values(**values, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
