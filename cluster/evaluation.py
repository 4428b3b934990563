"""Accuracy of segmentation methods against reference masks, per image and summarised.

Metrics of one image, from the method's label image (after the polygon path every user gets: labels →
polygons → rasterised again) and the reference labels:

=================  ========================================================================================
iou                foreground intersection over union, ``|P ∩ G| / |P ∪ G|`` (1 when both are empty)
dice               ``2 |P ∩ G| / (|P| + |G|)``
boundary_f1        F1 of boundary pixels matched within ``tolerance`` (2) px: precision is the share of
                   predicted boundary pixels within 2 px of a reference boundary, recall the converse
instance_f1        ``2 TP / (n_pred + n_ref)``, a true positive being a predicted spheroid with IoU > 0.5
                   against a reference spheroid (such a match is unique)
count_error        ``n_pred - n_ref``
area_error_pct     ``100 (|P| - |G|) / |G|`` (``None`` when the reference is empty)
small_iou          over the reference spheroids 10-20 px in equivalent radius (:data:`SMALL_RADII`) that were
                   found (matched at IoU > 0.5): the mean of their IoU with the predicted spheroid, so how
                   well small outlines are drawn (``None`` when none was found)
small_found        the share of those small reference spheroids that were found (``None`` when there are
                   none)
=================  ========================================================================================

A summary gives, per metric, the median, the mean and the mean of the five worst images (for the error
metrics, worst means the largest absolute error), over the images where the metric has a value; the two
small-spheroid figures are reported apart from the rest (:data:`SMALL_METRICS`). Instance F1 is also given
over the whole set (``"all"``: ``2 ΣTP / (Σn_pred + Σn_ref)``), as object-detection benchmarks count it:
a false spheroid in an image with one true spheroid costs that image's F1 a third, but the set's only one
match in the set's many. ``spheroseg evaluate`` prints them side by side.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from cluster.exceptions import SpherosegError
from cluster.imaging import IMAGE_SUFFIXES, ImageInfo, LoadedImage, read_image
from cluster.pipeline import segment_images
from cluster.polygons import spheroids_to_labels
from cluster.segmentation import image_stem
from cluster.segmenter import Segmenter

__all__ = [
    "HELD_OUT_SEED",
    "METRICS",
    "SMALL_METRICS",
    "SMALL_RADII",
    "EvaluationCase",
    "ImageScores",
    "MethodReport",
    "array_image",
    "compare",
    "evaluate",
    "held_out_cases",
    "load_cases",
    "paired_files",
    "read_mask",
    "score",
]

HELD_OUT_SEED = 900_000_000
"""First scene seed of the held-out synthetic set; training uses seeds below 1e6 per run seed."""

METRICS = ("iou", "dice", "boundary_f1", "instance_f1", "count_error", "area_error_pct")
SMALL_METRICS = ("small_iou", "small_found")
SMALL_RADII = (10.0, 20.0)
"""Equivalent radii (px, from ``low`` up to but not including ``high``) of the spheroids the small-spheroid
figures are about: where the working size of 256 px leaves the ResUNet's first pass fewest pixels."""
_ERRORS = {"count_error", "area_error_pct"}

Labels = NDArray[np.int32]


@dataclass(frozen=True)
class EvaluationCase:
    """One image with its reference instance labels."""

    name: str
    image: LoadedImage
    reference: Labels


@dataclass(frozen=True)
class ImageScores:
    """The metrics of one image (see the module docstring)."""

    name: str
    iou: float
    dice: float
    boundary_f1: float
    instance_f1: float
    count_error: int
    area_error_pct: float | None
    small_iou: float | None = None
    small_found: float | None = None
    seconds: float = 0.0
    matched: int = 0
    """Predicted spheroids matching a reference one (IoU > 0.5)."""
    predicted_count: int = 0
    reference_count: int = 0


