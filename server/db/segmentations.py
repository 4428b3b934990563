"""Segmentation versions: the current one of each image, history, and :func:`save_segmentation`, the one
way a new version is stored.

How a spheroid is stored is :mod:`server.db.records`' business, which versions hold which records
:mod:`server.db.spheroid_records`'; this module reads and writes versions and hands out cluster objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace as dc_replace

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cluster import Segmentation, Spheroid
from server.db import spheroid_records as records_of
from server.db.models import Image, SegmentationVersion, utcnow
from server.db.records import (
    record_text,
    records_json,
    segmentation_of,
    spheroid_record,
    spheroids_of_records,
    totals_changed,
    totals_of,
    version_row,
)
from server.db.spheroid_records import FoundRecords
from server.db.spheroid_table import index_changes, index_version
from server.domain.errors import InvalidInputError, VersionConflictError
from server.domain.review import ReviewStatus, SegmentationStatus, review_after_save
from server.domain.spheroids import measure_missing
from server.domain.versions import SegmentationSave, StoredChanges, next_version, with_spheroid_ids

__all__ = [
    "HistoryPage",
    "current_of",
    "current_segmentations",
    "current_version_of",
    "history_pages",
    "last_added_ids",
    "save_segmentation",
    "segmentation_at",
    "spheroids_of",
    "spheroids_text",
    "stored_version",
    "version_of",
    "versions_of",
]

logger = logging.getLogger(__name__)


async def current_of(db: AsyncSession, image_ids: Sequence[int]) -> dict[int, SegmentationVersion]:
    """The current segmentation of each image that has one, without its spheroids (a summary row)."""
    rows = await db.scalars(_current_versions(image_ids))
    return {row.image_id: row for row in rows}


def _current_versions(image_ids: Sequence[int]) -> Select[SegmentationVersion]:
    """The versions that are their image's current one, of these images."""
    return (
        select(SegmentationVersion)
        .join(
            Image,
            (Image.id == SegmentationVersion.image_id)
            & (Image.current_version == SegmentationVersion.version),
        )
        .where(Image.id.in_(image_ids))
    )


async def spheroids_of(db: AsyncSession, segmentation_ids: Sequence[int]) -> dict[int, list[Spheroid]]:
    """The spheroids of each version (by the version row's id), with their stored metrics."""
    texts = await records_of.texts_of_segmentations(db, segmentation_ids)
    rows = await db.execute(
        select(SegmentationVersion.id, Image.pixel_size_um)
        .join(Image, Image.id == SegmentationVersion.image_id)
        .where(SegmentationVersion.id.in_(list(texts)))
    )
    pixel_sizes = {seg_id: pixel_size_um for seg_id, pixel_size_um in rows}
    return {seg_id: spheroids_of_records(found, pixel_sizes[seg_id]) for seg_id, found in texts.items()}


HistoryPage = tuple[int, int, int | None]
"""Which versions of an image's history: (image id, at most how many, older than which version; ``None``
for the newest)."""


async def history_pages(
    db: AsyncSession, pages: Sequence[HistoryPage]
) -> dict[HistoryPage, list[SegmentationVersion]]:
    """Each page of history, newest first, without the spheroids (summary rows): one statement per
    distinct (size, start) asked, whatever the number of images."""
    result: dict[HistoryPage, list[SegmentationVersion]] = {page: [] for page in pages}
    by_window: dict[tuple[int, int | None], list[int]] = {}
    for image_id, first, before in pages:
        by_window.setdefault((first, before), []).append(image_id)
    for (first, before), image_ids in by_window.items():
        for row in await db.scalars(_history_page(image_ids, first, before)):
            result[(row.image_id, first, before)].append(row)
    return result


def _history_page(image_ids: Sequence[int], first: int, before: int | None) -> Select[SegmentationVersion]:
    newest = func.row_number().over(
        partition_by=SegmentationVersion.image_id, order_by=SegmentationVersion.version.desc()
    )
    ranked = select(SegmentationVersion.id, newest.label("rank")).where(
        SegmentationVersion.image_id.in_(image_ids)
    )
    if before is not None:
        ranked = ranked.where(SegmentationVersion.version < before)
    window = ranked.subquery()
    return (
        select(SegmentationVersion)
        .join(window, window.c.id == SegmentationVersion.id)
        .where(window.c.rank <= first)
        .order_by(SegmentationVersion.image_id, SegmentationVersion.version.desc())
    )


