"""Reading and rewriting stored spheroid records straight in the database, for tests that look at or age
what a save stored (``spheroid_records``, :mod:`server.db.spheroid_records`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import SegmentationVersion, spheroid_records
from server.db.spheroid_records import version_texts

Record = dict[str, Any]


async def stored_records(db: AsyncSession, image_id: int) -> dict[int, list[Record]]:
    """Every version of the image with its records as stored, parsed, in order."""
    versions = await db.scalars(
        select(SegmentationVersion.version).where(SegmentationVersion.image_id == image_id)
    )
    return {
        version: [json.loads(text) for text in await version_texts(db, image_id, version) or []]
        for version in list(versions)
    }


async def rewrite_records(db: AsyncSession, image_id: int, change: Callable[[Record], Record]) -> None:
    """Every stored record of the image replaced by ``change`` of it, in place (as an older server would
    have stored it)."""
    rows = await db.execute(
        select(spheroid_records.c.id, spheroid_records.c.record).where(
            spheroid_records.c.image_id == image_id
        )
    )
    for row_id, text in list(rows):
        await db.execute(
            update(spheroid_records)
            .where(spheroid_records.c.id == row_id)
            .values(record=json.dumps(change(json.loads(text))))
        )


def record_rows(image_id: int, version: int, records: Sequence[Record]) -> list[dict[str, Any]]:
    """Rows of ``spheroid_records`` for a version made whole (first stored at ``version``, still current)."""
    return [
        {
            "image_id": image_id,
            "spheroid_id": record["id"],
            "position": position,
            "first_version": version,
            "end_version": None,
            "record": json.dumps(record),
        }
        for position, record in enumerate(records)
    ]


async def add_records(db: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await db.execute(insert(spheroid_records), list(rows))
