"""No well wall, fibre or scratch is a spheroid; thin rings still are (issue 14, part 2).

The decoding is tested on probability maps drawn here, as the network answers on such things (a band of
high foreground with a core along its middle), and the shipped network on drawn images of a dark arc running
off the image beside a spheroid.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage as ndi

from cluster.evaluation import score
from cluster.model.decoding import instances_at_working_resolution
from cluster.model.targets import core_target
from cluster.polygons import labels_to_spheroids
from cluster.segmenter import LabelImage
from tests.cluster.drawn_scenes import drawn_image

SHAPE = (256, 256)


def _grid() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rows, cols = np.indices(SHAPE)
    return rows + 0.5, cols + 0.5


def _ring(centre: tuple[float, float], outer: float, inner: float) -> NDArray[np.bool_]:
    rows, cols = _grid()
    radius = np.hypot(rows - centre[0], cols - centre[1])
    return np.asarray((radius < outer) & (radius >= inner), dtype=bool)


def _disc(centre: tuple[float, float], radius: float) -> NDArray[np.bool_]:
    return _ring(centre, radius, -1.0)


def _wall(width: float) -> NDArray[np.bool_]:
    """The wall of a well whose centre lies far below the image: an arc across it, off both sides."""
    return _ring((380.0, 100.0), 300.0 + width, 300.0)


def _decoded(*masks: NDArray[np.bool_]) -> NDArray[np.int32]:
    """Decode soft foreground and core probabilities of ``masks`` (each with its trained core)."""
    foreground = np.zeros(SHAPE, dtype=np.float32)
    core = np.zeros(SHAPE, dtype=np.float32)
    for mask in masks:
        foreground = np.maximum(foreground, mask.astype(np.float32))
        core = np.maximum(core, core_target(mask.astype(np.int32)).astype(np.float32))
    foreground = ndi.gaussian_filter(foreground, 0.7)
    core = ndi.gaussian_filter(core, 0.7)
    return instances_at_working_resolution(foreground, core)


def _only(labels: NDArray[np.int32], mask: NDArray[np.bool_]) -> float:
    """IoU of the one instance of ``labels`` with ``mask``."""
    assert labels.max() == 1
    found = labels > 0
    return float((found & mask).sum() / (found | mask).sum())


@pytest.mark.parametrize("width", [3.0, 6.0, 10.0, 16.0])
def test_a_well_wall_running_off_the_image_is_no_spheroid(width: float) -> None:
    wall = _wall(width)
    assert wall[:, 0].any() and wall[:, -1].any()  # it runs off the image on both sides
    spheroid = _disc((30.0, 200.0), 25.0)
    assert _only(_decoded(wall, spheroid), spheroid) > 0.95


@pytest.mark.parametrize(("length", "width"), [(150.0, 3.0), (200.0, 6.0), (90.0, 4.0)])
def test_a_fibre_or_scratch_is_no_spheroid(length: float, width: float) -> None:
    rows, cols = _grid()
    along = (rows - 128) * np.cos(0.5) + (cols - 128) * np.sin(0.5)
    across = -(rows - 128) * np.sin(0.5) + (cols - 128) * np.cos(0.5)
    fibre = np.asarray((np.abs(along) < length / 2) & (np.abs(across) < width / 2), dtype=bool)
    spheroid = _disc((40.0, 40.0), 20.0)
    assert _only(_decoded(fibre, spheroid), spheroid) > 0.95


@pytest.mark.parametrize(("outer", "inner"), [(60.0, 55.0), (80.0, 74.0), (40.0, 36.0)])
def test_a_thin_hollow_spheroid_is_kept_with_its_lumen(outer: float, inner: float) -> None:
    ring = _ring((128.0, 128.0), outer, inner)
    labels = _decoded(ring)
    assert _only(labels, ring) > 0.9
    (spheroid,) = labels_to_spheroids(labels)
    assert len(spheroid.holes) == 1


@pytest.mark.parametrize("gap", [4.0, 10.0])
def test_a_thin_ring_left_open_where_its_wall_faded_is_kept(gap: float) -> None:
    """The network's foreground fell under the threshold across the wall: no hole, but it bends as a ring."""
    rows, cols = _grid()
    ring = _ring((128.0, 128.0), 60.0, 54.0) & ~((np.abs(cols - 128.0) < gap / 2) & (rows < 128.0))
    assert ndi.label(ring)[1] == 1 and not (ndi.binary_fill_holes(ring) & ~ring).any()
    assert _only(_decoded(ring), ring) > 0.9


