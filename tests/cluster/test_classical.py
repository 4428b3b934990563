"""The classical segmenter finds brightfield spheroids the way a biologist would outline them."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
from scipy import ndimage as ndi

from cluster.classical import ClassicalParams, ClassicalSegmenter
from cluster.exceptions import SegmentationError
from cluster.imaging import normalize
from cluster.segmenter import Segmenter
from cluster.synthetic import SceneConfig, generate_scene

MODERATE_LIGHT = dataclasses.replace(
    SceneConfig(),
    illumination_unevenness=(0.0, 0.06),
    vignetting=(0.0, 0.3),
    gradient=(0.0, 0.15),
    p_well_edge=0.2,
    well_radius_fraction=(0.55, 0.9),
)
"""The lighting the classical segmenter is tuned for (the ResUNet now trains under harsher light); the
seeds below were picked from it for what they show: one spheroid, a touching pair, a hollow one."""


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _matched_iou(labels: np.ndarray, truth: np.ndarray, label: int) -> float:
    """IoU of true instance ``label`` with the predicted instance that overlaps it most."""
    target = truth == label
    overlap = np.bincount(labels[target], minlength=labels.max() + 1)
    overlap[0] = 0
    if overlap.max() == 0:
        return 0.0
    return _iou(labels == overlap.argmax(), target)


@pytest.fixture(scope="module")
def segmenter() -> ClassicalSegmenter:
    return ClassicalSegmenter()


def test_implements_the_segmenter_protocol(segmenter: ClassicalSegmenter) -> None:
    assert isinstance(segmenter, Segmenter)
    assert segmenter.name == "classical"
    assert segmenter.parameters["working_size"] == ClassicalParams().working_size


@pytest.mark.parametrize("seed", [8, 12, 16])
def test_single_spheroid_outlined_closely(segmenter: ClassicalSegmenter, seed: int) -> None:
    scene = generate_scene(seed, (384, 512), MODERATE_LIGHT)
    assert scene.description["n_spheroids"] == 1
    (labels,) = segmenter.segment([normalize(scene.image)])
    assert labels.shape == scene.labels.shape and labels.dtype == np.int32
    assert _matched_iou(labels, scene.labels, 1) > 0.9


def test_touching_pair_is_split_in_two(segmenter: ClassicalSegmenter) -> None:
    scene = generate_scene(21, (384, 512), MODERATE_LIGHT)
    ((first, second),) = scene.description["touching_labels"]
    (labels,) = segmenter.segment([normalize(scene.image)])
    matched = {int(np.bincount(labels[scene.labels == lab]).argmax()) for lab in (first, second)}
    assert len(matched) == 2 and 0 not in matched
    assert min(_matched_iou(labels, scene.labels, lab) for lab in (first, second)) > 0.85


def test_hollow_spheroid_keeps_its_lumen(segmenter: ClassicalSegmenter) -> None:
    scene = generate_scene(6, (384, 512), MODERATE_LIGHT)
    (hollow,) = scene.description["hollow_labels"]
    ring = scene.labels == hollow
    lumen = ndi.binary_fill_holes(ring) & ~ring
    (labels,) = segmenter.segment([normalize(scene.image)])
    assert (labels[lumen] == 0).mean() > 0.9, "the lumen was filled"
    assert _matched_iou(labels, scene.labels, hollow) > 0.85


def _hollow_annulus_16bit(
    size: int = 512, outer: float = 170, inner: float = 60
) -> tuple[np.ndarray, np.ndarray]:
    """A 16-bit ring of granular tissue around a lumen of plain medium, under a gradient and vignetting.

    The lumen is exactly as bright and as smooth as the medium outside; the noise is 1 % of the signal,
    so it is stronger where the light is brighter, as a camera's is. Returns the image and the true ring.
    """
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:size, :size].astype(np.float32)
    radius = np.hypot(rows - size / 2, cols - size / 2)
    ring = (radius < outer) & (radius >= inner)
    grain = ndi.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), 1.5)
    transmission = np.where(ring, 0.55 * (1 + 0.05 * grain / grain.std()), 1.0)
    light = 0.85 + 0.15 * cols / size + 0.15 * (1 - (radius / (0.75 * size)) ** 2)
    counts = 40000 * transmission * light * (1 + 0.01 * rng.standard_normal((size, size)))
    return np.clip(counts, 0, 65535).astype(np.uint16), ring


def test_a_large_clear_lumen_under_uneven_light_stays_a_hole(segmenter: ClassicalSegmenter) -> None:
    """Its dark rim once read as texture: the lumen was filled and the area came out 15 % too large."""
    image, ring = _hollow_annulus_16bit()
    lumen = ndi.binary_fill_holes(ring) & ~ring
    (labels,) = segmenter.segment([normalize(image)])
    assert labels.max() == 1
    assert (labels[lumen] == 0).mean() > 0.95, "the lumen was filled"
    assert (labels > 0).sum() / ring.sum() == pytest.approx(1.0, abs=0.03)


def test_a_hollow_spheroid_is_one_spheroid_not_a_ring_of_pieces(segmenter: ClassicalSegmenter) -> None:
    """A thin ring once looked like many bodies joined by necks to the splitting, which cut it in ~15."""
    # a large hollow one and a pair, in the held-out ranges before radii of 10 px and border cuts
    before = dataclasses.replace(SceneConfig.held_out(), radius_px=(12.0, 1e9), p_border_cut=0.0)
    scene = generate_scene(900_000_016, (512, 512), before)
    (hollow,) = scene.description["hollow_labels"]
    (labels,) = segmenter.segment([normalize(scene.image)])
    assert labels.max() == scene.description["n_spheroids"] == 3
    assert _matched_iou(labels, scene.labels, hollow) > 0.85


def test_large_image_is_analysed_small_and_outlined_at_full_resolution(segmenter: ClassicalSegmenter) -> None:
    scene = generate_scene(12, (1536, 2048), MODERATE_LIGHT)
    (labels,) = segmenter.segment([normalize(scene.image)])
    assert labels.shape == (1536, 2048)
    assert _matched_iou(labels, scene.labels, 1) > 0.93


def test_blank_and_flat_images_have_no_spheroids(segmenter: ClassicalSegmenter) -> None:
    rng = np.random.default_rng(0)
    noise = normalize((1000 + 20 * rng.standard_normal((300, 400))).astype(np.float32))
    flat = np.zeros((300, 400), np.float32)
    assert [labels.max() for labels in segmenter.segment([noise, flat])] == [0, 0]


def test_bad_input_and_parameters_are_refused() -> None:
    with pytest.raises(SegmentationError, match="one grayscale plane"):
        ClassicalSegmenter().segment([np.zeros((40, 40, 3), np.float32)])
    with pytest.raises(SegmentationError, match=r"only 6 x 4 pixels.*Import the full-size image"):
        ClassicalSegmenter().segment([np.zeros((4, 6), np.float32)])
    with pytest.raises(SegmentationError, match="working_size"):
        ClassicalParams(working_size=10)


def test_travels_to_a_worker_intact(segmenter: ClassicalSegmenter) -> None:
    copy = pickle.loads(pickle.dumps(ClassicalSegmenter(ClassicalParams(threshold_z=5.0))))
    assert copy.params.threshold_z == 5.0
