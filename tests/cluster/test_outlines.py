"""The binary outlines format: what goes in comes out (ids, holes, metrics, the header's image and
version), and bytes that are not such a file are refused with OutlinesFormatError, never a crash or a huge
allocation."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster import (
    Outlines,
    OutlinesFormatError,
    Segmentation,
    Spheroid,
    SpheroidMetrics,
    decode_outlines,
    encode_outlines,
    measure,
)
from cluster.outlines import MAGIC

SQUARE = np.array([[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]])
HOLE = np.array([[15.0, 15.0], [15.0, 20.0], [20.0, 20.0], [20.0, 15.0]])


def _wobbly(cx: float, cy: float, radius: float, n: int = 64, seed: int = 0) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    wobble = 1 + 0.05 * np.cos(3 * angles + seed)
    return np.stack([cx + radius * wobble * np.cos(angles), cy - radius * wobble * np.sin(angles)], axis=1)


def _segmentation(spheroids: list[Spheroid], pixel_size: float | None = 0.65) -> Segmentation:
    measured = [s.with_metrics(measure(s, pixel_size)) for s in spheroids]
    return Segmentation("well.tif", 640, 480, measured, pixel_size_um=pixel_size, version=7)


def _round_trip(segmentation: Segmentation) -> Outlines:
    return decode_outlines(encode_outlines(Outlines.of(segmentation)))


def test_spheroids_with_holes_come_back_with_their_ids_rings_and_metrics() -> None:
    spheroids = [
        Spheroid(SQUARE, (HOLE,), id=4),
        Spheroid(_wobbly(200.5, 100.25, 40.0), id=9),
        Spheroid(SQUARE + 100, (HOLE + 100, HOLE + 105), id=12),
    ]
    segmentation = _segmentation(spheroids)
    decoded = _round_trip(segmentation)
    assert (decoded.width, decoded.height, decoded.version) == (640, 480, 7)
    assert decoded.ids.tolist() == [4, 9, 12]
    assert [len(decoded.rings(i)) for i in range(3)] == [2, 1, 3]  # exterior + holes, each its own
    back = decoded.spheroids()
    for original, read in zip(segmentation.spheroids, back, strict=True):
        assert read.id == original.id
        assert np.abs(read.exterior - original.exterior).max() <= 1 / 512
        assert len(read.holes) == len(original.holes)
        for hole, read_hole in zip(original.holes, read.holes, strict=True):
            np.testing.assert_array_equal(read_hole, hole)  # whole pixels: exact
        assert read.metrics == original.metrics  # float64 columns: exactly the stored values
    assert list(decoded.metrics) == list(SpheroidMetrics.names())


def test_coordinates_on_a_coarse_grid_are_exact_and_others_within_a_512th_of_a_pixel() -> None:
    halves = SQUARE + 0.5
    fine = _wobbly(300.0, 200.0, 50.0)
    decoded = _round_trip(_segmentation([Spheroid(halves), Spheroid(fine)]))
    np.testing.assert_array_equal(decoded.rings(0)[0], halves)
    error = np.abs(decoded.rings(1)[0] - fine).max()
    assert 0 < error <= 1 / 512


def test_unknown_micrometres_are_nan_and_read_back_as_none() -> None:
    decoded = _round_trip(_segmentation([Spheroid(SQUARE, id=1)], pixel_size=None))
    assert math.isnan(decoded.metrics["area_um2"][0])
    assert decoded.metrics["area_px"][0] == 400.0
    metrics = decoded.spheroids()[0].metrics
    assert metrics is not None and metrics.area_um2 is None and metrics.area_px == 400.0


def test_an_unmeasured_or_unstored_spheroid_reads_back_unmeasured_and_without_id() -> None:
    segmentation = Segmentation("x.png", 64, 64, [Spheroid(SQUARE)], version=1)
    decoded = _round_trip(segmentation)
    assert decoded.ids.tolist() == [-1]
    assert all(math.isnan(column[0]) for column in decoded.metrics.values())
    spheroid = decoded.spheroids()[0]
    assert spheroid.id is None and spheroid.metrics is None


def test_an_empty_segmentation_round_trips() -> None:
    data = encode_outlines(Outlines.of(Segmentation("x.png", 100, 50, [], version=0)))
    decoded = decode_outlines(data)
    assert (decoded.width, decoded.height, decoded.version, decoded.spheroid_count) == (100, 50, 0, 0)
    assert decoded.vertices.shape == (0, 2) and decoded.spheroids() == []


def test_many_spheroids_round_trip_and_take_a_fraction_of_their_json() -> None:
    rng = np.random.default_rng(3)
    spheroids = [
        Spheroid(_wobbly(*rng.uniform(50, 4000, 2), rng.uniform(8, 30), seed=i), id=i + 1)
        for i in range(2000)
    ]
    outlines = Outlines.of(Segmentation("big.tif", 4096, 4096, spheroids, version=2))
    data = encode_outlines(outlines)
    decoded = decode_outlines(data)
    assert decoded.ids.tolist() == list(range(1, 2001))
    np.testing.assert_array_equal(decoded.vertex_offsets, np.arange(0, 64 * 2001, 64))
    assert np.abs(decoded.vertices - outlines.vertices).max() <= 1 / 512
    as_json = sum(len(str(s.exterior.tolist())) for s in spheroids)
    assert len(data) * 5 < as_json


def test_an_uncompressed_body_reads_the_same() -> None:
    outlines = Outlines.of(_segmentation([Spheroid(SQUARE, (HOLE,), id=1)]))
    raw, packed = encode_outlines(outlines, compress=False), encode_outlines(outlines)
    assert len(packed) < len(raw)
    assert decode_outlines(raw).spheroids()[0].metrics == decode_outlines(packed).spheroids()[0].metrics


@settings(max_examples=40, deadline=None)
@given(
    rings=st.lists(
        st.tuples(st.integers(0, 3), st.lists(st.integers(-5000, 5000), min_size=6, max_size=40)),
        max_size=12,
    )
)
def test_any_ring_structure_round_trips(rings: list[tuple[int, list[int]]]) -> None:
    spheroids = []
    for index, (holes, values) in enumerate(rings):
        points = np.array(values[: len(values) // 2 * 2], dtype=np.float64).reshape(-1, 2) / 4
        hole_rings = tuple(points + k for k in range(1, holes + 1))
        spheroids.append(Spheroid(points, hole_rings, id=index))
    segmentation = Segmentation("x.png", 10, 10, spheroids, version=3)
    back = decode_outlines(encode_outlines(Outlines.of(segmentation))).spheroids()
    assert len(back) == len(spheroids)
    for original, read in zip(spheroids, back, strict=True):
        np.testing.assert_array_equal(read.exterior, original.exterior)  # quarter pixels: exact
        assert [h.tolist() for h in read.holes] == [h.tolist() for h in original.holes]


# -- bytes that are not outlines ---------------------------------------------------------------------------


def _sample() -> bytes:
    return encode_outlines(
        Outlines.of(_segmentation([Spheroid(SQUARE, (HOLE,), id=1), Spheroid(SQUARE + 50)]))
    )


@pytest.mark.parametrize("length", [0, 3, 20, 51, 52, 60, -1])
def test_truncated_data_is_refused_clearly(length: int) -> None:
    data = _sample()
    with pytest.raises(OutlinesFormatError, match=r"truncated|not SpheroSeg"):
        decode_outlines(data[:length])


def test_other_bytes_and_newer_versions_are_refused() -> None:
    with pytest.raises(OutlinesFormatError, match="not SpheroSeg outlines"):
        decode_outlines(b"\x89PNG\r\n\x1a\n" + bytes(100))
    newer = bytearray(_sample())
    struct.pack_into("<H", newer, 4, 2)
    with pytest.raises(OutlinesFormatError, match="version 2; this reader knows version 1"):
        decode_outlines(bytes(newer))


def test_a_flipped_byte_anywhere_is_refused_or_harmless() -> None:
    data = _sample()
    for position in range(len(data)):
        corrupt = bytearray(data)
        corrupt[position] ^= 0x40
        try:
            decoded = decode_outlines(bytes(corrupt))
        except OutlinesFormatError:
            continue
        # only the fields that describe the image rather than the body may change unnoticed
        assert decoded.ids.tolist() == [1, -1] and decoded.vertices.shape == (12, 2)


@pytest.mark.parametrize(
    ("offset", "value"),
    [
        (16 + 4, 2**32 - 1),  # spheroids
        (16 + 8, 2**32 - 1),  # rings
        (16 + 12, 2**32 - 1),  # vertices
        (40, 2**32 - 1),  # raw body length
    ],
)
def test_forged_counts_are_refused_before_any_large_allocation(offset: int, value: int) -> None:
    forged = bytearray(_sample())
    struct.pack_into("<I", forged, offset, value)
    with pytest.raises(OutlinesFormatError):
        decode_outlines(bytes(forged))


def test_a_zip_bomb_is_refused_without_inflating_it() -> None:
    """A header consistent with 100 M vertices, over a tiny body: refused from the sizes alone."""
    vertices = 100_000_000
    raw_length = 4 * 2 + 8 + 8 * vertices
    body = zlib.compress(bytes(1000))
    header = struct.pack(
        "<4sHHIIIIIIHBBIIII", MAGIC, 1, 1, 10, 10, 1, 1, 1, vertices, 0, 1, 8, 0, raw_length, len(body), 0
    )
    with pytest.raises(OutlinesFormatError, match="inflate"):
        decode_outlines(header + body)


def test_counts_that_disagree_with_the_body_are_refused() -> None:
    """A consistent header and CRC over a body whose ring counts do not add up."""
    ring_counts = np.array([2], "<u4").view(np.uint8).reshape(-1, 4).T.tobytes()
    vertex_counts = np.array([4], "<u4").view(np.uint8).reshape(-1, 4).T.tobytes()
    ids = bytes(8)
    steps = bytes(4 * 4 * 2)
    raw = ring_counts + vertex_counts + ids + steps
    header = struct.pack(
        "<4sHHIIIIIIHBBIIII", MAGIC, 1, 0, 10, 10, 1, 1, 1, 4, 0, 1, 0, 0, len(raw), len(raw), zlib.crc32(raw)
    )
    with pytest.raises(OutlinesFormatError, match="rings per spheroid"):
        decode_outlines(header + raw)


def test_outlines_that_cannot_be_written_are_refused_before_any_byte_is() -> None:
    good = Outlines.of(_segmentation([Spheroid(SQUARE, id=1)]))
    two_vertices = Outlines(10, 10, 1, good.ids, good.ring_offsets, np.array([0, 2]), good.vertices[:2])
    with pytest.raises(ValueError, match="3 or more vertices"):
        encode_outlines(two_vertices)
    no_ring = Outlines(10, 10, 1, good.ids, np.array([0, 0]), np.array([0]), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="exterior ring"):
        encode_outlines(no_ring)
    far = Outlines(10, 10, 1, good.ids, good.ring_offsets, good.vertex_offsets, good.vertices + 2.0**31)
    with pytest.raises(ValueError, match="within"):
        encode_outlines(far)


def test_every_truncation_is_refused() -> None:
    data = _sample()
    for length in range(len(data)):
        with pytest.raises(OutlinesFormatError):
            decode_outlines(data[:length])


@settings(max_examples=300, deadline=None)
@given(tail=st.binary(max_size=300), compressed=st.booleans())
def test_arbitrary_bytes_after_a_valid_start_never_raise_anything_else(tail: bytes, compressed: bool) -> None:
    start = MAGIC + struct.pack("<HH", 1, int(compressed))
    try:
        decoded = decode_outlines(start + tail)
    except OutlinesFormatError:
        return
    assert decoded.spheroid_count == 0  # only an empty file can be consistent by chance