@pytest.mark.parametrize(
    ("centre", "outer", "inner"), [((128.0, 20.0), 60.0, 52.0), ((-5.0, 128.0), 70.0, 60.0)]
)
def test_a_thin_ring_cut_by_the_border_is_kept(
    centre: tuple[float, float], outer: float, inner: float
) -> None:
    """Its lumen opens onto the border, so it has no hole: it is kept because it bends like a ring."""
    ring = _ring(centre, outer, inner)
    assert not (ndi.binary_fill_holes(ring) & ~ring).any()
    assert _only(_decoded(ring), ring) > 0.9


@pytest.mark.parametrize(
    ("centre", "radius"),
    [((5.0, 128.0), 40.0), ((128.0, 10.0), 40.0), ((-180.0, 128.0), 200.0), ((128.0, 440.0), 200.0)],
    ids=["half-top", "half-left", "thin-slice-top", "thin-slice-right"],
)
def test_a_spheroid_cut_by_the_border_is_kept(centre: tuple[float, float], radius: float) -> None:
    """Even a slice of a large one, 20 px deep and 180 long: the border cuts it, it is not a band."""
    spheroid = _disc(centre, radius)
    assert _only(_decoded(spheroid), spheroid) > 0.95


def _wall_beside_a_spheroid(
    width: float,
) -> tuple[NDArray[np.uint16], NDArray[np.bool_], NDArray[np.bool_]]:
    """A 512² image of a well's wall ``width`` px wide running off it beside a spheroid 50 px in radius,
    with the wall's and the spheroid's masks."""
    shape = (512, 512)
    rows, cols = np.indices(shape) + 0.5
    distance = np.hypot(rows - 700.0, cols - 150.0)
    wall = (distance > 480.0) & (distance < 480.0 + width)
    spheroid = np.hypot(rows - 130.0, cols - 330.0) < 50.0
    return drawn_image([(wall, 0.9), (spheroid, 0.9)], shape), wall, spheroid


@pytest.mark.parametrize("width", [8.0, 16.0, 30.0])
def test_the_shipped_network_reports_the_spheroid_and_not_the_wall(width: float) -> None:
    """Resunet 1.1 fired on a dark band it never saw in training (walls 16 and 30 px wide: a spheroid
    each) until decoding step 4 dropped bands; whatever model is shipped, only the spheroid comes out."""
    pytest.importorskip("torch")
    from cluster.imaging import normalize
    from cluster.methods import make_segmenter

    image, _wall, spheroid = _wall_beside_a_spheroid(width)
    labels: LabelImage = make_segmenter("resunet", device="cpu").segment([normalize(image)])[0]
    assert labels.max() == 1
    assert ((labels > 0) & spheroid).sum() / ((labels > 0) | spheroid).sum() > 0.95


@pytest.mark.parametrize("width", [4.0, 8.0, 16.0, 30.0])
def test_the_newest_network_ignores_the_wall_even_without_the_band_filter(width: float) -> None:
    """Fixed at the root: resunet 2 learnt from fibres and bands drawn in its training scenes (resunet 1,
    without decoding step 4, called walls 16 and 30 px wide spheroids of 9,500 and 17,000 px)."""
    pytest.importorskip("torch")
    from cluster.imaging import normalize
    from cluster.methods import make_segmenter

    image, wall, _spheroid = _wall_beside_a_spheroid(width)
    segmenter = make_segmenter("resunet", device="cpu", model="resunet-v2", max_thinness=1e6)
    labels: LabelImage = segmenter.segment([normalize(image)])[0]
    assert labels.max() == 1 and not (labels > 0)[wall].any()


@pytest.mark.parametrize("size", [512, 1024])
@pytest.mark.parametrize("lumen", [0.6, 0.75, 0.85, 0.92])
def test_the_shipped_network_finds_a_thin_walled_hollow_spheroid_whole_with_its_lumen(
    size: int, lumen: float
) -> None:
    """A ring is no fibre: a first resunet 2 that learnt fibres from arcs as bent as a spheroid's wall
    found nothing at all on walls under a sixth of the radius, and split those of a quarter in two. The
    outline's place is judged by boundary F1 at 2 px: on the thinnest wall (12 px at 512²) a 1 px shift
    costs 8% of IoU (2.2 there: IoU 0.90, boundary F1 0.92-0.95; 2.1: 0.94, 0.98)."""
    pytest.importorskip("torch")
    from cluster.imaging import normalize
    from cluster.methods import make_segmenter

    rows, cols = np.indices((size, size)) + 0.5
    radius = np.hypot(rows - size / 2, cols - size / 2)
    ring = (radius < 0.3 * size) & (radius > 0.3 * size * lumen)
    image = drawn_image([(ring, 0.9)], (size, size))
    labels: LabelImage = make_segmenter("resunet", device="cpu").segment([normalize(image)])[0]
    (spheroid,) = labels_to_spheroids(labels)
    assert len(spheroid.holes) == 1
    scores = score("ring", labels, ring.astype(np.int32))
    assert scores.boundary_f1 > 0.9 and scores.iou > 0.85
