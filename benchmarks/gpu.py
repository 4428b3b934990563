"""GPU checks in one run: ResUNet inference and fine-tuning on CUDA, and a GPU cluster's images per second.

Made for a short lease of a GPU machine; one run answers the model issue and the cluster issue:

(a) Inference. 16 synthetic 1024² and 2048² scenes (16-bit TIFFs in memory, fixed seeds) through the shipped
    weights in fp32, bf16 and fp16 autocast with network batches of 1, 4 and 8: end-to-end ms per image
    (read, normalise, infer, polygons, metrics: benchmarks/segment_model.py's timing, whose first pass is
    a warm-up and whose every pass ends with the results back on the host), the network alone at the
    working size (ms per image, GFLOP/s; warm-up calls, then torch.cuda.synchronize around the timed ones)
    and the peak GPU memory (torch.cuda.max_memory_allocated) of each setting.
(b) Fine-tuning. ``fine_tune`` from the shipped weights on 16 synthetic image/mask pairs written to a
    temporary folder as a lab's export would be (held-out optics), 200 steps of 8 images on the device:
    seconds, steps per second, the training loss of the first and last 10 steps, and the IoU on 8 of the
    pairs before and after (a sanity figure only: they are training images). Weights go to a temporary
    folder.
(c) Cluster. The ``local`` launcher with GPUs (one worker per GPU, pinned, GPU=1), the ResUNet on CUDA
    (auto precision), 96 synthetic 1024² TIFFs on local disk: images per second with 1, 4 and 8 images per
    task (``SegmentationRequest.batch_size``); each job checks that every image got exactly one result. A
    worker hands the network a task's images of one working size together (``cluster.worker.segment_batch``,
    as many per call as the GPU's free memory allows), so here the task size bounds the network batch.
(d) Worker batching (benchmarks/worker_batching.py). One GPU worker, 64 synthetic 1024² TIFFs, 8 per
    task: images per second through the worker path with network batch 1 and with batching, and the
    model's own batched throughput in this process; goal: the worker within 15% of the model (>= 0.85).
    It runs right after (a), so a short lease still answers it.

A time budget (--budget-s) bounds the run: a section, and each inference setting, starts only when the time
left covers it and the sections after it, else it is skipped with a note. The JSON is rewritten after each
section and each image size, so a run cut short still leaves its data. Prints a table at the end.

The lent GPU machine has no network, so no ``make install``: its python3 (3.12) has torch with CUDA,
numpy, scipy, scikit-image, tifffile, safetensors and Dask's small dependencies, but not dask,
distributed, partd, locket, tblib, tornado, zict, shapely or imagecodecs. Carry those nine as cp312
manylinux wheels in an ignored ``.whl`` folder (the device tool's notes say how) and run, from
the repository root, with ``carry=[".whl"]`` and timeout_s about 540:

    python3 -m pip install -q --no-index --no-deps --no-compile --target .whl/site .whl/*.whl && \
    PYTHONPATH=$PWD/.whl/site:$PWD PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py --out $OUT/gpu.json

Usage: python benchmarks/gpu.py [--device cuda|cpu] [--budget-s 420] [--out FILE] [--quick]
(``--device cpu --quick`` is a smoke test of every path: 256² images, batches 1 and 2, 5 steps, 1 worker.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch
from cluster_scaling import Tally, scene_files, timed_job
from segment_model import conv_gflops, end_to_end_ms, scene_tiff
from worker_batching import measure as measure_worker
from worker_batching import print_table as print_worker

from cluster.client import SegmentationRequest
from cluster.evaluation import evaluate, load_cases
from cluster.launch import ClusterSpec, connect, launch
from cluster.launch.deployment import close_client
from cluster.model.data import load_pairs
from cluster.model.devices import cpu_supports_bf16
from cluster.model.inference import Predictor
from cluster.model.segmenter import ResUNetParams, ResUNetSegmenter
from cluster.model.training import fine_tune
from cluster.model.weights import load_model
from cluster.synthetic import SceneConfig, generate_scene
from cluster.worker import SegmenterSpec, worker_report

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Plan:
    """Sizes of one run; ``*_s`` are the seconds a section needs at least."""

    sizes: tuple[int, ...] = (1024, 2048)
    batches: tuple[int, ...] = (1, 4, 8)
    precisions: tuple[str, ...] = ("fp32", "bf16", "fp16")
    images: int = 16
    repeats: int = 3
    network_repeats: int = 50
    pairs: int = 16
    pair_size: int = 1024
    steps: int = 200
    step_batch: int = 8
    fine_tune_s: float = 90.0
    cluster_images: int = 96
    cluster_size: int = 1024
    cluster_s: float = 60.0
    worker_images: int = 64
    worker_size: int = 1024
    worker_per_task: int = 8
    worker_s: float = 60.0


QUICK = Plan((256,), (1, 2), ("fp32", "bf16"), 2, 1, 3, 4, 256, 5, 2, 5.0, 6, 256, 20.0, 8, 256, 4, 20.0)


class Budget:
    """The run's deadline."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def allows(self, need: float, reserve: float = 0.0) -> bool:
        return self.left() >= need + reserve

    def shortfall(self, need: float, reserve: float = 0.0) -> str:
        kept = f" and {reserve:.0f} s kept for later sections" if reserve else ""
        return f"{self.left():.0f} s left, about {need:.0f} s needed{kept}"