async def versions_of(
    db: AsyncSession, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], SegmentationVersion]:
    """The versions asked for as (image id, version), those that exist, without their spheroids."""
    if not keys:
        return {}
    rows = await db.scalars(
        select(SegmentationVersion).where(
            or_(
                *(
                    (SegmentationVersion.image_id == image_id) & (SegmentationVersion.version == version)
                    for image_id, version in keys
                )
            )
        )
    )
    return {(row.image_id, row.version): row for row in rows}


async def current_version_of(db: AsyncSession, image_id: int) -> int | None:
    """The image's current version number (0 without a segmentation); ``None`` when there is no image."""
    found: int | None = await db.scalar(select(Image.current_version).where(Image.id == image_id))
    return found


async def stored_version(
    db: AsyncSession, image_id: int, version: int, ids: Sequence[int]
) -> tuple[SegmentationVersion | None, FoundRecords]:
    """A version's row and the records of the spheroids ``ids`` in it, as stored, not parsed (an edit's
    base or current version: :class:`server.db.spheroid_records.FoundRecords`); ``None`` and no spheroids
    when the image has no such version."""
    row = await version_of(db, image_id, version)
    return row, await records_of.found_records(db, row, image_id, ids)


async def version_of(db: AsyncSession, image_id: int, version: int) -> SegmentationVersion | None:
    found: SegmentationVersion | None = await db.scalar(
        select(SegmentationVersion).where(
            SegmentationVersion.image_id == image_id, SegmentationVersion.version == version
        )
    )
    return found


async def spheroids_text(db: AsyncSession, image_id: int, version: int) -> str | None:
    """The stored spheroid records of a version as one JSON array's text, unparsed (``None`` without that
    version): parsing a version of thousands of spheroids takes long enough that callers do it off the
    event loop (:func:`server.db.records.outlines_of_records`)."""
    texts = await records_of.version_texts(db, image_id, version)
    return None if texts is None else records_json(texts)


async def segmentation_at(db: AsyncSession, image_id: int, version: int) -> Segmentation | None:
    """An image's segmentation as it was saved at ``version``, as a cluster object; ``None`` if none."""
    image = await db.get(Image, image_id)
    row = await version_of(db, image_id, version)
    if image is None or row is None:
        return None
    return segmentation_of(image, row, await records_of.version_texts(db, image_id, version) or [])


async def last_added_ids(db: AsyncSession, row: SegmentationVersion, count: int) -> list[int]:
    """The ids of the ``count`` spheroids an edit that made ``row`` added, in the order it sent them."""
    return await records_of.last_added_ids(db, row.image_id, row.version, count)


async def current_segmentations(db: AsyncSession, images: Sequence[Image]) -> list[Segmentation]:
    """The current segmentation of each image, in order, as cluster objects with their stored metrics (an
    image without one gets an empty segmentation of version 0)."""
    ids = [image.id for image in images]
    current = {row.image_id: row for row in await db.scalars(_current_versions(ids))}
    texts = await records_of.current_texts(db, ids)
    return [segmentation_of(image, current.get(image.id), texts.get(image.id, [])) for image in images]


