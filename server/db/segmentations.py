"""Segmentation versions: the current one of each image, history, saving a new version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from cluster.metrics import SpheroidMetrics
from cluster.segmentation import Spheroid
from server.db.models import Image, Segmentation, utcnow

__all__ = [
    "current_of",
    "history_of",
    "new_version",
    "save_version",
    "spheroid_record",
    "spheroids_of",
    "version_of",
]


async def current_of(db: AsyncSession, image_ids: Sequence[int]) -> dict[int, Segmentation]:
    """The current segmentation of each image that has one, without its spheroids (a summary row)."""
    rows = await db.scalars(
        select(Segmentation)
        .join(Image, (Image.id == Segmentation.image_id) & (Image.current_version == Segmentation.version))
        .where(Image.id.in_(image_ids))
        .options(defer(Segmentation.spheroids))
    )
    return {row.image_id: row for row in rows}


async def spheroids_of(db: AsyncSession, segmentation_ids: Sequence[int]) -> dict[int, list[Any]]:
    rows = await db.execute(
        select(Segmentation.id, Segmentation.spheroids).where(Segmentation.id.in_(segmentation_ids))
    )
    return {seg_id: list(spheroids) for seg_id, spheroids in rows}


async def history_of(db: AsyncSession, image_ids: Sequence[int]) -> dict[int, list[Segmentation]]:
    result: dict[int, list[Segmentation]] = {image_id: [] for image_id in image_ids}
    rows = await db.scalars(
        select(Segmentation)
        .where(Segmentation.image_id.in_(image_ids))
        .order_by(Segmentation.image_id, Segmentation.version.desc())
        .options(defer(Segmentation.spheroids))
    )
    for row in rows:
        result[row.image_id].append(row)
    return result


async def version_of(db: AsyncSession, image_id: int, version: int) -> Segmentation | None:
    found: Segmentation | None = await db.scalar(
        select(Segmentation).where(Segmentation.image_id == image_id, Segmentation.version == version)
    )
    return found


async def save_version(
    db: AsyncSession, image: Image, segmentation: Segmentation, review_status: str
) -> bool:
    """Insert ``segmentation`` as the image's next version and make it current.

    The image row is updated only while its ``current_version`` is still the one the caller read
    (compare-and-set), so two concurrent saves cannot both win; ``False`` means someone else saved first.
    """
    base = segmentation.version - 1
    now = utcnow()
    result = await db.execute(
        update(Image)
        .where(Image.id == image.id, Image.current_version == base)
        .values(
            current_version=segmentation.version,
            segmentation_status="done",
            review_status=review_status,
            spheroid_count=segmentation.spheroid_count,
            area_sum_px=segmentation.area_sum_px,
            diameter_sum_px=segmentation.diameter_sum_px,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    segmentation.created_at = now
    db.add(segmentation)
    await db.flush()
    return True


async def current_with_spheroids(db: AsyncSession, image_ids: Sequence[int]) -> dict[int, Segmentation]:
    """The current segmentation of each image, spheroids included (for exports)."""
    rows = await db.scalars(
        select(Segmentation)
        .join(Image, (Image.id == Segmentation.image_id) & (Image.current_version == Segmentation.version))
        .where(Image.id.in_(image_ids))
    )
    return {row.image_id: row for row in rows}


def spheroid_record(spheroid: Spheroid) -> dict[str, Any]:
    """How a measured spheroid is stored (JSON): rings as lists of (x, y), metrics by name."""
    metrics = spheroid.metrics.as_dict() if spheroid.metrics is not None else {}
    return {
        "exterior": spheroid.exterior.tolist(),
        "holes": [hole.tolist() for hole in spheroid.holes],
        "metrics": metrics,
    }


def new_version(
    image_id: int,
    version: int,
    author_id: int | None,
    model: tuple[str, str, dict[str, Any]],
    spheroids: Sequence[Spheroid],
) -> Segmentation:
    """The row of a new version made of measured spheroids, with its totals; ``model`` is (name,
    version, parameters) of what made it, empty for a person's drawing."""
    records = [spheroid_record(s) for s in spheroids]
    return Segmentation(
        image_id=image_id,
        version=version,
        author_id=author_id,
        model_name=model[0],
        model_version=model[1],
        parameters=model[2],
        spheroids=records,
        spheroid_count=len(records),
        area_sum_px=sum(_metric(s.metrics, "area_px") for s in spheroids),
        diameter_sum_px=sum(_metric(s.metrics, "equivalent_diameter_px") for s in spheroids),
    )


def _metric(metrics: SpheroidMetrics | None, name: str) -> float:
    return float(getattr(metrics, name)) if metrics is not None else 0.0