class Report:
    """The JSON document, rewritten (atomically) whenever a part of it is done."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = {**data, "sections": {}, "skipped": [], "errors": {}}

    def put(self, section: str, value: dict[str, Any]) -> None:
        self.data["sections"][section] = value
        self.write()

    def skip(self, what: str, why: str) -> None:
        print(f"skipped {what}: {why}", flush=True)
        self.data["skipped"].append(f"{what}: {why}")
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(self.data, indent=2) + "\n")
        partial.replace(self.path)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None


def machine(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": device,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),  # type: ignore[no-untyped-call]
        "cpus": os.cpu_count(),
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(0)
        info |= {
            "gpu": torch.cuda.get_device_name(0),
            "gpus": torch.cuda.device_count(),
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "bf16_supported": torch.cuda.is_bf16_supported(),
        }
    else:
        info["cpu_native_bf16"] = cpu_supports_bf16()
    return info


def _network_ms(predictor: Predictor, batch: int, repeats: int) -> float:
    """Mean ms of one network call on ``batch`` working-size images, after warm-up calls."""
    device = str(predictor.placement.device)
    size = predictor.working_size
    x = torch.rand(batch, 1, size, size, device=device).contiguous(memory_format=predictor.memory_format)
    with torch.inference_mode(), predictor.placement.autocast():
        for _ in range(3):
            predictor.model(x)
        _sync(device)
        started = time.perf_counter()
        for _ in range(repeats):
            predictor.model(x)
        _sync(device)
    return (time.perf_counter() - started) * 1000 / repeats


def _network(
    device: str, plan: Plan, gflops: float, budget: Budget, reserve: float, report: Report
) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    seconds = 5.0
    for precision in plan.precisions:
        if not budget.allows(seconds, reserve):
            report.skip(f"network {precision}", budget.shortfall(seconds, reserve))
            continue
        started = time.monotonic()
        predictor = ResUNetSegmenter(ResUNetParams(device=device, precision=precision)).predictor
        for batch in plan.batches:
            _reset_peak(device)
            ms = _network_ms(predictor, batch, plan.network_repeats)
            rows[f"{precision}_batch{batch}"] = {
                "ms_per_image": ms / batch,
                "gflops_per_s": gflops * batch / ms * 1000,
                "peak_gpu_mib": _peak_mib(device),
            }
        seconds = time.monotonic() - started
    return rows


def inference(device: str, plan: Plan, budget: Budget, reserve: float, report: Report) -> dict[str, Any]:
    cpu_model, card = load_model()
    gflops = conv_gflops(cpu_model, (1, 1, card.working_size, card.working_size))
    result: dict[str, Any] = {
        "weights_sha256": card.sha256,
        "working_size": card.working_size,
        "gflops_per_image": gflops,
        "images_per_size": plan.images,
        "repeats": plan.repeats,
        "network": _network(device, plan, gflops, budget, reserve, report),
        "end_to_end": {},
    }
    seconds, last_size = 5.0, plan.sizes[0]  # the last setting's time, to estimate the next one's
    for size in plan.sizes:
        files = [scene_tiff(size, 3000 + i)[0] for i in range(plan.images)]
        row: dict[str, Any] = {}
        for precision in plan.precisions:
            for batch in plan.batches:
                estimate = seconds * (size / last_size) ** 2
                if not budget.allows(estimate, reserve):
                    report.skip(
                        f"{size}x{size} {precision} batch {batch}", budget.shortfall(estimate, reserve)
                    )
                    continue
                segmenter = ResUNetSegmenter(
                    ResUNetParams(device=device, precision=precision, batch_size=batch)
                )
                segmenter.predictor  # noqa: B018 (load the weights outside the timing)
                _sync(device)
                _reset_peak(device)
                started = time.monotonic()
                ms = end_to_end_ms(files, segmenter, batch, plan.repeats)
                seconds, last_size = time.monotonic() - started, size
                row[f"{precision}_batch{batch}"] = {"ms_per_image": ms, "peak_gpu_mib": _peak_mib(device)}
        result["end_to_end"][f"{size}x{size}"] = row
        report.put("inference", result)
        print(f"inference {size}² done", flush=True)
    return result


def _lab_export(folder: Path, count: int, size: int) -> tuple[Path, Path]:
    """``count`` reviewed image/mask pairs as a lab would export them: TIFFs, masks named as the images."""
    images, masks = folder / "images", folder / "masks"
    images.mkdir()
    masks.mkdir()
    for index in range(count):
        scene = generate_scene(950_000_000 + index, (size, size), SceneConfig.held_out())
        tifffile.imwrite(images / f"lab{index:02d}.tif", scene.image)
        tifffile.imwrite(masks / f"lab{index:02d}.tif", scene.labels.astype(np.uint16))
    return images, masks


def _scores(images: Path, masks: Path, count: int, weights: Path | None, device: str) -> dict[str, float]:
    cases = list(load_cases(images, masks))[:count]
    segmenter = ResUNetSegmenter(ResUNetParams(weights=str(weights) if weights else None, device=device))
    summary = evaluate(cases, segmenter).summary()
    return {"iou": summary["iou"]["mean"], "instance_f1": summary["instance_f1"]["mean"]}


def fine_tuning(device: str, plan: Plan, budget: Budget, reserve: float, report: Report) -> dict[str, Any]:
    losses: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        images, masks = _lab_export(Path(tmp), plan.pairs, plan.pair_size)
        _, card = load_model()
        samples = load_pairs(images, masks, card.working_size)
        before = _scores(images, masks, plan.pairs // 2, None, device)
        _reset_peak(device)
        started = time.perf_counter()
        trained = fine_tune(
            samples,
            Path(tmp) / "lab-ft.safetensors",
            steps=plan.steps,
            batch_size=plan.step_batch,
            device=device,
            progress=lambda _step, _steps, loss: losses.append(loss),
        )
        wall = time.perf_counter() - started
        peak = _peak_mib(device)
        after = _scores(images, masks, plan.pairs // 2, trained.weights, device)
    ends = max(1, min(10, len(losses) // 2))
    return {
        "pairs": plan.pairs,
        "pair_size": plan.pair_size,
        "steps": trained.steps,
        "batch_size": plan.step_batch,
        "machine": trained.card.training.get("machine", ""),
        "train_seconds": trained.seconds,
        "wall_seconds": wall,
        "steps_per_second": trained.steps / trained.seconds,
        "loss_first_steps": statistics.fmean(losses[:ends]),
        "loss_last_steps": statistics.fmean(losses[-ends:]),
        "before": before,
        "after": after,
        "peak_gpu_mib": peak,
    }


async def _cluster_jobs(device: str, plan: Plan, paths: list[Path], budget: Budget) -> dict[str, Any]:
    gpu = device.startswith("cuda")
    # memory_limit "0": no cap, as "auto" gives a 1-thread worker 1/cores of the machine's RAM (1/16 there)
    spec = ClusterSpec(gpus=True, memory_limit="0") if gpu else ClusterSpec(workers=1)
    segmenter = SegmenterSpec.of("resunet", device=device)
    started = time.perf_counter()
    deployment = await launch(spec)
    client = await connect(deployment.scheduler_address)
    tally = Tally()
    try:
        warm = SegmentationRequest(segmenter=segmenter, gpu=gpu, batch_size=1)
        await timed_job(client, paths[: max(2, len(paths) // 16)], warm, tally)  # loads the model everywhere
        ready = time.perf_counter() - started
        workers = {
            name: {k: w[k] for k in ("resources", "cuda_visible_devices", "devices", "loaded")}
            for name, w in (await client.run(worker_report)).items()
        }
        rows: dict[str, Any] = {}
        seconds = 10.0
        for batch in plan.batches:
            if not budget.allows(1.5 * seconds):
                rows[f"batch{batch}"] = {"skipped": budget.shortfall(1.5 * seconds)}
                continue
            request = SegmentationRequest(segmenter=segmenter, gpu=gpu, batch_size=batch)
            seconds, per_task = await timed_job(client, paths, request, tally)
            rows[f"batch{batch}"] = {
                "images_per_second": len(paths) / seconds,
                "seconds": seconds,
                "images_per_task": per_task,
            }
    finally:
        await close_client(client)
        await deployment.close()
    return {
        "spec": {k: getattr(spec, k) for k in ("gpus", "workers", "threads_per_worker", "memory_limit")},
        "images": len(paths),
        "size": plan.cluster_size,
        "start_and_load_seconds": ready,
        "workers": workers,
        "by_batch": rows,
        "exactly_once": {"lost": tally.lost, "duplicated": tally.duplicated},
    }


def cluster(device: str, plan: Plan, budget: Budget, reserve: float, report: Report) -> dict[str, Any]:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()  # the workers are other processes on the same GPU
    with tempfile.TemporaryDirectory() as tmp:
        paths = scene_files(Path(tmp), plan.cluster_images, plan.cluster_size)
        return asyncio.run(_cluster_jobs(device, plan, paths, budget))


def worker_batching(
    device: str, plan: Plan, budget: Budget, reserve: float, report: Report
) -> dict[str, Any]:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()  # the worker is another process on the same GPU
    with tempfile.TemporaryDirectory() as tmp:
        return measure_worker(device, Path(tmp), plan.worker_images, plan.worker_size, plan.worker_per_task)


Section = Callable[[str, Plan, Budget, float, Report], dict[str, Any]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default=None, help="[cuda where there is one]")
    parser.add_argument("--budget-s", type=float, default=420.0, help="seconds the whole run may take")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON file [results/gpu.json; CPU: a temp file]"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of every path")
    args = parser.parse_args()
    budget = Budget(args.budget_s)
    if args.device is None and not torch.cuda.is_available():  # `make bench` on a machine without a GPU
        print("gpu.py: no CUDA GPU here, nothing to time (--device cpu --quick smoke-tests the script)")
        return 0
    args.device = args.device or "cuda"
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu.py: CUDA asked for, but torch {torch.__version__} sees no CUDA GPU", file=sys.stderr)
        return 2
    plan = QUICK if args.quick else Plan()
    if args.device == "cpu":  # fp16 autocast is for GPUs only
        plan = replace(plan, precisions=tuple(p for p in plan.precisions if p != "fp16"))
    default = RESULTS / "gpu.json" if args.device == "cuda" else Path(tempfile.gettempdir()) / "gpu.json"
    report = Report(args.out or default, {"machine": machine(args.device), "plan": asdict(plan)})
    report.data["budget_s"] = args.budget_s
    print(", ".join(f"{k} {v}" for k, v in report.data["machine"].items()), flush=True)
    sections: list[tuple[str, Section, float]] = [
        ("inference", inference, 20.0),
        ("worker_batching", worker_batching, plan.worker_s),
        ("fine_tune", fine_tuning, plan.fine_tune_s),
        ("cluster", cluster, plan.cluster_s),
    ]
    for index, (name, run, need) in enumerate(sections):
        reserve = sum(later for _, _, later in sections[index + 1 :])
        if not budget.allows(need, reserve):
            report.skip(name, budget.shortfall(need, reserve))
            continue
        try:
            report.put(name, run(args.device, plan, budget, reserve, report))
        except Exception as exc:  # one broken section must not cost the lease the others' numbers
            traceback.print_exc()
            report.data["errors"][name] = f"{type(exc).__name__}: {exc}"
            report.write()
        print(f"{name} done, {budget.left():.0f} s of the budget left", flush=True)
    report.data["seconds"] = args.budget_s - budget.left()
    report.write()
    _print(report.data)
    print(f"wrote {report.path}")
    return 1 if report.data["errors"] else 0


def _print(data: dict[str, Any]) -> None:
    sections = data["sections"]
    if "inference" in sections:
        inf = sections["inference"]
        print(f"\n(a) inference, ms per image ({inf['gflops_per_image']:.2f} GFLOP per image)")
        print(f"{'setting':>14} {'network':>9} {'GFLOP/s':>9} {'peak MiB':>9}", end="")
        print("".join(f" {'e2e ' + size:>14}" for size in inf["end_to_end"]))
        for key, net in inf["network"].items():
            peak = net["peak_gpu_mib"]
            cells = f"{key:>14} {net['ms_per_image']:>9.2f} {net['gflops_per_s']:>9.0f}"
            cells += f" {'-' if peak is None else f'{peak:.0f}':>9}"
            for row in inf["end_to_end"].values():
                ms = row.get(key, {}).get("ms_per_image")
                cells += f" {'-' if ms is None else f'{ms:.1f}':>14}"
            print(cells)
    if "worker_batching" in sections:
        print("\n(d) worker batching")
        print_worker(sections["worker_batching"])
    if "fine_tune" in sections:
        ft = sections["fine_tune"]
        print(
            f"\n(b) fine-tuning: {ft['steps']} steps of {ft['batch_size']} in {ft['train_seconds']:.1f} s "
            f"({ft['steps_per_second']:.2f} steps/s; {ft['machine']}); loss {ft['loss_first_steps']:.3f}"
            f" -> {ft['loss_last_steps']:.3f}; IoU on {ft['pairs'] // 2} of the pairs"
            f" {ft['before']['iou']:.3f} -> {ft['after']['iou']:.3f}"
        )
    if "cluster" in sections:
        cl = sections["cluster"]
        devices = sorted({d for w in cl["workers"].values() for d in w["devices"]})
        print(f"\n(c) cluster: {len(cl['workers'])} worker(s) on {', '.join(devices)}, {cl['images']} images")
        for batch, row in cl["by_batch"].items():
            rate = row.get("images_per_second")
            print(f"  {batch:>8}: " + (row["skipped"] if rate is None else f"{rate:.1f} images/s"))
        print(f"  lost/duplicated: {cl['exactly_once']['lost']}/{cl['exactly_once']['duplicated']}")
    for note in data["skipped"]:
        print(f"skipped {note}")
    for name, error in data["errors"].items():
        print(f"error in {name}: {error}")


if __name__ == "__main__":
    raise SystemExit(main())
