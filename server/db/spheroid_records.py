"""The spheroids of every version of an image, each record stored once for the versions that share it.

A row of ``spheroid_records`` holds one spheroid's record (:mod:`server.db.records`) for a run of versions of
its image: ``first_version`` up to, not including, ``end_version`` (``NULL``: it is in the current version).
Versions are made one after the other (every save is based on the current one), so a save only closes the
runs of what it takes out and adds rows for what it puts in:

- an edit closes the rows of the spheroids it replaces or deletes and adds one row per spheroid it puts in:
  one changed spheroid of 5,000 is one ``UPDATE`` of one row and one ``INSERT`` of one, whatever the size
  of the image;
- a whole-image save (a job's result, an import, a revert) closes every open row and adds the new version's.

``position`` orders a version's spheroids: a replaced spheroid takes the place of the one it replaces, an
added one comes after every other. Positions only need to be ordered among the rows of one version.

Reading a version is one statement over its image's rows (``first_version <= v`` and the run not ended by
``v``); the current one is the open rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from server.db.models import SegmentationVersion, spheroid_records
from server.domain.versions import StoredSpheroid

__all__ = [
    "FoundRecords",
    "close_and_add",
    "current_texts",
    "found_records",
    "last_added_ids",
    "replace_all",
    "texts_of_segmentations",
    "version_texts",
]

_r = spheroid_records.c


def _in_version(version: ColumnElement[int] | InstrumentedAttribute[int] | int) -> ColumnElement[bool]:
    """The rows that belong to ``version`` of their image."""
    return and_(_r.first_version <= version, or_(_r.end_version.is_(None), _r.end_version > version))


@dataclass(frozen=True)
class FoundRecords:
    """Some spheroids of one stored version, found by id (a :class:`~server.domain.versions.StoredVersion`
    for an edit: the ids it names), with the row holding each and the version's totals."""

    version: int
    totals: tuple[int, float, float]
    stored: Mapping[int, StoredSpheroid] = field(default_factory=dict)
    rows: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    """Row id and position of each spheroid found, by spheroid id."""

    def get(self, spheroid_id: int) -> StoredSpheroid | None:
        return self.stored.get(spheroid_id)


async def found_records(
    db: AsyncSession, row: SegmentationVersion | None, image_id: int, ids: Collection[int]
) -> FoundRecords:
    """The records with these spheroid ids in the version ``row`` (none without a row)."""
    if row is None:
        return FoundRecords(0, (0, 0.0, 0.0))
    totals = (row.spheroid_count, row.area_sum_px, row.diameter_sum_px)
    if not ids:
        return FoundRecords(row.version, totals)
    found = await db.execute(
        select(_r.id, _r.spheroid_id, _r.position, _r.record).where(
            _r.image_id == image_id, _r.spheroid_id.in_(list(ids)), _in_version(row.version)
        )
    )
    stored, rows = {}, {}
    for row_id, spheroid_id, position, record in found:
        stored[spheroid_id] = StoredSpheroid(spheroid_id, record)
        rows[spheroid_id] = (row_id, position)
    return FoundRecords(row.version, totals, stored, rows)


async def version_texts(db: AsyncSession, image_id: int, version: int) -> list[str] | None:
    """The records of a version, in order (``None`` when the image has no such version; the open rows would
    answer for a version not made yet): two statements."""
    exists = await db.scalar(
        select(SegmentationVersion.id).where(
            SegmentationVersion.image_id == image_id, SegmentationVersion.version == version
        )
    )
    if exists is None:
        return None
    found = await db.execute(
        select(_r.position, _r.record).where(_r.image_id == image_id, _in_version(version))
    )
    return _in_order(found.all())


async def texts_of_segmentations(db: AsyncSession, segmentation_ids: Sequence[int]) -> dict[int, list[str]]:
    """The records of each version (by the version row's id), in order; a version without spheroids (or
    no such version) is not named."""
    found = await db.execute(
        select(SegmentationVersion.id, _r.position, _r.record)
        .join(
            spheroid_records,
            and_(_r.image_id == SegmentationVersion.image_id, _in_version(SegmentationVersion.version)),
        )
        .where(SegmentationVersion.id.in_(segmentation_ids))
    )
    return _grouped(found)


