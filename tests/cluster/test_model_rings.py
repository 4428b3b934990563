"""A hollow spheroid is one spheroid with a hole; touching spheroids are still two (issue 14, part 1).

The ResUNet's decoding is tested on probability maps drawn here: a ring whose core band the network broke
into arcs (what it does where a wall is thin or faint), alone and touching a disc, among other layouts.
The classical path is tested on drawn images, and the shipped network on one drawn scene.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage as ndi

from cluster.classical import ClassicalSegmenter
from cluster.imaging import normalize
from cluster.model.decoding import instances_at_working_resolution
from cluster.model.targets import core_target
from cluster.polygons import labels_to_spheroids

SHAPE = (200, 260)


def _grid() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rows, cols = np.indices(SHAPE)
    return rows.astype(np.float64), cols.astype(np.float64)


def _ring(centre: tuple[float, float], outer: float, inner: float) -> NDArray[np.bool_]:
    rows, cols = _grid()
    radius = np.hypot(rows - centre[0], cols - centre[1])
    return np.asarray((radius < outer) & (radius >= inner), dtype=bool)


def _disc(centre: tuple[float, float], radius: float) -> NDArray[np.bool_]:
    return _ring(centre, radius, -1.0)


def _broken_ring_core(ring: NDArray[np.bool_], centre: tuple[float, float], breaks: int) -> NDArray[np.bool_]:
    """The ring's core band (as trained), cut across at ``breaks`` evenly spaced angles."""
    core = core_target(ring.astype(np.int32))
    rows, cols = _grid()
    angle = np.arctan2(rows - centre[0], cols - centre[1])
    phase = np.mod(angle * breaks / (2 * np.pi), 1.0)
    return np.asarray(core & (phase > 0.12) & (phase < 0.88), dtype=bool)


def _decoded(*parts: tuple[NDArray[np.bool_], NDArray[np.bool_]]) -> NDArray[np.int32]:
    """Decode foreground and core probabilities made of ``(mask, core)`` parts (soft, as a network's)."""
    foreground = np.zeros(SHAPE, dtype=np.float32)
    core = np.zeros(SHAPE, dtype=np.float32)
    for mask, part_core in parts:
        foreground = np.maximum(foreground, mask.astype(np.float32))
        core = np.maximum(core, part_core.astype(np.float32))
    foreground = ndi.gaussian_filter(foreground, 0.7)
    core = ndi.gaussian_filter(core, 0.7)
    return instances_at_working_resolution(foreground, core)


def _holes(labels: NDArray[np.int32], label: int) -> int:
    (spheroid,) = labels_to_spheroids(labels == label)
    return len(spheroid.holes)


def _owner(labels: NDArray[np.int32], mask: NDArray[np.bool_]) -> int:
    return int(np.bincount(labels[mask]).argmax())


RINGS = [(70.0, 62.0), (70.0, 58.0), (70.0, 50.0), (60.0, 30.0), (45.0, 37.0), (45.0, 20.0)]
"""(outer, inner) radii in working pixels: walls of 8 to 30 px, lumens from a third to nine tenths across."""


@pytest.mark.parametrize(("outer", "inner"), RINGS)
@pytest.mark.parametrize("breaks", [2, 7])
def test_a_ring_whose_core_broke_is_one_spheroid_with_one_hole(
    outer: float, inner: float, breaks: int
) -> None:
    centre = (100.0, 110.0)
    ring = _ring(centre, outer, inner)
    core = _broken_ring_core(ring, centre, breaks)
    assert ndi.label(core)[1] == breaks  # the network's cores: one arc per piece
    labels = _decoded((ring, core))
    assert labels.max() == 1
    assert _holes(labels, 1) == 1
    lumen = _disc(centre, inner - 2)
    assert (labels[lumen] == 0).all()


