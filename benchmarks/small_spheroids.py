"""Small spheroids: the first and the second shipped model, each without and with the second look at a
finer scale (``cluster.model.refinement``), in one run.

1. **Accuracy.** The held-out synthetic set (``SceneConfig.held_out()``, 512², seeds 900000000..) through
   polygons, as ``spheroseg evaluate`` scores it, for resunet-v1 and resunet-v2, each with ``refine_small``
   off (the first pass alone) and on. For the reference spheroids 10-20, 20-35 and 35 px or more in equivalent
   radius: how many there are, the share found (a predicted spheroid with IoU > 0.5) and the median and
   mean IoU of those found, and for the small ones again in the scenes as sharp as the training scenes
   (PSF sigma at most 1.5 px; the held-out PSF reaches 2.5 px, defocus 4); and the whole images' mean IoU,
   boundary F1 and instance F1.
2. **Time.** End-to-end ms per image (read a 16-bit TIFF, normalise, segment, polygons, metrics) of 1024²
   held-out scenes, resunet-v1's first pass alone (what a job ran before the second look) and resunet-v2
   refined (what a job runs now) in turn (the order alternating) after a warm-up round, the median of each
   and of the per-image ratio; and how many crops the scenes got. On a shared machine compare the ratio,
   not the absolute numbers.

Prints a table and writes benchmarks/results/small_spheroids.json.

Usage: python benchmarks/small_spheroids.py [--scenes 150] [--timed 6] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch
from numpy.typing import NDArray

from cluster.evaluation import HELD_OUT_SEED, held_out_cases, score
from cluster.imaging import normalize, read_image
from cluster.model.refinement import refinement_windows
from cluster.model.segmenter import ResUNetParams, ResUNetSegmenter
from cluster.pipeline import segment_images
from cluster.polygons import spheroids_to_labels
from cluster.synthetic import SceneConfig, generate_scene

RESULTS = Path(__file__).resolve().parent / "results"
BANDS = ((10.0, 20.0), (20.0, 35.0), (35.0, math.inf))
"""Equivalent radii (px) the spheroids are reported in."""
HELD_OUT = SceneConfig.held_out()
SHARP_PSF = 1.5
"""Scenes blurred by a PSF no wider (sigma, px) than the training scenes' are also reported apart."""


def best_ious(predicted: NDArray[np.int32], reference: NDArray[np.int32]) -> list[tuple[float, float]]:
    """``(equivalent radius, best IoU with a predicted spheroid)`` of every reference spheroid."""
    n_pred = int(predicted.max())
    result = []
    for label in np.unique(reference[reference > 0]):
        mask = reference == label
        area = int(mask.sum())
        counts = np.bincount(predicted[mask], minlength=n_pred + 1)
        best = 0.0
        for found in np.nonzero(counts[1:])[0] + 1:
            union = area + int((predicted == found).sum()) - int(counts[found])
            best = max(best, counts[found] / union)
        result.append((math.sqrt(area / math.pi), best))
    return result


def accuracy(segmenter: ResUNetSegmenter, scenes: int) -> dict[str, Any]:
    spheroids: list[tuple[float, float]] = []
    sharp: list[tuple[float, float]] = []
    images = []
    for index, case in enumerate(held_out_cases(scenes)):
        (segmentation,) = segment_images([case.image], segmenter)
        predicted = spheroids_to_labels(segmentation.spheroids, case.reference.shape)
        found = best_ious(predicted, case.reference)
        spheroids += found
        blur = generate_scene(HELD_OUT_SEED + index, (512, 512), HELD_OUT).description["psf_sigma_px"]
        if blur <= SHARP_PSF:
            sharp += found
        images.append(score(case.name, predicted, case.reference))
    row: dict[str, Any] = {
        "image_iou_mean": statistics.fmean(s.iou for s in images),
        "image_boundary_f1_mean": statistics.fmean(s.boundary_f1 for s in images),
        "image_instance_f1_mean": statistics.fmean(s.instance_f1 for s in images),
    }
    for low, high in BANDS:
        name = f"{low:g}-{high:g}px" if high < math.inf else f"{low:g}px+"
        row[name] = _band(spheroids, low, high)
    row["10-20px_sharp"] = _band(sharp, *BANDS[0])
    return row


def _band(spheroids: list[tuple[float, float]], low: float, high: float) -> dict[str, float]:
    band = [iou for radius, iou in spheroids if low <= radius < high]
    found = [iou for iou in band if iou > 0.5]
    return {
        "spheroids": len(band),
        "found": len(found) / len(band) if band else math.nan,
        "iou_median": statistics.median(found) if found else math.nan,
        "iou_mean": statistics.fmean(found) if found else math.nan,
    }


