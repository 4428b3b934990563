"""How a segmentation is stored, and the one conversion between that and ``cluster`` objects.

A saved version is a :class:`~server.db.models.SegmentationVersion` row. Its ``spheroids`` column holds one
JSON record per spheroid, in order::

    {"id": 7, "exterior": [[x, y], ...], "holes": [[[x, y], ...], ...], "metrics": {"area_px": ..., ...}}

``id`` names the spheroid within its image, across versions (migration 0006 gave one to every record stored
before ids existed). Rings are open, in image pixels (as :mod:`cluster.segmentation` keeps them); ``metrics``
is :meth:`SpheroidMetrics.as_dict` (``null`` for µm values when the pixel size is unknown). The µm values
read back are always derived from the px values and the image's pixel size *now*
(:meth:`SpheroidMetrics.at_pixel_size`): a pixel size set or corrected later (``updateImage``) applies at
once to every version, and no stored version is rewritten (the stored µm values are those of the pixel size
at the time of the save, kept as history). Records written before a metric existed lack it (and a spheroid
saved unmeasured by an older server has ``{}``): reading such a record measures the outline once to fill in
what is missing, keeping every stored value. Rows also keep totals of the metrics (count, area, diameter)
for the project counters.

The array is written one record a line, each record with its id first and its metrics last
(:class:`EncodedRecords`; still plain JSON to every reader). An edit reads a version as text
(:class:`StoredRecords`), finds the records it changes by id and splices the next version from the text:
an edit of one spheroid of 5,000 neither parses, rebuilds nor measures the other 4,999, and updates the
totals by what it changed (a version written by an older server, one JSON line, is parsed once, by its
first edit).

Nothing else reads or writes this JSON: the API, the exports and the job results see cluster objects, and
the binary geometry (:func:`outlines_of_records`) sees ``cluster.Outlines`` arrays read straight from it.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from cluster import GeometryError, MetricError, Outlines, Segmentation, Spheroid, SpheroidMetrics, measure
from server.db.models import Image, SegmentationVersion
from server.domain.versions import Provenance, SaveOrigin, StoredChanges, StoredSpheroid

__all__ = [
    "EncodedRecords",
    "StoredRecords",
    "json_text",
    "last_spheroid_ids",
    "outlines_of_records",
    "segmentation_of",
    "spheroid_of",
    "spheroid_of_stored",
    "spheroid_record",
    "spheroids_of_row",
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


def spheroids_of_row(row: SegmentationVersion, pixel_size_um: float | None) -> list[Spheroid]:
    records = json.loads(row.spheroids) if isinstance(row.spheroids, str) else row.spheroids
    return [spheroid_of(record, pixel_size_um) for record in records]


class EncodedRecords(str):
    """A version's records as the JSON text to store: ``[``, one record a line, ``]`` (``[]`` for none).
    :func:`json_text`, the engine's JSON serializer, writes it as it is."""

    @classmethod
    def of(cls, texts: Sequence[str]) -> EncodedRecords:
        return cls("[\n" + ",\n".join(texts) + "\n]" if texts else "[]")


def json_text(value: Any) -> str:
    """The JSON serializer of the engine (every JSON column): :class:`EncodedRecords` as they are,
    anything else through :func:`json.dumps`."""
    return value if isinstance(value, EncodedRecords) else json.dumps(value)


