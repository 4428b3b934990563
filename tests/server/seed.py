"""Fast seeding of a project with many images (some segmented) straight through the database layer."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Image, SegmentationVersion, utcnow
from tests.server.records import add_records, record_rows

STATUSES = ("none", "done")
REVIEWS = ("unreviewed", "accepted", "needs_fix", "rejected")


async def seed_images(db: async_sessionmaker[AsyncSession], project_id: int, count: int) -> None:
    now = utcnow()
    async with db.begin() as session:
        rows = [
            {
                "project_id": project_id,
                "name": f"img{i:05d}.tif",
                "content_hash": f"{project_id:08x}{i:056x}",
                "format": "tiff",
                "width": 512,
                "height": 512,
                "bit_depth": 16,
                "pixel_size_um": 0.65,
                "byte_size": 524288,
                "segmentation_status": STATUSES[i % 2],
                "review_status": REVIEWS[i % 4],
                "current_version": i % 2,
                # the current segmentation's totals (below: 3 squares of 100 px each)
                "spheroid_count": 3 * (i % 2),
                "area_sum_px": 300.0 * (i % 2),
                "diameter_sum_px": 33.85 * (i % 2),
                "last_spheroid_id": 3 * (i % 2),
                "created_at": now,
                "updated_at": now,
            }
            for i in range(count)
        ]
        await session.execute(insert(Image), rows)
        ids = [
            row.id
            for row in (
                await session.execute(
                    Image.__table__.select().where(Image.project_id == project_id, Image.current_version == 1)
                )
            )
        ]
        square = {
            "exterior": [[1, 1], [11, 1], [11, 11], [1, 11]],
            "holes": [],
            "metrics": {"area_px": 100.0},
        }
        if ids:
            await session.execute(
                insert(SegmentationVersion),
                [
                    {
                        "image_id": image_id,
                        "version": 1,
                        "author_id": None,
                        "model_name": "classical",
                        "model_version": "1",
                        "parameters": {},
                        "spheroid_count": 3,
                        "area_sum_px": 300.0,
                        "diameter_sum_px": 33.85,
                        "created_at": now,
                    }
                    for image_id in ids
                ],
            )
            records = [{"id": k, **square} for k in (1, 2, 3)]
            await add_records(session, [row for i in ids for row in record_rows(i, 1, records)])
