"""How a segmentation is stored, and the one conversion between that and ``cluster`` objects.

A saved version is a :class:`~server.db.models.SegmentationVersion` row. Its ``spheroids`` column holds one
JSON record per spheroid, in order::

    {"id": 7, "exterior": [[x, y], ...], "holes": [[[x, y], ...], ...], "metrics": {"area_px": ..., ...}}

``id`` names the spheroid within its image, across versions (migration 0006 gave one to every record stored
before ids existed). Rings are open, in image pixels (as :mod:`cluster.segmentation` keeps them); ``metrics``
is :meth:`SpheroidMetrics.as_dict` (``null`` for µm values when the pixel size is unknown). Records written
before a metric existed lack it (and a spheroid saved unmeasured by an older server has ``{}``): reading such
a record measures the outline once to fill in what is missing, keeping every stored value. Rows also keep
totals of the metrics (count, area, diameter) for the project counters.

Nothing else reads or writes this JSON: the API, the exports and the job results see cluster objects.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cluster import GeometryError, MetricError, Segmentation, Spheroid, SpheroidMetrics, measure
from server.db.models import Image, SegmentationVersion
from server.domain.versions import Provenance, SaveOrigin, StoredSpheroid

__all__ = [
    "segmentation_of",
    "spheroid_of",
    "spheroid_record",
    "spheroids_of_row",
    "stored_spheroids",
    "version_row",
]

logger = logging.getLogger(__name__)


def spheroid_record(spheroid: Spheroid) -> dict[str, Any]:
    """How a spheroid is stored: its id, rings as lists of (x, y), metrics by name (``{}`` when
    unmeasured)."""
    metrics = spheroid.metrics.as_dict() if spheroid.metrics is not None else {}
    return {
        "id": spheroid.id,
        "exterior": spheroid.exterior.tolist(),
        "holes": [hole.tolist() for hole in spheroid.holes],
        "metrics": metrics,
    }


def spheroid_of(record: Mapping[str, Any], pixel_size_um: float | None) -> Spheroid:
    """The spheroid a record stores, with its stored metrics; metrics missing from an older record are
    measured (``pixel_size_um`` is the image's), and ``metrics`` is ``None`` only when that fails."""
    spheroid = Spheroid(
        np.asarray(record["exterior"], dtype=np.float64).reshape(-1, 2),
        tuple(np.asarray(hole, dtype=np.float64).reshape(-1, 2) for hole in record.get("holes") or ()),
        id=record.get("id"),
    )
    stored: Mapping[str, Any] = record.get("metrics") or {}
    metrics = SpheroidMetrics.from_dict(stored) or _completed(spheroid, stored, pixel_size_um)
    return spheroid if metrics is None else spheroid.with_metrics(metrics)


def spheroids_of_row(row: SegmentationVersion, pixel_size_um: float | None) -> list[Spheroid]:
    return [spheroid_of(record, pixel_size_um) for record in row.spheroids]


def stored_spheroids(row: SegmentationVersion | None) -> list[StoredSpheroid]:
    """A version's spheroids as they are stored, in order, without reading their rings or metrics (an
    edit passes the ones it does not touch to the next version as they are); none for ``None``."""
    return [] if row is None else [StoredSpheroid(record["id"], record) for record in row.spheroids]


def version_row(
    image_id: int,
    version: int,
    author_id: int | None,
    provenance: Provenance,
    origin: SaveOrigin,
    spheroids: Sequence[Spheroid | StoredSpheroid],
) -> SegmentationVersion:
    """The row of a new version made of measured spheroids with ids, with its totals; a stored spheroid
    keeps its record as it is."""
    records = [s.record if isinstance(s, StoredSpheroid) else spheroid_record(s) for s in spheroids]
    metrics = [record.get("metrics") or {} for record in records]
    return SegmentationVersion(
        image_id=image_id,
        version=version,
        author_id=author_id,
        origin=origin.value,
        model_name=provenance.model_name,
        model_version=provenance.model_version,
        parameters=dict(provenance.parameters),
        spheroids=records,
        spheroid_count=len(records),
        area_sum_px=sum(m.get("area_px") or 0.0 for m in metrics),
        diameter_sum_px=sum(m.get("equivalent_diameter_px") or 0.0 for m in metrics),
    )


def segmentation_of(image: Image, row: SegmentationVersion | None) -> Segmentation:
    """The cluster segmentation of an image at a stored version (empty, version 0, without one)."""
    return Segmentation(
        image_name=image.name,
        width=image.width,
        height=image.height,
        spheroids=spheroids_of_row(row, image.pixel_size_um) if row is not None else [],
        pixel_size_um=image.pixel_size_um,
        model_name=row.model_name if row is not None else "",
        model_version=row.model_version if row is not None else "",
        parameters=dict(row.parameters) if row is not None else {},
        version=row.version if row is not None else 0,
    )


def _completed(
    spheroid: Spheroid, stored: Mapping[str, Any], pixel_size_um: float | None
) -> SpheroidMetrics | None:
    """Metrics of an older record: the stored ones, the missing ones measured now."""
    try:
        measured = measure(spheroid, pixel_size_um).as_dict()
    except (MetricError, GeometryError) as error:
        logger.warning("stored spheroid cannot be measured, its metrics stay unknown: %s", error)
        return None
    return SpheroidMetrics.from_dict({**measured, **stored})
