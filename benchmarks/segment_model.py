"""ResUNet: end-to-end ms per image (read, infer, polygons, metrics) against Cellpose's network.

For 512², 1024² and 2048² synthetic scenes (fixed seeds, encoded as 16-bit TIFF in memory so reading is
timed too): end-to-end ms per image in fp32 and bf16 autocast, batch 1 and 4; the network alone (ms, the
model's GFLOPs per image, GFLOP/s reached); peak resident memory of the process (reset before each
size). In the same run, the same images through Cellpose's CPnet (the cyto3 architecture, built from the
``cellpose`` 3.x package without weights; ``make bench`` installs it), network only (its flow-following
post-processing would only add to its time), on the tiles Cellpose 3 cuts (224², 10 % overlap, 8 a
batch), two ways:

- **diameter set** (the fair comparison, reported first): a user sets Cellpose's diameter to the
  spheroids' (here the median diameter of each scene's spheroids, 35 to 1,000 px), so Cellpose rescales
  the image by 30 / diameter before its network;
- **default diameter** (30 px) left on, as if nobody set it: the network runs at the image's full
  resolution, on spheroids up to 35 times wider than those it was trained for.

Ratios are Cellpose's over the ResUNet's: network time against network time (fp32, both channels-last,
the fastest passes of rounds that alternate the two), convolution GFLOPs (independent of load), and
Cellpose's network against the ResUNet's whole path. ResUNet times are medians over repeats; on shared
machines compare the ratios, not the absolute numbers.

Prints a table and writes benchmarks/results/segment_model.json.

Usage: python benchmarks/segment_model.py [--repeats N] [--threads 2] [--weights FILE] [--no-cellpose]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch

from cluster.imaging import read_image
from cluster.model.devices import cpu_supports_bf16
from cluster.model.segmenter import ResUNetParams, ResUNetSegmenter
from cluster.pipeline import segment_images
from cluster.synthetic import generate_scene

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (512, 1024, 2048)

CELLPOSE_DIAMETER = 30.0
"""Cellpose's default diameter (its cyto models' ``diam_mean``); it rescales images by 30 / diameter."""
CELLPOSE_TILE = 224
CELLPOSE_TILE_OVERLAP = 0.1
CELLPOSE_BATCH = 8
"""Tile side, overlap and tiles per batch of Cellpose 3's ``core.run_net`` (its defaults)."""


def scene_tiff(size: int, seed: int) -> tuple[bytes, float]:
    """A scene as 16-bit TIFF bytes, and the diameter a user would give Cellpose for it (px)."""
    scene = generate_scene(seed, (size, size))
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, scene.image.astype(np.uint16))
    return buffer.getvalue(), 2 * statistics.median(scene.description["radii_px"])


def cellpose_tiles(size: int, diameter: float) -> tuple[int, int]:
    """(tiles, tile side) Cellpose 3 runs its network on for a size² image and this diameter.

    As its ``core.run_net``: the image is resized by 30 / diameter, padded to a multiple of 16 plus 16,
    and cut into 224² tiles overlapping by 10 %; an image no larger than a tile is one tile of its size.
    """
    side = int(size * CELLPOSE_DIAMETER / diameter)
    padded = 16 * math.ceil(side / 16) + 16
    if padded <= CELLPOSE_TILE:
        return 1, padded
    per_axis = math.ceil((1 + 2 * CELLPOSE_TILE_OVERLAP) * padded / CELLPOSE_TILE)
    return per_axis * per_axis, CELLPOSE_TILE


def _rss_peak_reset() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def end_to_end_ms(files: list[bytes], segmenter: ResUNetSegmenter, batch: int, repeats: int) -> float:
    """Median ms per image: read, normalise, segment, polygons, metrics."""
    times = []
    for repeat in range(repeats + 1):
        started = time.perf_counter()
        for start in range(0, len(files), batch):
            images = [
                read_image(data, name=f"{i}.tif") for i, data in enumerate(files[start : start + batch])
            ]
            segment_images(images, segmenter)
        if repeat:  # the first pass warms up
            times.append((time.perf_counter() - started) * 1000 / len(files))
    return statistics.median(times)