async def save_segmentation(db: AsyncSession, save: SegmentationSave) -> SegmentationVersion:
    """Store ``save.spheroids`` as the image's next version and make it current, in the caller's
    transaction: every save (job result, edit, revert, import) goes through here.

    The rule: the new version is ``save.base_version + 1``; it is stored only while the image's current
    version is still ``base_version`` (checked, then compare-and-set on the image row, so two concurrent
    saves cannot both win); spheroids without an id get new ones (:func:`with_spheroid_ids`); an accepted
    image goes back to unreviewed (:func:`review_after_save`). Spheroids without metrics are measured here,
    once, so that no reader has to measure them again.

    Raises :class:`VersionConflictError` when the base is stale and :class:`InvalidSpheroidsError` for a
    spheroid that cannot be measured or an id given twice, storing nothing; :class:`InvalidInputError`
    when the image is gone.
    """
    image = await db.get(Image, save.image_id, populate_existing=True)
    if image is None:
        raise InvalidInputError("imageId", f"there is no image {save.image_id}; it may have been deleted")
    version = next_version(image.current_version, save.base_version)
    if isinstance(save.spheroids, StoredChanges):
        changes = save.spheroids
        added, last_spheroid_id = with_spheroid_ids(changes.add, image.last_spheroid_id)
        measured = await _measured([*changes.replace.values(), *added], image.pixel_size_um)
        replace = dict(zip(changes.replace, measured, strict=False))
        spheroids: Sequence[Spheroid] | StoredChanges = dc_replace(
            changes, replace=replace, add=measured[len(replace) :]
        )
    else:
        named, last_spheroid_id = with_spheroid_ids(save.spheroids, image.last_spheroid_id)
        spheroids = await _measured(named, image.pixel_size_um)
    writes = _Writes.of(spheroids)
    row = version_row(image.id, version, save.author_id, save.provenance, save.origin, writes.totals)
    now = utcnow()
    result = await db.execute(
        update(Image)
        .where(Image.id == image.id, Image.current_version == save.base_version)
        .values(
            current_version=version,
            segmentation_status=SegmentationStatus.DONE.value,
            review_status=review_after_save(ReviewStatus(image.review_status)).value,
            spheroid_count=row.spheroid_count,
            area_sum_px=row.area_sum_px,
            diameter_sum_px=row.diameter_sum_px,
            last_spheroid_id=last_spheroid_id,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:  # someone saved between the check and here
        current = await db.scalar(select(Image.current_version).where(Image.id == image.id))
        raise VersionConflictError(save.base_version, current or 0)
    row.created_at = now
    db.add(row)
    await writes.store(db, image.id, version)
    await db.flush()
    await _index(db, image, spheroids)
    logger.debug("image %d: version %d saved (%s)", image.id, version, save.origin.value)
    return row


class _Writes:
    """What a save writes to ``spheroid_records``: every record (a whole-image save) or the changes to the
    current version (an edit), as text; and the new version's totals."""

    def __init__(
        self,
        totals: tuple[int, float, float],
        records: Sequence[tuple[int, str]],
        changes: StoredChanges | None = None,
        replace: dict[int, str] | None = None,
    ) -> None:
        self.totals, self.records, self.changes, self.replace = totals, records, changes, replace or {}

    @classmethod
    def of(cls, spheroids: Sequence[Spheroid] | StoredChanges) -> _Writes:
        if not isinstance(spheroids, StoredChanges):
            records = [(_id_of(s), record_text(s)) for s in spheroids]
            return cls(totals_of([text for _, text in records]), records)
        onto = spheroids.onto
        if not isinstance(onto, FoundRecords):
            raise TypeError("changes apply to a version read by stored_version")
        replace = {spheroid_id: record_text(s) for spheroid_id, s in spheroids.replace.items()}
        added = [(_id_of(s), record_text(s)) for s in spheroids.add]
        removed = [found.record for i in (*replace, *spheroids.delete) if (found := onto.get(i)) is not None]
        totals = totals_changed(onto.totals, removed, [*replace.values(), *(text for _, text in added)])
        return cls(totals, added, spheroids, replace)

    async def store(self, db: AsyncSession, image_id: int, version: int) -> None:
        if self.changes is None:
            await records_of.replace_all(db, image_id, version, self.records)
            return
        onto = self.changes.onto
        assert isinstance(onto, FoundRecords)  # checked by of()
        await records_of.close_and_add(
            db, image_id, version, onto, self.replace, self.changes.delete, self.records
        )


def _id_of(spheroid: Spheroid) -> int:
    if spheroid.id is None:
        raise ValueError("a stored spheroid has an id (with_spheroid_ids gives one)")
    return spheroid.id


async def _index(db: AsyncSession, image: Image, spheroids: Sequence[Spheroid] | StoredChanges) -> None:
    """The project's spheroid table follows the new version: by its changes, for an edit."""
    if isinstance(spheroids, StoredChanges):
        replaced = {spheroid_id: spheroid_record(s) for spheroid_id, s in spheroids.replace.items()}
        added = [spheroid_record(s) for s in spheroids.add]
        await index_changes(db, image, replaced, spheroids.delete, added)
    else:
        await index_version(db, image, [spheroid_record(s) for s in spheroids])


async def _measured(spheroids: Sequence[Spheroid], pixel_size_um: float | None) -> list[Spheroid]:
    """The spheroids, those without metrics measured (in a thread: big outlines take a while)."""
    if all(spheroid.metrics is not None for spheroid in spheroids):
        return list(spheroids)
    return await asyncio.to_thread(measure_missing, spheroids, pixel_size_um)
