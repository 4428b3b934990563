"""One worker's images per second through the real worker path: network batch 1 against batching.

A one-worker cluster (the ``local`` launcher; with ``--device cuda`` one GPU worker, pinned, GPU=1) segments
synthetic scenes (16-bit TIFFs on local disk, fixed seeds) with the shipped ResUNet, ``--per-task`` images
per task, through the whole worker path (reference → fetch and decode in the reading threads → network →
polygons → metrics → result), in the same run:

- **batch 1**: ``ResUNetParams.batch_size=1``, one image per network call, as every worker ran before;
- **the device's choice** (:class:`cluster.batching.DevicePolicy`: from the free memory on CUDA, the
  measured count on CPUs), images of one working size handed to the network together;
- on a CPU, where the choice is 1, also a fixed batch (``--fixed``, 4): the measurement behind that choice.

Settings alternate over ``--rounds`` rounds and each reports its median, so a busy spell of a shared
machine slows all of them alike.

Beside them, in this process with the same torch threads as the worker: **the model's own throughput**,
decoded and normalised images through ``ResUNetSegmenter.segment`` in batches of the size the worker used
(the device's choice, at most a task's images), and of the device's choice alone (no reading, no polygons,
no cluster). The goal on a GPU is the worker path at the device's choice within 15% of the model at the
worker's batch (``worker_over_model`` >= 0.85; anchor: the V4 paper's 11.8 images/s batched on an RTX
A5000). On a CPU the network alone at the working size with 1, 2, 4 and 8 images per call is measured
too: the figures behind ``DevicePolicy.cpu``.

Job times exclude starting the cluster and loading the model (a warm-up job runs first for each setting).
Times on a shared machine are noisy: compare the ratios measured in the same run.

Prints a table and writes benchmarks/results/worker_batching.json (``--out`` elsewhere).

Usage: python benchmarks/worker_batching.py [--device cpu|cuda] [--images 32] [--size 512] [--per-task 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from cluster_scaling import Tally, scene_files, timed_job

from cluster.client import SegmentationRequest
from cluster.imaging import normalize, read_image
from cluster.launch import ClusterSpec, connect, launch
from cluster.launch.deployment import close_client
from cluster.model.devices import torch_threads
from cluster.model.segmenter import ResUNetParams, ResUNetSegmenter
from cluster.worker import SegmenterSpec, worker_report

RESULTS = Path(__file__).resolve().parent / "results"
GOAL = 0.85
"""Worker path over the model's own batched throughput, on a GPU."""


def _torch_threads() -> int:
    return torch.get_num_threads()


def _settings(device: str, fixed: int) -> list[tuple[str, int | None]]:
    """Network batch settings: 1, the device's choice, and on a CPU (where the choice is 1) ``fixed``."""
    settings: list[tuple[str, int | None]] = [("batch_1", 1), ("policy", None)]
    if not device.startswith("cuda"):
        settings.append((f"batch_{fixed}", fixed))
    return settings


async def _worker_rates(
    device: str, paths: Sequence[Path], per_task: int, rounds: int, fixed: int
) -> dict[str, Any]:
    gpu = device.startswith("cuda")
    # memory_limit "0": no cap, as "auto" gives a 1-thread worker 1/cores of the machine's RAM
    spec = ClusterSpec(gpus=True, memory_limit="0") if gpu else ClusterSpec(workers=1, memory_limit="0")
    deployment = await launch(spec)
    client = await connect(deployment.scheduler_address)
    tally = Tally()
    requests = {
        name: SegmentationRequest(
            segmenter=SegmenterSpec.of("resunet", device=device, batch_size=batch_size),
            gpu=gpu,
            batch_size=per_task,
        )
        for name, batch_size in _settings(device, fixed)
    }
    samples: dict[str, list[float]] = {name: [] for name in requests}
    try:
        for request in requests.values():
            await timed_job(client, paths[: 2 * per_task], request, tally)  # load, first calls
        for _ in range(rounds):  # alternating, so a busy spell of this machine slows every setting
            for name, request in requests.items():
                seconds, _ = await timed_job(client, paths, request, tally)
                samples[name].append(len(paths) / seconds)
        (threads,) = (await client.run(_torch_threads)).values()
        (report,) = (await client.run(worker_report)).values()
    finally:
        await close_client(client)
        await deployment.close()
    return {
        **{
            name: {"images_per_second": statistics.median(rates), "samples": rates}
            for name, rates in samples.items()
        },
        "worker_torch_threads": threads,
        "worker_devices": report["devices"],
        "exactly_once": {"lost": tally.lost, "duplicated": tally.duplicated},
    }


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _model_rate(segmenter: ResUNetSegmenter, images: list[Any], batch: int, device: str) -> float:
    """Images per second of ``segmenter.segment`` on decoded images, ``batch`` per call."""
    _sync(device)
    started = time.perf_counter()
    for start in range(0, len(images), batch):
        segmenter.segment(images[start : start + batch])
    _sync(device)
    return len(images) / (time.perf_counter() - started)


