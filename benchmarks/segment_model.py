"""ResUNet: end-to-end ms per image (read, infer, polygons, metrics) against Cellpose's network.

For 512², 1024² and 2048² synthetic scenes (fixed seeds, encoded as 16-bit TIFF in memory so reading is
timed too): end-to-end ms per image in fp32 and bf16 autocast, batch 1 and 4; the network alone (ms, the
model's GFLOPs per image, GFLOP/s reached); peak resident memory of the process (reset before each
size). In the same run, the same inputs through Cellpose's CPnet (the cyto3 architecture, built from the
``cellpose`` 3.x package without weights: ``pip install --no-deps 'cellpose<4'``), at the image's full
resolution as Cellpose runs it with its default diameter, network only: its flow-following post-processing
would only add to its time. Medians over repeats; on shared machines
compare the ratios, not the absolute numbers.

Prints a table and writes benchmarks/results/segment_model.json.

Usage: python benchmarks/segment_model.py [--repeats N] [--threads 2] [--weights FILE] [--no-cellpose]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
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


def _tiff_bytes(size: int, seed: int) -> bytes:
    scene = generate_scene(seed, (size, size))
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, scene.image.astype(np.uint16))
    return buffer.getvalue()


def _rss_peak_reset() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def _end_to_end(files: list[bytes], segmenter: ResUNetSegmenter, batch: int, repeats: int) -> float:
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


def _conv_gflops(model: torch.nn.Module, shape: tuple[int, ...]) -> float:
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


def _cellpose_net() -> torch.nn.Module | None:
    try:
        from cellpose.resnet_torch import CPnet
    except ImportError:
        return None
    return CPnet(nbase=[2, 32, 64, 128, 256], nout=3, sz=3)  # type: ignore[no-any-return]


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
        files = [_tiff_bytes(size, 3000 + i) for i in range(args.images)]
        row: dict[str, Any] = {}
        _rss_peak_reset()
        for (precision, batch), segmenter in segmenters.items():
            row[f"end_to_end_ms_{precision}_batch{batch}"] = _end_to_end(
                files, segmenter, batch, args.repeats
            )
        row["peak_rss_mib"] = _rss_mib("VmHWM")  # the whole process, reset before this size
        shape = (1, 1, working, working)
        row["model_gflops_per_image"] = _conv_gflops(model, shape)
        for precision in precisions:
            ms = _network_ms(model, shape, precision == "bf16", args.repeats)
            row[f"network_ms_{precision}"] = ms
            row[f"gflops_per_s_{precision}"] = row["model_gflops_per_image"] / ms * 1000
        if cellpose is not None:
            cp_shape = (1, 2, size, size)
            cp_repeats = 1 if size >= 2048 else 2
            row["cellpose_gflops_per_image"] = (
                _conv_gflops(cellpose, cp_shape)
                if size <= 1024
                else (rows["1024x1024"]["cellpose_gflops_per_image"] * (size / 1024) ** 2)
            )
            row["cellpose_network_ms_fp32"] = _network_ms(cellpose, cp_shape, False, cp_repeats)
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
        "images_per_size": args.images,
        "repeats": args.repeats,
        "sizes": rows,
    }
    (RESULTS / "segment_model.json").write_text(json.dumps(report, indent=2) + "\n")


def _print(rows: dict[str, dict[str, Any]]) -> None:
    header = (
        f"{'size':>10} {'e2e fp32 b1':>12} {'e2e fp32 b4':>12} {'e2e bf16 b1':>12} {'e2e bf16 b4':>12}"
        f" {'net fp32':>9} {'GFLOP':>6} {'GFLOP/s':>8} {'peak MiB':>9} {'Cellpose net':>13} {'its GFLOP':>10}"
    )
    print(header)
    for size, row in rows.items():
        cellpose = row.get("cellpose_network_ms_fp32")
        print(
            f"{size:>10} {row['end_to_end_ms_fp32_batch1']:>10.0f}ms"
            f" {row['end_to_end_ms_fp32_batch4']:>10.0f}ms"
            f" {row['end_to_end_ms_bf16_batch1']:>10.0f}ms {row['end_to_end_ms_bf16_batch4']:>10.0f}ms"
            f" {row['network_ms_fp32']:>7.0f}ms {row['model_gflops_per_image']:>6.2f}"
            f" {row['gflops_per_s_fp32']:>8.1f} {row['peak_rss_mib']:>9.0f}"
            f" {'-' if cellpose is None else f'{cellpose:.0f}ms':>13}"
            f" {row.get('cellpose_gflops_per_image', float('nan')):>10.0f}"
        )


if __name__ == "__main__":
    main()