@dataclass
class MethodReport:
    """Scores of one method on every image, and their summary."""

    method: str
    version: str
    images: list[ImageScores] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        """``{metric: {"median", "mean", "worst5"}}``; errors are summarised by absolute value."""
        result: dict[str, dict[str, float]] = {}
        for metric in (*METRICS, *SMALL_METRICS):
            values = [getattr(s, metric) for s in self.images if getattr(s, metric) is not None]
            if metric in _ERRORS:
                values = [abs(v) for v in values]
            if not values:
                result[metric] = {"median": math.nan, "mean": math.nan, "worst5": math.nan}
                continue
            ordered = sorted(values, reverse=metric in _ERRORS)
            result[metric] = {
                "median": float(statistics.median(values)),
                "mean": float(statistics.fmean(values)),
                "worst5": float(statistics.fmean(ordered[:5])),
            }
        result["instance_f1"]["all"] = self.instance_f1_all()
        seconds = [s.seconds for s in self.images]
        result["seconds"] = {
            "median": float(statistics.median(seconds)) if seconds else math.nan,
            "mean": float(statistics.fmean(seconds)) if seconds else math.nan,
            "worst5": float(statistics.fmean(sorted(seconds, reverse=True)[:5])) if seconds else math.nan,
        }
        return result

    def instance_f1_all(self) -> float:
        """Instance F1 over every spheroid of every image together (NaN without images)."""
        counted = sum(s.predicted_count + s.reference_count for s in self.images)
        if not self.images:
            return math.nan
        return 1.0 if counted == 0 else 2 * sum(s.matched for s in self.images) / counted

    def worst_images(self, n: int = 5) -> list[str]:
        return [s.name for s in sorted(self.images, key=lambda s: s.iou)[:n]]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: a summary value no image gave (NaN) is ``None``."""
        summary = {
            metric: {key: None if math.isnan(value) else value for key, value in values.items()}
            for metric, values in self.summary().items()
        }
        return {
            "method": self.method,
            "version": self.version,
            "summary": summary,
            "worst_images": self.worst_images(),
            "images": [asdict(s) for s in self.images],
        }


def _boundary_f1(predicted: Labels, reference: Labels, tolerance: float) -> float:
    pred_edge = find_boundaries(predicted, mode="inner")
    ref_edge = find_boundaries(reference, mode="inner")
    if not pred_edge.any() and not ref_edge.any():
        return 1.0
    if not pred_edge.any() or not ref_edge.any():
        return 0.0
    near_ref = ndi.distance_transform_edt(~ref_edge) <= tolerance
    near_pred = ndi.distance_transform_edt(~pred_edge) <= tolerance
    precision = float(near_ref[pred_edge].mean())
    recall = float(near_pred[ref_edge].mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _ious(predicted: Labels, reference: Labels) -> NDArray[np.float64]:
    """IoU of every reference instance (rows) with every predicted one (columns); labels compact 1..n."""
    n_pred, n_ref = int(predicted.max()), int(reference.max())
    joint = np.bincount(
        reference.ravel().astype(np.int64) * (n_pred + 1) + predicted.ravel(),
        minlength=(n_ref + 1) * (n_pred + 1),
    ).reshape(n_ref + 1, n_pred + 1)
    ref_area = joint.sum(axis=1)[1:, None]
    pred_area = joint.sum(axis=0)[None, 1:]
    overlap = joint[1:, 1:]
    union = ref_area + pred_area - overlap
    return np.asarray(overlap / np.maximum(union, 1), dtype=np.float64)


def _small_scores(ious: NDArray[np.float64], reference: Labels) -> tuple[float | None, float | None]:
    """``(small_iou, small_found)`` of the module docstring (``reference`` compact 1..n)."""
    radii = np.sqrt(np.bincount(reference.ravel())[1:] / math.pi)
    small = (radii >= SMALL_RADII[0]) & (radii < SMALL_RADII[1])
    if not small.any():
        return None, None
    best = ious.max(axis=1) if ious.shape[1] else np.zeros(ious.shape[0])
    found = best[small][best[small] > 0.5]
    return (float(found.mean()) if found.size else None), found.size / int(small.sum())


def score(name: str, predicted: Labels, reference: Labels, tolerance: float = 2.0) -> ImageScores:
    """All metrics of one image (see the module docstring)."""
    if predicted.shape != reference.shape:
        raise ValueError(
            f"{name}: prediction {predicted.shape} and reference {reference.shape} differ in shape"
        )
    pred_fg, ref_fg = predicted > 0, reference > 0
    intersection = int((pred_fg & ref_fg).sum())
    pred_area, ref_area = int(pred_fg.sum()), int(ref_fg.sum())
    union = pred_area + ref_area - intersection
    n_pred = len(np.unique(predicted[pred_fg]))
    n_ref = len(np.unique(reference[ref_fg]))
    reference_compact = _compact(reference)
    ious = _ious(_compact(predicted), reference_compact)
    matched = int((ious > 0.5).sum())  # a match at IoU > 0.5 is one-to-one
    small_iou, small_found = _small_scores(ious, reference_compact)
    return ImageScores(
        name=name,
        iou=1.0 if union == 0 else intersection / union,
        dice=1.0 if pred_area + ref_area == 0 else 2 * intersection / (pred_area + ref_area),
        boundary_f1=_boundary_f1(predicted, reference, tolerance),
        instance_f1=1.0 if n_pred + n_ref == 0 else 2 * matched / (n_pred + n_ref),
        count_error=n_pred - n_ref,
        area_error_pct=None if ref_area == 0 else 100.0 * (pred_area - ref_area) / ref_area,
        small_iou=small_iou,
        small_found=small_found,
        matched=matched,
        predicted_count=n_pred,
        reference_count=n_ref,
    )


def _compact(labels: Labels) -> Labels:
    values, inverse = np.unique(labels, return_inverse=True)
    if values[0] != 0:
        inverse = inverse + 1
    return inverse.reshape(labels.shape).astype(np.int32)


def evaluate(
    cases: Iterable[EvaluationCase], segmenter: Segmenter, tolerance: float = 2.0, via_polygons: bool = True
) -> MethodReport:
    """Segment every case with ``segmenter`` and score it; ``via_polygons`` scores what users get (the
    outlines rasterised again) rather than the segmenter's raw labels."""
    from cluster.imaging import normalize

    report = MethodReport(segmenter.name, segmenter.version)
    for case in cases:
        started = time.perf_counter()
        shape = (case.reference.shape[0], case.reference.shape[1])
        if via_polygons:
            (segmentation,) = segment_images([case.image], segmenter)
            predicted = spheroids_to_labels(segmentation.spheroids, shape)
        else:
            (predicted,) = segmenter.segment([normalize(case.image.pixels)])
        seconds = time.perf_counter() - started
        scores = score(case.name, predicted, case.reference, tolerance)
        report.images.append(replace(scores, seconds=seconds))
    return report


