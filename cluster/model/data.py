"""Training samples: synthetic scenes made on the fly, real image/mask pairs, and augmentation.

A :class:`Sample` is one image at working resolution with its two targets (see :mod:`.targets`). The
synthetic stream is a pure function of ``(seed, index)``, so a run resumed from a checkpoint sees exactly the
samples an uninterrupted run would. Real data comes from a folder of image/mask pairs
(:func:`load_pairs`) or from a COCO or GeoJSON export (:func:`load_export`), turned into samples once.

Augmentation (:func:`augment`) adds what the generator does not vary or what a new microscope changes:
flips and transposes, uneven lighting (:func:`relight`), gamma, contrast and offset jitter, extra blur and
noise, and coarse quantisation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from cluster.evaluation import paired_files, read_mask
from cluster.imaging import IMAGE_SUFFIXES, normalize, read_image
from cluster.model.exceptions import TrainingDataError
from cluster.model.targets import area_resize, make_targets, working_shape
from cluster.segmentation import image_stem
from cluster.synthetic import SceneConfig, generate_scene
from cluster.synthetic.fields import smooth_noise

__all__ = [
    "Sample",
    "augment",
    "load_export",
    "load_pairs",
    "make_sample",
    "random_crop",
    "relight",
    "synthetic_sample",
]

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float32]
LabelArray = NDArray[np.int32]


@dataclass(frozen=True)
class Sample:
    """An image at working resolution (float32, about 0..1) and its foreground and core targets."""

    image: FloatArray
    foreground: FloatArray
    core: FloatArray


def make_sample(pixels: NDArray[np.generic], labels: LabelArray, working_size: int) -> Sample:
    """Normalise full-resolution ``pixels`` as inference does, shrink to working size, make targets."""
    if pixels.shape != labels.shape:
        raise TrainingDataError(f"image shape {pixels.shape} and mask shape {labels.shape} differ")
    shape = working_shape((pixels.shape[0], pixels.shape[1]), working_size)
    image = area_resize(normalize(pixels), shape)
    foreground, core = make_targets(labels, shape)
    return Sample(image, foreground, core)


def synthetic_sample(
    seed: int,
    working_size: int,
    config: SceneConfig | None = None,
    size_range: tuple[float, float] = (1.0, 3.0),
) -> Sample:
    """The sample of synthetic scene ``seed``: its long side is ``working_size`` times a factor drawn
    log-uniformly from ``size_range``, its aspect ratio between 1:1 and 1:1.6, either way round."""
    rng = np.random.default_rng([seed, 0x5E6])
    factor = math.exp(rng.uniform(math.log(size_range[0]), math.log(size_range[1])))
    long_side = max(64, round(working_size * factor))
    short_side = max(64, round(long_side / rng.uniform(1.0, 1.6)))
    shape = (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)
    scene = generate_scene(seed, shape, config or SceneConfig.training())
    return make_sample(scene.image, scene.labels, working_size)


def augment(sample: Sample, rng: np.random.Generator) -> Sample:
    """A randomly flipped, transposed and photometrically changed copy of ``sample``."""
    image, foreground, core = sample.image, sample.foreground, sample.core
    if rng.random() < 0.5:
        image, foreground, core = image[:, ::-1], foreground[:, ::-1], core[:, ::-1]
    if rng.random() < 0.5:
        image, foreground, core = image[::-1], foreground[::-1], core[::-1]
    if rng.random() < 0.5:
        image, foreground, core = image.T, foreground.T, core.T
    image = np.array(image, dtype=np.float32)
    if rng.random() < 0.5:
        image = relight(image, rng)
    if rng.random() < 0.3:
        image = ndi.gaussian_filter(image, rng.uniform(0.3, 1.2)).astype(np.float32)
    if rng.random() < 0.5:
        image = np.power(np.clip(image, 0.0, 1.0), np.exp(rng.normal(0.0, 0.3))).astype(np.float32)
    if rng.random() < 0.5:
        image = image * np.float32(rng.uniform(0.8, 1.15)) + np.float32(rng.uniform(-0.08, 0.08))
    if rng.random() < 0.3:
        image = image + rng.normal(0.0, rng.uniform(0.005, 0.04), image.shape).astype(np.float32)
    if rng.random() < 0.15:
        levels = float(rng.integers(16, 64))
        image = np.asarray(np.round(image * np.float32(levels)) / np.float32(levels), dtype=np.float32)
    image = np.clip(image, -0.1, 1.1).astype(np.float32)
    return Sample(image, np.ascontiguousarray(foreground), np.ascontiguousarray(core))


def relight(image: FloatArray, rng: np.random.Generator) -> FloatArray:
    """``image`` under uneven light: times a smooth field (blotches a third to two thirds of the image
    across, up to 45% deep, and vignetting up to 40%), then stretched again as inference stretches it.

    The second stretch is the point: with one small spheroid in the field, the darkest part of the
    background becomes the darkest thing the network sees, and the shipped model once called such
    regions spheroids (docs/model-failures.md).
    """
    height, width = image.shape
    side = float(max(height, width))
    light = 1 + np.float32(rng.uniform(0.0, 0.45)) * smooth_noise(
        rng, (height, width), side * rng.uniform(0.3, 0.7)
    )
    cy, cx = height * rng.uniform(0.0, 1.0), width * rng.uniform(0.0, 1.0)
    y = (np.arange(height, dtype=np.float32) - np.float32(cy)) ** 2
    x = (np.arange(width, dtype=np.float32) - np.float32(cx)) ** 2
    distance = y[:, None] + x[None, :]
    light *= 1 - np.float32(rng.uniform(0.0, 0.4)) * distance / distance.max()
    lit: FloatArray = normalize(image * np.maximum(light, np.float32(0.05)))
    return lit


def random_crop(sample: Sample, size: int, rng: np.random.Generator) -> Sample:
    """A random ``size`` x ``size`` window of ``sample`` (sides already shorter are kept whole)."""
    height, width = sample.image.shape
    top = int(rng.integers(0, max(height - size, 0) + 1))
    left = int(rng.integers(0, max(width - size, 0) + 1))
    window = (slice(top, top + size), slice(left, left + size))
    return Sample(sample.image[window], sample.foreground[window], sample.core[window])


def load_pairs(images: Path, masks: Path, working_size: int) -> list[Sample]:
    """Samples from a folder of images and a folder of masks named by the images' stems."""
    pairs = paired_files(images, masks)
    if not pairs:
        raise TrainingDataError(f"no image in {images} has a mask with the same stem in {masks}")
    return [make_sample(read_image(i).pixels, read_mask(m), working_size) for i, m in pairs]