def model_rates(
    device: str, paths: Sequence[Path], threads: int, rounds: int, per_task: int
) -> dict[str, Any]:
    """The model's own images per second at batch 1, at the batch a worker's task allows (the device's
    choice, at most ``per_task``) and at the device's choice alone (more than a task holds on a big GPU)."""
    images = [normalize(read_image(path).pixels) for path in paths]
    with torch_threads(threads):
        segmenter = ResUNetSegmenter(ResUNetParams(device=device))
        shape = (images[0].shape[0], images[0].shape[1])
        policy = min(segmenter.batch_limit(shape), len(images))
        batch = min(policy, per_task)
        segmenter.segment(images[:policy])  # load, first calls
        samples: dict[int, list[float]] = {1: [], batch: [], policy: []}
        for _ in range(rounds):
            for size in samples:
                samples[size].append(_model_rate(segmenter, images, size, device))
    return {
        "batch": batch,
        "batch_1_images_per_second": statistics.median(samples[1]),
        "batched_images_per_second": statistics.median(samples[batch]),
        "policy_batch": policy,
        "policy_batch_images_per_second": statistics.median(samples[policy]),
    }


def network_sweep(device: str, threads: int, batches: Sequence[int] = (1, 2, 4, 8)) -> dict[str, float]:
    """Milliseconds per image of the network alone at the working size, per images per call."""
    predictor = ResUNetSegmenter(ResUNetParams(device=device, batch_size=1)).predictor
    size = predictor.working_size
    out = {}
    with torch_threads(threads), torch.inference_mode():
        for batch in batches:
            x = torch.rand(batch, 1, size, size, device=device)
            for _ in range(2):
                predictor._run(x)
            _sync(device)
            started, calls = time.perf_counter(), 0
            while time.perf_counter() - started < 2.0:
                predictor._run(x)
                calls += 1
            _sync(device)
            out[str(batch)] = (time.perf_counter() - started) * 1000 / (calls * batch)
    return out


def measure(
    device: str, folder: Path, images: int, size: int, per_task: int, rounds: int = 3, fixed: int = 4
) -> dict[str, Any]:
    """The whole comparison (what benchmarks/gpu.py runs as its worker section)."""
    paths = scene_files(folder, images, size)
    worker = asyncio.run(_worker_rates(device, paths, per_task, rounds, fixed))
    model = model_rates(device, paths, worker["worker_torch_threads"], rounds, per_task)
    baseline = worker["batch_1"]["images_per_second"]
    result: dict[str, Any] = {
        "device": device,
        "images": images,
        "size": size,
        "images_per_task": per_task,
        "rounds": rounds,
        "worker": worker,
        "model": model,
        "over_batch_1": {
            name: row["images_per_second"] / baseline
            for name, row in worker.items()
            if name.startswith(("batch_", "policy")) and name != "batch_1"
        },
        "worker_over_model": worker["policy"]["images_per_second"] / model["batched_images_per_second"],
        "goal_worker_over_model_on_gpu": GOAL,
    }
    if not device.startswith("cuda"):
        result["network_ms_per_image_by_batch"] = network_sweep(device, worker["worker_torch_threads"])
    return result


def print_table(result: dict[str, Any]) -> None:
    worker, model = result["worker"], result["model"]
    devices = ", ".join(worker["worker_devices"])
    print(
        f"{result['images']} scenes of {result['size']}², {result['images_per_task']} per task, one worker "
        f"on {devices} ({worker['worker_torch_threads']} torch threads)"
    )
    print(f"{'':>30} {'images/s':>9} {'x batch 1':>10}")
    for name, row in worker.items():
        if name.startswith(("batch_", "policy")):
            ratio = result["over_batch_1"].get(name, 1.0)
            label = "worker, " + ("device's choice" if name == "policy" else name.replace("_", " "))
            print(f"{label:>30} {row['images_per_second']:>9.2f} {ratio:>10.2f}")
    print(f"{'model alone, batch 1':>30} {model['batch_1_images_per_second']:>9.2f}")
    for batch, rate in sorted(
        {
            model["batch"]: model["batched_images_per_second"],
            model["policy_batch"]: model["policy_batch_images_per_second"],
        }.items()
    ):
        if batch != 1:
            print(f"{'model alone, batch ' + str(batch):>30} {rate:>9.2f}")
    print(
        f"worker (device's choice) / model alone (batch {model['batch']}): {result['worker_over_model']:.2f}"
        f" (goal on a GPU: >= {GOAL}); medians of {result['rounds']} alternating rounds"
    )
    sweep = result.get("network_ms_per_image_by_batch")
    if sweep:
        print("network alone, ms per image: " + ", ".join(f"batch {b}: {ms:.1f}" for b, ms in sweep.items()))
    once = worker["exactly_once"]
    print(f"lost/duplicated: {once['lost']}/{once['duplicated']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--per-task", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fixed", type=int, default=4, help="a fixed batch also measured on CPUs")
    parser.add_argument("--out", type=Path, default=RESULTS / "worker_batching.json")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(
            args.device, Path(tmp), args.images, args.size, args.per_task, args.rounds, args.fixed
        )
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