def read_mask(path: Path) -> Labels:
    """A mask file as instance labels: a label image stays as it is, a binary mask (two values, or
    0/255) is split into its connected components."""
    values = np.asarray(read_image(path).pixels)
    if values.ndim != 2:
        raise SpherosegError(f"{path}: a mask must be a single grayscale plane")
    unique = np.unique(values)
    if unique.size <= 2:
        labels, _ = ndi.label(values > unique.min() if unique.size == 2 else values > 0)
        return np.asarray(labels, dtype=np.int32)
    return values.astype(np.int32)


def paired_files(images: Path, masks: Path) -> list[tuple[Path, Path]]:
    """Images of a folder with the mask of the same stem in another folder (images without one skipped)."""
    by_stem = {image_stem(p.name): p for p in sorted(masks.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    pairs = []
    for image in sorted(images.iterdir()):
        stem = image_stem(image.name)
        if image.suffix.lower() in IMAGE_SUFFIXES and not image.name.startswith(".") and stem in by_stem:
            pairs.append((image, by_stem[stem]))
    return pairs


def load_cases(images: Path, masks: Path) -> Iterator[EvaluationCase]:
    """Cases from a folder of images and a folder of masks named by the images' stems (read lazily)."""
    pairs = paired_files(images, masks)
    if not pairs:
        raise SpherosegError(f"no image in {images} has a mask with the same stem in {masks}")
    for image_path, mask_path in pairs:
        image = read_image(image_path)
        reference = read_mask(mask_path)
        if reference.shape != image.pixels.shape[:2]:
            raise SpherosegError(f"{mask_path}: mask is {reference.shape}, image is {image.pixels.shape[:2]}")
        yield EvaluationCase(image_path.name, image, reference)


def held_out_cases(
    n: int, shape: tuple[int, int] = (512, 512), first_seed: int = HELD_OUT_SEED
) -> list[EvaluationCase]:
    """The held-out synthetic set: ``n`` scenes of :meth:`SceneConfig.held_out` (shapes, crowding, cameras
    and halos beyond the training ranges) from seeds no training run uses."""
    from cluster.synthetic import SceneConfig, generate_scene

    config = SceneConfig.held_out()
    cases = []
    for seed in range(first_seed, first_seed + n):
        scene = generate_scene(seed, shape, config)
        cases.append(
            EvaluationCase(f"held-out-{seed}", array_image(f"held-out-{seed}", scene.image), scene.labels)
        )
    return cases


def array_image(name: str, pixels: NDArray[Any], pixel_size_um: float | None = None) -> LoadedImage:
    """A :class:`LoadedImage` of pixels already in memory (as if read from a TIFF)."""
    info = ImageInfo(
        name=name,
        format="tiff",
        width=int(pixels.shape[1]),
        height=int(pixels.shape[0]),
        bit_depth=int(pixels.dtype.itemsize * 8),
        dtype=str(pixels.dtype),
        channels=1,
        pages=1,
        pixel_size_um=pixel_size_um,
    )
    return LoadedImage(info, pixels)


def compare(reports: Sequence[MethodReport]) -> dict[str, Any]:
    """The JSON document ``spheroseg evaluate --json`` writes."""
    return {"methods": [r.to_dict() for r in reports], "metrics": [*METRICS, *SMALL_METRICS]}
