"""Classical segmenter: ms per image at 1024² and 2048², peak memory, and vertices per spheroid.

Prints a table and writes benchmarks/results/segment_classical.json. Images are synthetic scenes (fixed
seeds) so the run is repeatable; times are medians over the scenes, measured in this run. The vertex
baseline is what the replaced system emitted: one vertex per boundary pixel of the mask.

Usage: python benchmarks/segment_classical.py [--scenes N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from cluster.classical import ClassicalSegmenter
from cluster.imaging import normalize
from cluster.metrics import measure_all
from cluster.polygons import DEFAULT_SIMPLIFY_TOLERANCE, labels_to_spheroids, spheroid_to_mask
from cluster.synthetic import generate_scene

RESULTS = Path(__file__).resolve().parent / "results"


def _boundary_pixels(mask: np.ndarray) -> int:
    return int((mask & ~ndi.binary_erosion(mask, border_value=0)).sum())


def _time_size(size: int, scenes: int) -> dict[str, float]:
    segmenter = ClassicalSegmenter()
    segment_ms, total_ms = [], []
    for seed in range(scenes):
        scene = generate_scene(1000 + seed, (size, size))
        started = time.perf_counter()
        image = normalize(scene.image)
        (labels,) = segmenter.segment([image])
        segmented = time.perf_counter()
        measure_all(labels_to_spheroids(labels), scene.pixel_size_um)
        finished = time.perf_counter()
        segment_ms.append((segmented - started) * 1000)
        total_ms.append((finished - started) * 1000)
    return {
        "segment_ms_median": statistics.median(segment_ms),
        "end_to_end_ms_median": statistics.median(total_ms),
        "end_to_end_ms_max": max(total_ms),
    }


def _peak_memory_mib(size: int) -> float:
    scene = generate_scene(1000, (size, size))
    segmenter = ClassicalSegmenter()
    tracemalloc.start()
    (labels,) = segmenter.segment([normalize(scene.image)])
    measure_all(labels_to_spheroids(labels), scene.pixel_size_um)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def _vertices(scenes: int) -> dict[str, float]:
    before, after, ious = [], [], []
    for seed in range(scenes):
        scene = generate_scene(2000 + seed, (1024, 1024))
        for spheroid in labels_to_spheroids(scene.labels, tolerance=DEFAULT_SIMPLIFY_TOLERANCE):
            mask = spheroid_to_mask(spheroid, scene.labels.shape)
            truth_label = np.bincount(scene.labels[mask]).argmax()
            truth = scene.labels == truth_label
            before.append(_boundary_pixels(truth))
            after.append(spheroid.vertex_count)
            ious.append(float((mask & truth).sum() / (mask | truth).sum()))
    return {
        "spheroids": len(before),
        "vertices_per_spheroid_one_per_boundary_pixel": statistics.median(before),
        "vertices_per_spheroid_simplified": statistics.median(after),
        "vertex_reduction": 1 - sum(after) / sum(before),
        "iou_polygon_vs_mask_min": min(ious),
        "iou_polygon_vs_mask_median": statistics.median(ious),
        "tolerance_px": DEFAULT_SIMPLIFY_TOLERANCE,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=8, help="synthetic scenes per size")
    args = parser.parse_args()
    timing = {size: _time_size(size, args.scenes) for size in (1024, 2048)}
    memory = {size: _peak_memory_mib(size) for size in (1024, 2048)}
    vertices = _vertices(args.scenes)

    print(f"{'size':>6} {'segment ms':>11} {'end-to-end ms':>14} {'worst ms':>9} {'peak MiB':>9}")
    for size, row in timing.items():
        print(
            f"{size:>5}² {row['segment_ms_median']:>11.0f} {row['end_to_end_ms_median']:>14.0f}"
            f" {row['end_to_end_ms_max']:>9.0f} {memory[size]:>9.0f}"
        )
    print(
        f"\nvertices per spheroid (median of {vertices['spheroids']}): "
        f"{vertices['vertices_per_spheroid_one_per_boundary_pixel']:.0f} one-per-boundary-pixel -> "
        f"{vertices['vertices_per_spheroid_simplified']:.0f} simplified "
        f"({vertices['vertex_reduction']:.1%} fewer); IoU with the mask: "
        f"min {vertices['iou_polygon_vs_mask_min']:.4f}, median {vertices['iou_polygon_vs_mask_median']:.4f}"
    )
    RESULTS.mkdir(exist_ok=True)
    report = {
        "timing": {f"{size}x{size}": row for size, row in timing.items()},
        "peak_memory_mib": {f"{size}x{size}": value for size, value in memory.items()},
        "vertices": vertices,
        "scenes_per_size": args.scenes,
        # Times on a shared 2-core machine are noisy; the load average says how busy it was.
        "load_average_1min": os.getloadavg()[0],
    }
    (RESULTS / "segment_classical.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