def load_export(annotations: Path, images: Path, working_size: int) -> list[Sample]:
    """Samples from a COCO (``.json``) or GeoJSON (a ``.geojson`` file or a folder of them) export of
    reviewed segmentations, with the image files in ``images`` (found by the segmentation's stem)."""
    from cluster.exports import read_coco, read_geojson
    from cluster.polygons import spheroids_to_labels

    if annotations.is_dir():
        segmentations = [read_geojson(p) for p in sorted(annotations.glob("*.geojson"))]
    elif annotations.suffix.lower() == ".geojson":
        segmentations = [read_geojson(annotations)]
    else:
        segmentations = read_coco(annotations)
    files = {image_stem(p.name): p for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    samples = []
    for segmentation in segmentations:
        path = files.get(segmentation.stem)
        if path is None:
            log.warning("no image file for %s in %s; skipped", segmentation.image_name, images)
            continue
        pixels = read_image(path).pixels
        labels = spheroids_to_labels(segmentation.spheroids, (pixels.shape[0], pixels.shape[1]))
        samples.append(make_sample(pixels, labels, working_size))
    if not samples:
        raise TrainingDataError(f"no segmentation in {annotations} matches an image file in {images}")
    return samples


def batch_arrays(samples: Sequence[Sample], size: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Stack samples into ``(N, 1, size, size)`` arrays: images (edge-padded), targets (two channels),
    and a validity mask that is 0 on the padding, so the loss ignores it."""
    n = len(samples)
    images = np.zeros((n, 1, size, size), dtype=np.float32)
    targets = np.zeros((n, 2, size, size), dtype=np.float32)
    valid = np.zeros((n, 1, size, size), dtype=np.float32)
    for i, sample in enumerate(samples):
        h, w = sample.image.shape
        if h > size or w > size:
            raise TrainingDataError(f"a sample of {h}x{w} does not fit a {size}x{size} batch")
        images[i, 0] = np.pad(sample.image, ((0, size - h), (0, size - w)), mode="edge")
        targets[i, 0, :h, :w] = sample.foreground
        targets[i, 1, :h, :w] = sample.core
        valid[i, 0, :h, :w] = 1.0
    return images, targets, valid
