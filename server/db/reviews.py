"""Reviews: an image's verdict (on its row) and the history of verdicts (``reviews`` rows).

:func:`record_reviews` sets the verdict of several images and adds each to their history, each only while
the image's current segmentation version is still the one reviewed (compare-and-set on the image row, so
a save that lands between the reviewer's look and the verdict makes the verdict fail, not go through).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Image, Review, utcnow

__all__ = ["record_reviews", "reviews_of"]


async def record_reviews(
    db: AsyncSession,
    reviewed: Mapping[int, int],
    status: str,
    comment: str | None,
    reviewer_id: int,
) -> list[int]:
    """Give the images (id -> segmentation version reviewed) the verdict, in the caller's transaction;
    the ids of images whose current version is no longer the one reviewed (nothing is written for them,
    and the caller should roll back to keep the change all or nothing)."""
    now = utcnow()
    stale = []
    for image_id, version in reviewed.items():
        result = await db.execute(
            update(Image)
            .where(Image.id == image_id, Image.current_version == version)
            .values(
                review_status=status,
                review_comment=comment,
                reviewed_by=reviewer_id,
                reviewed_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            stale.append(image_id)
            continue
        db.add(
            Review(
                image_id=image_id,
                reviewer_id=reviewer_id,
                status=status,
                comment=comment,
                version=version,
                created_at=now,
            )
        )
    await db.flush()
    return stale


async def reviews_of(db: AsyncSession, image_ids: Sequence[int]) -> dict[int, list[Review]]:
    """Each image's verdicts, newest first."""
    found: dict[int, list[Review]] = {image_id: [] for image_id in image_ids}
    rows = await db.scalars(
        select(Review).where(Review.image_id.in_(image_ids)).order_by(Review.image_id, Review.id.desc())
    )
    for row in rows:
        found[row.image_id].append(row)
    return found