class StoredRecords:
    """A stored version's spheroids as the text stored, one record a line, for an edit: a spheroid is found
    by id (:meth:`get`) and the next version is spliced from the text (:meth:`changed`), neither parsing
    nor copying record by record the ones not named. A version an older server stored (one JSON line) is
    rewritten one record a line first. ``row`` gives the totals the changes are applied to."""

    def __init__(self, stored: str | None, row: SegmentationVersion | None) -> None:
        if stored is not None and not stored.startswith("[\n"):
            stored = EncodedRecords.of([json.dumps(_id_first(record)) for record in json.loads(stored)])
        self._body = stored[2:-2] if stored is not None and stored.startswith("[\n") else ""
        self._totals = (
            (row.spheroid_count, row.area_sum_px, row.diameter_sum_px) if row is not None else (0, 0.0, 0.0)
        )

    def get(self, spheroid_id: int) -> StoredSpheroid | None:
        span = self._span(spheroid_id)
        return None if span is None else StoredSpheroid(spheroid_id, self._body[span[0] : span[1]])

    def changed(
        self, replace: Mapping[int, str], delete: Collection[int], add: Sequence[str]
    ) -> tuple[EncodedRecords, int, float, float]:
        """The next version's text and its totals (count, area, diameter): the records of ``replace``
        (texts by id) put in place of the stored ones, those of ``delete`` left out, ``add`` appended; every
        id named must be stored."""
        body = self._body
        spans = sorted((self._known_span(spheroid_id), spheroid_id) for spheroid_id in (*replace, *delete))
        pieces, removed, at = [], [], 0
        for (start, end), spheroid_id in spans:
            pieces.append(body[at:start])
            removed.append(body[start:end])
            if spheroid_id in replace:
                pieces.append(replace[spheroid_id])
                at = end
            else:
                at = end + 2  # with the ",\n" after it
        pieces.append(body[at:])
        kept = "".join(pieces).removesuffix(",\n")  # the last line was deleted
        added = [*replace.values(), *add]
        count, area, diameter = self._totals
        return (
            EncodedRecords.of([kept, *add] if kept else add),
            count - len(delete) + len(add),
            area + _number_sum(added, "area_px") - _number_sum(removed, "area_px"),
            diameter
            + _number_sum(added, "equivalent_diameter_px")
            - _number_sum(removed, "equivalent_diameter_px"),
        )

    def _span(self, spheroid_id: int) -> tuple[int, int] | None:
        """Where the record of ``spheroid_id`` is in the text: its line, without the separator after it."""
        line = f"{_ID_PREFIX}{spheroid_id},"
        if self._body.startswith(line):
            start = 0
        elif (found := self._body.find("\n" + line)) >= 0:
            start = found + 1
        else:
            return None
        end = self._body.find(",\n", start)
        return start, end if end >= 0 else len(self._body)

    def _known_span(self, spheroid_id: int) -> tuple[int, int]:
        span = self._span(spheroid_id)
        if span is None:
            raise KeyError(f"the stored version has no spheroid {spheroid_id}")
        return span


def version_row(
    image_id: int,
    version: int,
    author_id: int | None,
    provenance: Provenance,
    origin: SaveOrigin,
    spheroids: Sequence[Spheroid] | StoredChanges,
) -> SegmentationVersion:
    """The row of a new version, with its totals: measured spheroids with ids, or changes (their spheroids
    measured, the added ones with ids) to a version read as :class:`StoredRecords`."""
    if isinstance(spheroids, StoredChanges):
        encoded, count, area, diameter = _changed(spheroids)
    else:
        encoded = EncodedRecords.of([json.dumps(spheroid_record(s)) for s in spheroids])
        count, area = len(spheroids), _metric_sum(encoded, "area_px")
        diameter = _metric_sum(encoded, "equivalent_diameter_px")
    return SegmentationVersion(
        image_id=image_id,
        version=version,
        author_id=author_id,
        origin=origin.value,
        model_name=provenance.model_name,
        model_version=provenance.model_version,
        parameters=dict(provenance.parameters),
        spheroids=encoded,
        spheroid_count=count,
        area_sum_px=area,
        diameter_sum_px=diameter,
    )


def _changed(changes: StoredChanges) -> tuple[EncodedRecords, int, float, float]:
    if not isinstance(changes.onto, StoredRecords):
        raise TypeError("changes apply to a version read as StoredRecords")
    replace = {spheroid_id: json.dumps(spheroid_record(s)) for spheroid_id, s in changes.replace.items()}
    return changes.onto.changed(
        replace, changes.delete, [json.dumps(spheroid_record(s)) for s in changes.add]
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


_ID_PREFIX = '{"id": '


def _id_of(line: str) -> int:
    """The id of a record's text: read from its start (it comes first), else parsed."""
    if line.startswith(_ID_PREFIX):
        return int(line[len(_ID_PREFIX) : line.index(",", len(_ID_PREFIX))])
    spheroid_id: int = json.loads(line)["id"]
    return spheroid_id


def _id_first(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with its keys in the stored order (records numbered by migration 0006 have the id last)."""
    return {"id": record["id"], **{key: value for key, value in record.items() if key != "id"}}


def _metric_sum(encoded: str, key: str) -> float:
    """The sum of the metric ``key`` over the records of a version's text (a record without it adds 0)."""
    values = re.findall(f'"{key}": ([^,}}]+)', encoded)
    return sum(float(value) for value in values if value.strip() != "null")


def _number_sum(texts: Sequence[str], key: str) -> float:
    return sum(_metric_sum(text, key) for text in texts)


def last_spheroid_ids(row: SegmentationVersion, count: int) -> list[int]:
    """The ids of a version's last ``count`` spheroids (an edit's new ones), without reading the others."""
    if count == 0:
        return []
    stored: str | list[Any] = row.spheroids
    if isinstance(stored, str) and stored.startswith("[\n"):
        return [_id_of(line) for line in stored[2:-2].rsplit(",\n", count)[-count:]]
    records = json.loads(stored) if isinstance(stored, str) else stored
    return [record["id"] for record in records[-count:]]