async def current_texts(db: AsyncSession, image_ids: Sequence[int]) -> dict[int, list[str]]:
    """The records of each image's current version, in order (the open rows); an image without any is not
    named."""
    found = await db.execute(
        select(_r.image_id, _r.position, _r.record).where(
            _r.image_id.in_(image_ids), _r.end_version.is_(None)
        )
    )
    return _grouped(found)


def _grouped(rows: Iterable[Row[int, int, str]]) -> dict[int, list[str]]:
    by_key: dict[int, list[tuple[int, str]]] = {}
    for key, position, record in rows:
        by_key.setdefault(key, []).append((position, record))
    return {key: _in_order(found) for key, found in by_key.items()}


def _in_order(rows: Iterable[Sequence[Any]]) -> list[str]:
    """Records by position, sorted here: a database sorts the records' megabytes along with the numbers
    (SQLite in a temporary tree, PostgreSQL beyond its work memory on disk), several times slower."""
    return [record for _, record in sorted(rows, key=itemgetter(0))]


async def replace_all(
    db: AsyncSession, image_id: int, version: int, records: Sequence[tuple[int, str]]
) -> None:
    """Version ``version`` holds exactly ``records`` ((spheroid id, text), in order): every open row is
    closed and the records are added (a whole-image save)."""
    await db.execute(
        update(spheroid_records)
        .where(_r.image_id == image_id, _r.end_version.is_(None))
        .values(end_version=version)
    )
    await _add(
        db,
        image_id,
        version,
        [(spheroid_id, position, text) for position, (spheroid_id, text) in enumerate(records)],
    )


async def close_and_add(
    db: AsyncSession,
    image_id: int,
    version: int,
    onto: FoundRecords,
    replace: Mapping[int, str],
    delete: Collection[int],
    add: Sequence[tuple[int, str]],
) -> None:
    """Version ``version`` is ``onto``'s (the current one) with the spheroids of ``replace`` (texts by id)
    in place of theirs, those of ``delete`` taken out and ``add`` ((spheroid id, text)) appended: only those
    rows are written (every id named in ``replace`` and ``delete`` must be found in ``onto``)."""
    rows = [(spheroid_id, onto.rows[spheroid_id][1], text) for spheroid_id, text in replace.items()]
    if add:  # after every open row (read before closing any: a replaced last row keeps its place)
        last = await db.scalar(
            select(func.max(_r.position)).where(_r.image_id == image_id, _r.end_version.is_(None))
        )
        start = -1 if last is None else last
        rows += [(spheroid_id, start + 1 + k, text) for k, (spheroid_id, text) in enumerate(add)]
    closed = [onto.rows[spheroid_id][0] for spheroid_id in (*replace, *delete)]
    if closed:
        await db.execute(update(spheroid_records).where(_r.id.in_(closed)).values(end_version=version))
    await _add(db, image_id, version, rows)


async def _add(db: AsyncSession, image_id: int, version: int, rows: Sequence[tuple[int, int, str]]) -> None:
    if rows:
        await db.execute(
            insert(spheroid_records),
            [
                {
                    "image_id": image_id,
                    "spheroid_id": spheroid_id,
                    "position": position,
                    "first_version": version,
                    "record": text,
                }
                for spheroid_id, position, text in rows
            ],
        )


async def last_added_ids(db: AsyncSession, image_id: int, version: int, count: int) -> list[int]:
    """The ids of the last ``count`` spheroids of the current version ``version`` (an edit's new ones, in
    order), without reading the others."""
    if count == 0:
        return []
    found = await db.scalars(
        select(_r.spheroid_id)
        .where(_r.image_id == image_id, _r.first_version == version)
        .order_by(_r.position.desc())
        .limit(count)
    )
    return list(reversed(list(found)))
