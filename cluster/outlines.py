"""The outlines of one segmentation version in a compact binary form, and the one reader of it.

A review session needs every outline of an image at once: 5,000 spheroids of 64 vertices are 320,000
vertices, which JSON carries as text and graphql-core checks one float at a time. This format carries them
as a few arrays instead: spheroid ids, ring counts, vertex counts, delta-coded integer coordinates and the
metrics as columns (named by :meth:`SpheroidMetrics.names`, the only list of metric names), compressed with
zlib. Its byte layout is in ``docs/geometry-format.md``; in short (little-endian)::

    header   52 bytes: magic b"SSOL", format version, flags, image width and height, segmentation
             version, spheroid, ring and vertex counts, metric count, coordinate precision, body sizes,
             CRC-32 of the body
    names    the metric names, UTF-8, separated by "\\n"
    body     (zlib when flag 1 is set) rings per spheroid (u32), vertices per ring (u32), ids (i64),
             x deltas then y deltas (i32, in 1/2**precision px), metric columns (f64, NaN = unknown);
             each array byte-shuffled (all first bytes, then all second bytes, ...)

The first ring of a spheroid is its exterior, the others its holes. Coordinates are those of
:mod:`cluster.segmentation` rounded to ``1/2**precision`` px: :func:`encode_outlines` picks the coarsest
grid (down to whole pixels) on which every stored coordinate lies exactly, and :data:`DEFAULT_PRECISION`
(1/256 px, at most 1/512 px off) for coordinates on none; metrics are the stored float64 values exactly.

:func:`decode_outlines` checks everything before it trusts it: the magic and version, that the counts
agree with each other and with the body's size, the CRC, and that the body inflates to no more than the
header declares (so a forged count cannot make it allocate more than about a thousand times the bytes it
was given). Anything wrong raises :class:`~cluster.exceptions.OutlinesFormatError`, never another error.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from cluster.exceptions import OutlinesFormatError
from cluster.metrics import SpheroidMetrics
from cluster.segmentation import Segmentation, Spheroid

__all__ = [
    "DEFAULT_PRECISION",
    "FORMAT_VERSION",
    "MAGIC",
    "MEDIA_TYPE",
    "Outlines",
    "decode_outlines",
    "encode_outlines",
]

MAGIC = b"SSOL"
FORMAT_VERSION = 1
MEDIA_TYPE = "application/vnd.spheroseg.outlines"
DEFAULT_PRECISION = 8
"""Coordinates on no finer grid are rounded to 1/2**8 = 1/256 px (at most 1/512 px off)."""
MAX_PRECISION = 16
COMPRESSED = 1
"""Flag: the body is a zlib stream."""
MAX_INFLATION = 1100
"""zlib inflates no more than 1032:1; a body declared larger than this times its size is forged."""

_HEADER = struct.Struct("<4sHHIIIIIIHBBIIII")
"""magic, format version, flags, width, height, version, spheroids, rings, vertices, metric count,
coordinate encoding, precision, names length, raw body length, wire body length, CRC-32 of the raw body."""
_DELTA_INT32 = 1
"""Coordinate encoding 1: int32 deltas in 1/2**precision px, all x then all y."""

Int64s = NDArray[np.int64]
Float64s = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Outlines:
    """All outlines of a segmentation version as arrays.

    Spheroid ``i`` has id ``ids[i]`` (-1 when it has none yet) and the rings
    ``ring_offsets[i] .. ring_offsets[i + 1]``, the first its exterior, the others its holes; ring ``j``
    has the vertices ``vertices[vertex_offsets[j] : vertex_offsets[j + 1]]``, open, as ``(x, y)`` image
    pixels. ``metrics`` maps a metric name to one value per spheroid (NaN where unknown: µm without a pixel
    size, or a spheroid that could not be measured).
    """

    width: int
    height: int
    version: int
    ids: Int64s
    ring_offsets: Int64s
    vertex_offsets: Int64s
    vertices: Float64s
    metrics: Mapping[str, Float64s] = field(default_factory=dict)

    @property
    def spheroid_count(self) -> int:
        return len(self.ids)

    def rings(self, index: int) -> list[Float64s]:
        """The rings of spheroid ``index``: its exterior first, then its holes."""
        first, last = self.ring_offsets[index], self.ring_offsets[index + 1]
        starts = self.vertex_offsets
        return [self.vertices[starts[j] : starts[j + 1]] for j in range(first, last)]

    def spheroids(self) -> list[Spheroid]:
        """As cluster spheroids, with their metrics where every measured non-µm metric is known."""
        names = SpheroidMetrics.names()
        have = all(name in self.metrics for name in names if not SpheroidMetrics.is_given(name))
        result = []
        for index in range(self.spheroid_count):
            exterior, *holes = self.rings(index)
            metrics = _metrics_of(self.metrics, names, index) if have else None
            spheroid_id = int(self.ids[index])
            result.append(Spheroid(exterior, tuple(holes), metrics, None if spheroid_id < 0 else spheroid_id))
        return result

    @classmethod
    def of(cls, segmentation: Segmentation) -> Outlines:
        """The outlines of a cluster segmentation, with every metric column."""
        spheroids = segmentation.spheroids
        rings = [ring for s in spheroids for ring in (s.exterior, *s.holes)]
        names = SpheroidMetrics.names()
        columns = {name: np.full(len(spheroids), np.nan) for name in names}
        for index, spheroid in enumerate(spheroids):
            if spheroid.metrics is not None:
                for name, value in spheroid.metrics.as_dict().items():
                    columns[name][index] = np.nan if value is None else value
        return cls(
            width=segmentation.width,
            height=segmentation.height,
            version=segmentation.version,
            ids=np.array([-1 if s.id is None else s.id for s in spheroids], dtype=np.int64),
            ring_offsets=_offsets([1 + len(s.holes) for s in spheroids]),
            vertex_offsets=_offsets([len(ring) for ring in rings]),
            vertices=np.concatenate(rings).astype(np.float64) if rings else np.zeros((0, 2)),
            metrics=columns,
        )


def _metrics_of(columns: Mapping[str, Float64s], names: Sequence[str], index: int) -> SpheroidMetrics | None:
    values: dict[str, float | int | None] = {}
    for name in names:
        value = float(columns[name][index]) if name in columns else math.nan
        if math.isnan(value):
            if not name.endswith(("_um", "_um2")) and not SpheroidMetrics.is_given(name):
                return None  # unmeasured: a px metric is unknown
            values[name] = None
        else:
            values[name] = int(value) if name == "hole_count" else value
    return SpheroidMetrics.from_dict(values)


def _offsets(counts: Sequence[int] | Int64s) -> Int64s:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


# -- encoding ----------------------------------------------------------------------------------------------


def encode_outlines(outlines: Outlines, *, compress: bool = True, level: int = 6) -> bytes:
    """The outlines in the binary format (see the module's docstring); ``compress=False`` leaves the body
    raw (for a transport that compresses itself)."""
    ring_counts = np.diff(outlines.ring_offsets).astype(np.uint32)
    vertex_counts = np.diff(outlines.vertex_offsets).astype(np.uint32)
    if (
        len(ring_counts) != len(outlines.ids)
        or np.any(ring_counts < 1)
        or (outlines.ring_offsets[-1] != len(vertex_counts))
    ):
        raise ValueError("every spheroid needs an exterior ring, and ring_offsets one entry per spheroid + 1")
    if np.any(vertex_counts < 3) or outlines.vertex_offsets[-1] != len(outlines.vertices):
        raise ValueError("every ring needs 3 or more vertices, and vertex_offsets must end at the vertices")
    precision = _precision(outlines.vertices)
    grid = np.rint(outlines.vertices * float(2**precision))
    if grid.size and (not np.all(np.isfinite(grid)) or np.abs(grid).max() >= 2**31):
        raise ValueError("coordinates must be finite and within ±2**31 / 2**precision px")
    steps = np.diff(grid.astype(np.int64), axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    names = list(outlines.metrics)
    columns = [np.asarray(outlines.metrics[name], dtype="<f8") for name in names]
    if any(len(column) != len(outlines.ids) for column in columns):
        raise ValueError("every metric column needs one value per spheroid")
    arrays: list[NDArray[np.generic]] = [
        ring_counts.astype("<u4"),
        vertex_counts.astype("<u4"),
        outlines.ids.astype("<i8"),
        steps[:, 0].astype("<i4"),
        steps[:, 1].astype("<i4"),
        *columns,
    ]
    raw = b"".join(_shuffled(array) for array in arrays)
    body = zlib.compress(raw, level) if compress else raw
    encoded_names = "\n".join(names).encode()
    header = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        COMPRESSED if compress else 0,
        outlines.width,
        outlines.height,
        outlines.version,
        len(outlines.ids),
        len(vertex_counts),
        len(outlines.vertices),
        len(names),
        _DELTA_INT32,
        precision,
        len(encoded_names),
        len(raw),
        len(body),
        zlib.crc32(raw),
    )
    return header + encoded_names + body


def _precision(vertices: Float64s) -> int:
    """The coarsest grid 1/2**p px (p <= DEFAULT_PRECISION) holding every coordinate exactly."""
    for precision in range(DEFAULT_PRECISION):
        scaled = vertices * float(2**precision)
        if np.array_equal(scaled, np.rint(scaled)):
            return precision
    return DEFAULT_PRECISION


def _shuffled(array: NDArray[np.generic]) -> bytes:
    """The bytes of ``array`` grouped by significance (all first bytes, then all second, ...): the high bytes
    of small integers and of similar floats are mostly equal, which zlib then compresses well."""
    size = array.dtype.itemsize
    return np.ascontiguousarray(array).view(np.uint8).reshape(-1, size).T.tobytes()


# -- decoding ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    flags: int
    width: int
    height: int
    version: int
    spheroids: int
    rings: int
    vertices: int
    metric_count: int
    precision: int
    names_length: int
    raw_length: int
    wire_length: int
    crc: int


def decode_outlines(data: bytes | bytearray | memoryview, *, max_bytes: int = 2**31) -> Outlines:
    """Read what :func:`encode_outlines` wrote; :class:`OutlinesFormatError` says what is wrong with bytes
    that are not such a file (truncated, corrupt, forged, or of a newer format version). ``max_bytes``
    bounds the inflated body."""
    view = memoryview(data).cast("B")
    header = _header(view)
    names_end = _HEADER.size + header.names_length
    try:
        names = bytes(view[_HEADER.size : names_end]).decode() if header.metric_count else ""
    except UnicodeDecodeError:
        raise OutlinesFormatError("the metric names are not UTF-8: the data is corrupt") from None
    name_list = names.split("\n") if header.metric_count else []
    if len(name_list) != header.metric_count or len(set(name_list)) != len(name_list):
        raise OutlinesFormatError("the metric names do not match their count: the data is corrupt")
    if header.raw_length > max_bytes:
        raise OutlinesFormatError(
            f"the body would inflate to {header.raw_length:,} bytes, over {max_bytes:,}"
        )
    raw = _body(view[names_end:], header)
    return _arrays(raw, header, name_list)


def _header(view: memoryview) -> _Header:
    if len(view) < _HEADER.size:
        if bytes(view[:4]) != MAGIC[: len(view[:4])]:
            raise OutlinesFormatError("not SpheroSeg outlines (the data does not start with b'SSOL')")
        raise OutlinesFormatError(
            f"truncated: {len(view)} bytes, shorter than the {_HEADER.size}-byte header"
        )
    (
        magic,
        version,
        flags,
        width,
        height,
        seg_version,
        spheroids,
        rings,
        vertices,
        metric_count,
        encoding,
        precision,
        names_length,
        raw_length,
        wire_length,
        crc,
    ) = _HEADER.unpack_from(view)
    if magic != MAGIC:
        raise OutlinesFormatError("not SpheroSeg outlines (the data does not start with b'SSOL')")
    if version != FORMAT_VERSION:
        raise OutlinesFormatError(
            f"outlines format version {version}; this reader knows version {FORMAT_VERSION}: update it"
        )
    if flags & ~COMPRESSED or encoding != _DELTA_INT32 or precision > MAX_PRECISION:
        raise OutlinesFormatError("unknown flags or coordinate encoding: the data is corrupt")
    header = _Header(
        flags,
        width,
        height,
        seg_version,
        spheroids,
        rings,
        vertices,
        metric_count,
        precision,
        names_length,
        raw_length,
        wire_length,
        crc,
    )
    if header.spheroids > header.rings or header.rings * 3 > header.vertices:
        raise OutlinesFormatError("the spheroid, ring and vertex counts disagree: the data is corrupt")
    expected = _raw_size(header)
    if header.raw_length != expected:
        raise OutlinesFormatError(
            f"the counts need a {expected:,}-byte body, the header says {header.raw_length:,}: corrupt"
        )
    if len(view) != _HEADER.size + header.names_length + header.wire_length:
        size = _HEADER.size + header.names_length + header.wire_length
        problem = "truncated" if len(view) < size else "trailing bytes"
        raise OutlinesFormatError(f"{problem}: {len(view):,} bytes where the header announces {size:,}")
    return header


def _raw_size(header: _Header) -> int:
    counts = 4 * (header.spheroids + header.rings)
    return counts + 8 * header.spheroids + 8 * header.vertices + 8 * header.metric_count * header.spheroids


def _body(wire: memoryview, header: _Header) -> bytes:
    if not header.flags & COMPRESSED:
        raw = bytes(wire)
    else:
        if header.raw_length > MAX_INFLATION * max(header.wire_length, 64):
            raise OutlinesFormatError("the body claims to inflate more than zlib can: the data is forged")
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(wire, header.raw_length)
        except zlib.error as error:
            raise OutlinesFormatError(f"the compressed body is corrupt ({error})") from None
        if (
            len(raw) != header.raw_length
            or not inflater.eof
            or inflater.unconsumed_tail
            or inflater.unused_data
        ):
            raise OutlinesFormatError("the compressed body does not inflate to the size the header says")
    if len(raw) != header.raw_length or zlib.crc32(raw) != header.crc:
        raise OutlinesFormatError("the body fails its CRC-32 check: the data is corrupt")
    return raw


def _arrays(raw: bytes, header: _Header, names: list[str]) -> Outlines:
    reader = _Reader(raw)
    ring_counts = reader.take("<u4", header.spheroids).astype(np.int64)
    vertex_counts = reader.take("<u4", header.rings).astype(np.int64)
    ids = reader.take("<i8", header.spheroids).astype(np.int64)
    steps_x = reader.take("<i4", header.vertices).astype(np.int64)
    steps_y = reader.take("<i4", header.vertices).astype(np.int64)
    columns = {name: reader.take("<f8", header.spheroids).astype(np.float64) for name in names}
    if np.any(ring_counts < 1) or int(ring_counts.sum()) != header.rings:
        raise OutlinesFormatError("the rings per spheroid do not add up to the ring count: corrupt")
    if np.any(vertex_counts < 3) or int(vertex_counts.sum()) != header.vertices:
        raise OutlinesFormatError("the vertices per ring do not add up to the vertex count: corrupt")
    vertices = np.empty((header.vertices, 2), dtype=np.float64)
    scale = 1.0 / 2**header.precision
    vertices[:, 0] = np.cumsum(steps_x) * scale
    vertices[:, 1] = np.cumsum(steps_y) * scale
    return Outlines(
        width=header.width,
        height=header.height,
        version=header.version,
        ids=ids,
        ring_offsets=_offsets(ring_counts),
        vertex_offsets=_offsets(vertex_counts),
        vertices=vertices,
        metrics=columns,
    )


class _Reader:
    """Unshuffles consecutive arrays out of the body (whose size the header check has already matched)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.at = 0

    def take(self, dtype: str, count: int) -> NDArray[np.generic]:
        kind = np.dtype(dtype)
        size = kind.itemsize * count
        planes = np.frombuffer(self.raw, np.uint8, size, self.at).reshape(kind.itemsize, count)
        self.at += size
        return np.ascontiguousarray(planes.T).view(kind).reshape(count)
