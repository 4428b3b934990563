"""How a segmentation's spheroids are stored, and the one conversion between that and ``cluster`` objects.

A saved version is a :class:`~server.db.models.SegmentationVersion` row (who, when, from what, the totals
of its metrics: count, area, diameter, for the project counters); its spheroids are rows of
``spheroid_records`` (:mod:`server.db.spheroid_records`), each holding one spheroid's JSON record::

    {"id": 7, "exterior": [[x, y], ...], "holes": [[[x, y], ...], ...], "metrics": {"area_px": ..., ...}}

``id`` names the spheroid within its image, across versions (migration 0006 gave one to every record stored
before ids existed), and comes first. Rings are open, in image pixels (as :mod:`cluster.segmentation` keeps
them); ``metrics`` is :meth:`SpheroidMetrics.as_dict` (``null`` for µm values when the pixel size is
unknown). The µm values read back are always derived from the px values and the image's pixel size *now*
(:meth:`SpheroidMetrics.at_pixel_size`): a pixel size set or corrected later (``updateImage``) applies at
once to every version, and no stored record is rewritten (the stored µm values are those of the pixel size
at the time of the save, kept as history). Records written before a metric existed lack it (and a spheroid
saved unmeasured by an older server has ``{}``): reading such a record measures the outline once to fill in
what is missing, keeping every stored value.

A record is stored once for every version that holds it unchanged: an edit of one spheroid of 5,000 writes
one record and parses, rebuilds and measures none of the others; its totals follow from the changed records
(:func:`totals_changed`).

Nothing else reads or writes this JSON: the API, the exports and the job results see cluster objects, and
the binary geometry (:func:`outlines_of_records`) sees ``cluster.Outlines`` arrays read straight from it.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cluster import GeometryError, MetricError, Outlines, Segmentation, Spheroid, SpheroidMetrics, measure
from server.db.models import Image, SegmentationVersion
from server.domain.versions import Provenance, SaveOrigin, StoredSpheroid

__all__ = [
    "outlines_of_records",
    "record_text",
    "records_json",
    "segmentation_of",
    "spheroid_of",
    "spheroid_of_stored",
    "spheroid_record",
    "spheroids_of_records",
    "totals_changed",
    "totals_of",
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
    """The spheroid a record stores, with its stored metrics in px (and in µm for ``pixel_size_um``, the
    image's pixel size now); metrics missing from an older record are measured, and ``metrics`` is
    ``None`` only when that fails."""
    spheroid = Spheroid(
        np.asarray(record["exterior"], dtype=np.float64).reshape(-1, 2),
        tuple(np.asarray(hole, dtype=np.float64).reshape(-1, 2) for hole in record.get("holes") or ()),
        id=record.get("id"),
    )
    stored: Mapping[str, Any] = record.get("metrics") or {}
    metrics = SpheroidMetrics.from_dict(stored) or _completed(spheroid, stored, pixel_size_um)
    return spheroid if metrics is None else spheroid.with_metrics(metrics.at_pixel_size(pixel_size_um))


def spheroid_of_stored(stored: StoredSpheroid, pixel_size_um: float | None) -> Spheroid:
    """The spheroid a stored record's text holds (as :func:`spheroid_of`)."""
    record: Mapping[str, Any] = json.loads(stored.record)
    return spheroid_of(record, pixel_size_um)


def spheroids_of_records(texts: Sequence[str], pixel_size_um: float | None) -> list[Spheroid]:
    """The spheroids stored as these records' texts, in order."""
    return [spheroid_of(record, pixel_size_um) for record in json.loads(records_json(texts))]


def record_text(spheroid: Spheroid) -> str:
    """A spheroid's stored record as text (its id first)."""
    return json.dumps(spheroid_record(spheroid))


def records_json(texts: Sequence[str]) -> str:
    """Records' texts as one JSON array, to be parsed at once (off the event loop for a big version)."""
    return "[" + ",".join(texts) + "]"


def totals_of(texts: Sequence[str]) -> tuple[int, float, float]:
    """The totals of a version (count, area, diameter in px) from its records' texts."""
    return len(texts), _number_sum(texts, "area_px"), _number_sum(texts, "equivalent_diameter_px")


def totals_changed(
    totals: tuple[int, float, float], removed: Sequence[str], added: Sequence[str]
) -> tuple[int, float, float]:
    """The totals of a version made from one with ``totals``, its records ``removed`` taken out and
    ``added`` put in (a replaced record is in both)."""
    count, area, diameter = totals
    return (
        count - len(removed) + len(added),
        area + _number_sum(added, "area_px") - _number_sum(removed, "area_px"),
        diameter
        + _number_sum(added, "equivalent_diameter_px")
        - _number_sum(removed, "equivalent_diameter_px"),
    )


def version_row(
    image_id: int,
    version: int,
    author_id: int | None,
    provenance: Provenance,
    origin: SaveOrigin,
    totals: tuple[int, float, float],
) -> SegmentationVersion:
    """The row of a new version, with the totals of its spheroids (count, area, diameter)."""
    count, area, diameter = totals
    return SegmentationVersion(
        image_id=image_id,
        version=version,
        author_id=author_id,
        origin=origin.value,
        model_name=provenance.model_name,
        model_version=provenance.model_version,
        parameters=dict(provenance.parameters),
        spheroid_count=count,
        area_sum_px=area,
        diameter_sum_px=diameter,
    )


def segmentation_of(image: Image, row: SegmentationVersion | None, texts: Sequence[str]) -> Segmentation:
    """The cluster segmentation of an image at a stored version (``row``, with its records' ``texts``);
    empty, version 0, without one."""
    return Segmentation(
        image_name=image.name,
        width=image.width,
        height=image.height,
        spheroids=spheroids_of_records(texts, image.pixel_size_um) if row is not None else [],
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


def outlines_of_records(image: Image, version: int, records: Sequence[Mapping[str, Any]]) -> Outlines:
    """The outlines of a stored version as arrays, read straight from its records (no spheroid objects,
    several times faster): the binary geometry's source. A record without every metric is read through
    :func:`spheroid_of`, which measures what is missing; NaN stands for an unknown value."""
    names = SpheroidMetrics.names()
    ids: list[int] = []
    ring_counts: list[int] = []
    vertex_counts: list[int] = []
    coordinates: list[float] = []
    rows: list[list[float]] = []
    nan = float("nan")
    for record in records:
        stored: Mapping[str, Any] = record.get("metrics") or {}
        if not all(name in stored for name in names):
            stored = _metrics_dict(spheroid_of(record, image.pixel_size_um))
        rings = [record["exterior"], *(record.get("holes") or ())]
        ids.append(record.get("id") or -1)
        ring_counts.append(len(rings))
        for ring in rings:
            vertex_counts.append(len(ring))
            coordinates.extend(itertools.chain.from_iterable(ring))
        rows.append([nan if stored[name] is None else stored[name] for name in names])
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    return Outlines(
        width=image.width,
        height=image.height,
        version=version,
        ids=np.array(ids, dtype=np.int64),
        ring_offsets=_offsets(ring_counts),
        vertex_offsets=_offsets(vertex_counts),
        vertices=np.array(coordinates, dtype=np.float64).reshape(-1, 2),
        metrics={name: table[:, index] for index, name in enumerate(names)},
    )


def _metrics_dict(spheroid: Spheroid) -> dict[str, Any]:
    if spheroid.metrics is not None:
        return spheroid.metrics.as_dict()
    return dict.fromkeys(SpheroidMetrics.names())


def _offsets(counts: Sequence[int]) -> np.ndarray[Any, np.dtype[np.int64]]:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def _metric_sum(encoded: str, key: str) -> float:
    """The sum of the metric ``key`` over records' text (a record without it adds 0)."""
    values = re.findall(f'"{key}": ([^,}}]+)', encoded)
    return sum(float(value) for value in values if value.strip() != "null")


def _number_sum(texts: Sequence[str], key: str) -> float:
    return sum(_metric_sum(text, key) for text in texts)