@pytest.mark.parametrize(("outer", "inner"), [(60.0, 52.0), (60.0, 40.0), (55.0, 25.0)])
def test_a_ring_touching_a_disc_is_two_spheroids_the_ring_with_its_hole(outer: float, inner: float) -> None:
    centre = (100.0, 90.0)
    ring = _ring(centre, outer, inner)
    disc_radius = 35.0
    disc = _disc((100.0, 90.0 + outer + disc_radius - 4), disc_radius) & ~ring
    ring_core = _broken_ring_core(ring, centre, 7)
    disc_core = core_target(disc.astype(np.int32))
    labels = _decoded((ring, ring_core), (disc, disc_core))
    assert labels.max() == 2
    ring_label, disc_label = _owner(labels, ring), _owner(labels, disc)
    assert ring_label != disc_label
    assert (labels[ring] == ring_label).mean() > 0.95 and (labels[disc] == disc_label).mean() > 0.9
    assert _holes(labels, ring_label) == 1 and _holes(labels, disc_label) == 0


def test_two_touching_discs_are_still_two() -> None:
    first = _disc((100.0, 80.0), 45.0)
    second = _disc((100.0, 160.0), 40.0) & ~first
    labels = _decoded(
        (first, core_target(first.astype(np.int32))), (second, core_target(second.astype(np.int32)))
    )
    assert labels.max() == 2 and _owner(labels, first) != _owner(labels, second)


@pytest.mark.parametrize("spacing", [58.0, 51.0])
def test_discs_touching_round_a_gap_of_medium_stay_apart(spacing: float) -> None:
    """Four discs in a square enclose a hole of the foreground, but they meet at necks (at 51 px apart a
    neck as wide as their radius, and then the gap is small next to them): no ring."""
    radius = 30.0
    half = spacing / 2
    centres = [(100.0 + dr, 130.0 + dc) for dr in (-half, half) for dc in (-half, half)]
    discs: list[NDArray[np.bool_]] = []
    taken = np.zeros(SHAPE, dtype=bool)
    for centre in centres:
        disc = _disc(centre, radius) & ~taken
        taken |= disc
        discs.append(disc)
    union = np.logical_or.reduce(discs)
    assert ndi.label(ndi.binary_fill_holes(union) & ~union)[1] == 1  # they enclose a gap
    labels = _decoded(*[(disc, core_target(disc.astype(np.int32))) for disc in discs])
    assert labels.max() == 4
    assert len({_owner(labels, disc) for disc in discs}) == 4


def _drawn_image(masks: list[NDArray[np.bool_]], seed: int = 0) -> NDArray[np.uint16]:
    """Granular dark tissue on a bright medium, blurred and noisy, as a 16-bit camera would record it."""
    rng = np.random.default_rng(seed)
    tissue = np.logical_or.reduce(masks)
    grain = ndi.gaussian_filter(rng.standard_normal(SHAPE), 1.5)
    transmission = np.where(tissue, 0.55 * (1 + 0.05 * grain / grain.std()), 1.0)
    transmission = ndi.gaussian_filter(transmission, 1.0)
    counts = 30000 * transmission * (1 + 0.01 * rng.standard_normal(SHAPE))
    return np.clip(counts, 0, 65535).astype(np.uint16)


@pytest.mark.parametrize(("outer", "inner"), [(70.0, 55.0), (70.0, 40.0), (60.0, 25.0)])
def test_the_classical_path_keeps_a_ring_touching_a_disc_as_two(outer: float, inner: float) -> None:
    centre = (100.0, 85.0)
    ring = _ring(centre, outer, inner)
    disc = _disc((100.0, 85.0 + outer + 38.0), 42.0) & ~ring
    (labels,) = ClassicalSegmenter().segment([normalize(_drawn_image([ring, disc]))])
    assert labels.max() == 2
    ring_label, disc_label = _owner(labels, ring), _owner(labels, disc)
    assert {ring_label, disc_label} == {1, 2}
    assert _holes(labels, ring_label) == 1 and _holes(labels, disc_label) == 0