def _network_ms(model: torch.nn.Module, shape: tuple[int, ...], bf16: bool, repeats: int) -> float:
    x = torch.rand(*shape).contiguous(memory_format=torch.channels_last)
    model = model.eval()
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    times = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for repeat in range(repeats + 1):
            started = time.perf_counter()
            model(x)
            if repeat:
                times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _cellpose_pass(net: torch.nn.Module, tiles: int, side: int) -> float:
    """ms of one pass of Cellpose's network over one image's tiles, in batches of 8 as Cellpose runs them."""
    x = torch.rand(min(tiles, CELLPOSE_BATCH), 2, side, side).contiguous(memory_format=torch.channels_last)
    started = time.perf_counter()
    with torch.inference_mode():
        for first in range(0, tiles, CELLPOSE_BATCH):
            net(x[: min(CELLPOSE_BATCH, tiles - first)])
    return (time.perf_counter() - started) * 1000


def _resunet_pass(model: torch.nn.Module, shape: tuple[int, ...]) -> float:
    x = torch.rand(*shape).contiguous(memory_format=torch.channels_last)
    started = time.perf_counter()
    with torch.inference_mode():
        model(x)
    return (time.perf_counter() - started) * 1000


def conv_gflops(model: torch.nn.Module, shape: tuple[int, ...]) -> float:
    total = 0.0

    def count(module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups  # type: ignore[operator]
        total += 2.0 * kernel * output.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        model(torch.zeros(*shape))
    for hook in hooks:
        hook.remove()
    return total / 1e9


def _cellpose_net() -> torch.nn.Module:
    try:
        from cellpose.resnet_torch import CPnet
    except ImportError:
        sys.exit(
            "Cellpose 3 is not installed: run `make bench`, or `pip install --no-deps 'cellpose>=3,<4'` "
            "(its network needs only torch), or pass --no-cellpose"
        )
    return CPnet(nbase=[2, 32, 64, 128, 256], nout=3, sz=3)  # type: ignore[no-any-return]


def _cellpose_row(
    net: torch.nn.Module,
    model: torch.nn.Module,
    working: int,
    size: int,
    diameters: list[float],
    resunet: dict[str, Any],
    rounds: int,
) -> dict[str, Any]:
    """Cellpose's network on this size's images, diameter set and default, and its ratios to the ResUNet.

    Each round times the ResUNet's network (three passes), then Cellpose's on every image, one pass each,
    so both see the same load. Each time is the fastest of its rounds: on a shared machine other work only
    ever adds time, so the fastest pass is the one it disturbed least. The default diameter at 2048²
    (144 tiles) runs in the first round only. GFLOPs (convolutions) are the load-free measure of the work.
    """
    net = net.eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    model = model.eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    shape = (1, 1, working, working)
    set_tiles = [cellpose_tiles(size, diameter) for diameter in diameters]
    default_tiles, default_side = cellpose_tiles(size, CELLPOSE_DIAMETER)
    _resunet_pass(model, shape)  # warm-up passes
    _cellpose_pass(net, 1, CELLPOSE_TILE)
    ours: list[float] = []
    theirs: list[list[float]] = [[] for _ in set_tiles]
    default: list[float] = []
    for round_ in range(rounds):
        ours += [_resunet_pass(model, shape) for _ in range(3)]
        for times, (tiles, side) in zip(theirs, set_tiles, strict=True):
            times.append(_cellpose_pass(net, tiles, side))
        if round_ == 0 or size < 2048:
            default.append(_cellpose_pass(net, default_tiles, default_side))
    resunet_ms = min(ours)
    set_ms = statistics.median(min(times) for times in theirs)
    default_ms = min(default)
    set_gflops = statistics.median(conv_gflops(net, (1, 2, side, side)) * tiles for tiles, side in set_tiles)
    default_gflops = conv_gflops(net, (1, 2, CELLPOSE_TILE, CELLPOSE_TILE)) * default_tiles
    return {
        "cellpose_diameters_px": diameters,
        "cellpose_tiles_set_diameter": [tiles for tiles, _ in set_tiles],
        "cellpose_tiles_default_diameter": default_tiles,
        "cellpose_gflops_set_diameter": set_gflops,
        "cellpose_gflops_default_diameter": default_gflops,
        "resunet_network_ms_fastest": resunet_ms,
        "cellpose_network_ms_set_diameter": set_ms,
        "cellpose_network_ms_default_diameter": default_ms,
        "ratio_set_diameter_network": set_ms / resunet_ms,
        "ratio_default_diameter_network": default_ms / resunet_ms,
        "ratio_set_diameter_gflops": set_gflops / resunet["model_gflops_per_image"],
        "ratio_default_diameter_gflops": default_gflops / resunet["model_gflops_per_image"],
        "ratio_set_diameter_vs_resunet_end_to_end": set_ms / resunet["end_to_end_ms_fp32_batch1"],
        "ratio_default_diameter_vs_resunet_end_to_end": default_ms / resunet["end_to_end_ms_fp32_batch1"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the images of a size")
    parser.add_argument("--images", type=int, default=4, help="images per size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--weights", default=None, help="weights file (default: the shipped ones)")
    parser.add_argument("--no-cellpose", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    precisions = ["fp32", "bf16"]
    segmenters = {
        (p, b): ResUNetSegmenter(ResUNetParams(weights=args.weights, device="cpu", precision=p, batch_size=b))
        for p in precisions
        for b in (1, 4)
    }
    model = segmenters[("fp32", 1)].predictor.model
    working = segmenters[("fp32", 1)].card.working_size
    cellpose = None if args.no_cellpose else _cellpose_net()
    rows: dict[str, dict[str, Any]] = {}
    for size in SIZES:
        scenes = [scene_tiff(size, 3000 + i) for i in range(args.images)]
        files, diameters = [data for data, _ in scenes], [diameter for _, diameter in scenes]
        row: dict[str, Any] = {}
        _rss_peak_reset()
        for (precision, batch), segmenter in segmenters.items():
            row[f"end_to_end_ms_{precision}_batch{batch}"] = end_to_end_ms(
                files, segmenter, batch, args.repeats
            )
        row["peak_rss_mib"] = _rss_mib("VmHWM")  # the whole process, reset before this size
        shape = (1, 1, working, working)
        row["model_gflops_per_image"] = conv_gflops(model, shape)
        for precision in precisions:
            ms = _network_ms(model, shape, precision == "bf16", args.repeats)
            row[f"network_ms_{precision}"] = ms
            row[f"gflops_per_s_{precision}"] = row["model_gflops_per_image"] / ms * 1000
        if cellpose is not None:
            row.update(_cellpose_row(cellpose, model, working, size, diameters, row, args.repeats + 1))
        rows[f"{size}x{size}"] = row
        print(f"{size}² done", flush=True)
    _print(rows)
    RESULTS.mkdir(exist_ok=True)
    report = {
        "threads": args.threads,
        "cpu_native_bf16": cpu_supports_bf16(),
        "torch": torch.__version__,
        "weights_sha256": segmenters[("fp32", 1)].card.sha256,
        "working_size": working,
        "parameters": segmenters[("fp32", 1)].card.parameters,
        "cellpose_parameters": sum(p.numel() for p in cellpose.parameters())
        if cellpose is not None
        else None,
        "cellpose_version": _cellpose_version() if cellpose is not None else None,
        "images_per_size": args.images,
        "repeats": args.repeats,
        "sizes": rows,
    }
    (RESULTS / "segment_model.json").write_text(json.dumps(report, indent=2) + "\n")


def _cellpose_version() -> str:
    from importlib.metadata import version

    return version("cellpose")


def _print(rows: dict[str, dict[str, Any]]) -> None:
    header = (
        f"{'size':>10} {'e2e fp32 b1':>12} {'e2e fp32 b4':>12} {'e2e bf16 b1':>12} {'e2e bf16 b4':>12}"
        f" {'net fp32':>9} {'GFLOP':>6} {'GFLOP/s':>8} {'peak MiB':>9}"
    )
    print(header)
    for size, row in rows.items():
        print(
            f"{size:>10} {row['end_to_end_ms_fp32_batch1']:>10.0f}ms"
            f" {row['end_to_end_ms_fp32_batch4']:>10.0f}ms"
            f" {row['end_to_end_ms_bf16_batch1']:>10.0f}ms {row['end_to_end_ms_bf16_batch4']:>10.0f}ms"
            f" {row['network_ms_fp32']:>7.0f}ms {row['model_gflops_per_image']:>6.2f}"
            f" {row['gflops_per_s_fp32']:>8.1f} {row['peak_rss_mib']:>9.0f}"
        )
    if "cellpose_network_ms_set_diameter" not in next(iter(rows.values())):
        return
    print(
        "\nCellpose's network over the ResUNet's: time (fastest passes) / GFLOPs / time against ResUNet path"
    )
    print(f"{'size':>10} {'diameter set (fair)':>30} {'default diameter 30 px':>30}")
    for size, row in rows.items():
        cells = [
            f"{row[f'cellpose_network_ms_{way}']:.0f}ms: {row[f'ratio_{way}_network']:.1f}x"
            f" / {row[f'ratio_{way}_gflops']:.1f}x / {row[f'ratio_{way}_vs_resunet_end_to_end']:.2f}x"
            for way in ("set_diameter", "default_diameter")
        ]
        print(f"{size:>10} {cells[0]:>30} {cells[1]:>30}")


if __name__ == "__main__":
    main()