def timing(
    segmenters: dict[str, ResUNetSegmenter], count: int, repeats: int, first_pass: ResUNetSegmenter
) -> dict[str, Any]:
    """Each image through both segmenters in turn (their order alternating), so both see the same load;
    the crops counted are those the first pass of ``first_pass``'s model leaves to refine."""
    cases = held_out_cases(count, (1024, 1024))
    files = []
    for case in cases:
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, case.image.pixels.astype(np.uint16))
        files.append(buffer.getvalue())
    times: dict[str, list[float]] = {name: [] for name in segmenters}
    ratios = []
    names = list(segmenters)
    for repeat in range(repeats + 1):
        for index, data in enumerate(files):
            taken = {}
            for name in names if (repeat + index) % 2 else names[::-1]:
                started = time.perf_counter()
                segment_images([read_image(data, name=f"{index}.tif")], segmenters[name])
                taken[name] = (time.perf_counter() - started) * 1000
            if repeat:  # the first round warms up
                for name, ms in taken.items():
                    times[name].append(ms)
                ratios.append(taken[names[1]] / taken[names[0]])
    crops = []
    for case in cases:
        ((labels, _),) = first_pass.segment_scored([normalize(case.image.pixels)])
        _shape, scale = first_pass.predictor.working_shape((labels.shape[0], labels.shape[1]))
        crops.append(len(refinement_windows(labels, scale)))
    return {
        "images": count,
        "repeats": repeats,
        "crops_per_image_mean": statistics.fmean(crops),
        "crops_per_image_max": max(crops),
        **{f"end_to_end_ms_{name}": statistics.median(values) for name, values in times.items()},
        "ratio_median": statistics.median(ratios),
    }


CONFIGURATIONS = {
    "v1_first_pass": ("resunet-v1", False),
    "v1_refined": ("resunet-v1", True),
    "v2_first_pass": ("resunet-v2", False),
    "v2_refined": ("resunet-v2", True),
}
"""Name -> (shipped model, refine_small)."""
TIMED = ("v1_first_pass", "v2_refined")
"""Before the second look and the second model, and now."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=150, help="held-out 512² scenes scored")
    parser.add_argument("--timed", type=int, default=6, help="held-out 1024² scenes timed")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds over them")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    segmenters = {
        name: ResUNetSegmenter(ResUNetParams(model=model, device="cpu", refine_small=refine))
        for name, (model, refine) in CONFIGURATIONS.items()
    }
    for model in ("v1", "v2"):  # one network in memory per model, as on a worker
        segmenters[f"{model}_refined"]._predictor = segmenters[f"{model}_first_pass"].predictor
    report: dict[str, Any] = {
        "threads": args.threads,
        "torch": torch.__version__,
        "weights_sha256": {name: segmenters[f"{name}_first_pass"].card.sha256 for name in ("v1", "v2")},
        "scenes": args.scenes,
        "accuracy": {name: accuracy(segmenter, args.scenes) for name, segmenter in segmenters.items()},
        "time_1024": timing(
            {name: segmenters[name] for name in TIMED},
            args.timed,
            args.repeats,
            segmenters["v2_first_pass"],
        ),
    }
    _print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "small_spheroids.json").write_text(json.dumps(report, indent=2) + "\n")


def _print(report: dict[str, Any]) -> None:
    accuracy = report["accuracy"]
    names = list(accuracy)
    print(f"held-out 512² scenes: {report['scenes']}, through polygons")
    print(f"{'':28}" + "".join(f"{name:>15}" for name in names))
    first = accuracy[names[0]]
    for band in first:
        if not isinstance(first[band], dict):
            continue
        print(f"radius {band} ({first[band]['spheroids']} spheroids)")
        for key in ("found", "iou_median", "iou_mean"):
            print(f"  {key:26}" + "".join(f"{accuracy[name][band][key]:>15.3f}" for name in names))
    for key in ("image_iou_mean", "image_boundary_f1_mean", "image_instance_f1_mean"):
        print(f"{key:28}" + "".join(f"{accuracy[name][key]:>15.3f}" for name in names))
    timed = report["time_1024"]
    before, after = (timed[f"end_to_end_ms_{name}"] for name in TIMED)
    print(
        f"1024² end to end, ms per image ({timed['images']} scenes, {timed['crops_per_image_mean']:.1f} "
        f"crops each, at most {timed['crops_per_image_max']}): {TIMED[0]} {before:.0f}, {TIMED[1]} "
        f"{after:.0f}   x{after / before:.2f} (per image: x{timed['ratio_median']:.2f})"
    )


if __name__ == "__main__":
    main()
