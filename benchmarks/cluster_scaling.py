"""Cluster segmentation: throughput, scaling efficiency, scheduling overhead, recovery from a killed worker.

(a) Real segmenter (classical by default) on synthetic 512² scenes with 1 and 2 worker processes on this
    machine: images per second and efficiency = rate(2) / (2 × rate(1)); beside it, the same work in 1 and
    2 plain processes without Dask, which shows how much parallelism the machine itself gives.
(b) Simulated accelerator work: a segmenter that waits a calibrated 50 ms or 200 ms per image, as a worker
    waits on its GPU, on 1, 2, 4, 8 and 16 GPU workers (fake devices, pinned and with GPU=1 as on a GPU
    machine), through the whole path (reference → read → segment → polygons → metrics → result).
    Efficiency = ideal time / measured time, ideal = images × calibrated seconds per image / workers.
(c) Scheduling overhead per image: a no-op segmenter on one worker, cluster time minus the in-process time
    of the same work, per image, with one image per task and with the batching policy's choice.
(d) Recovery: SIGKILL one of two workers mid-job; seconds until a replacement worker joins, and the job's
    extra time over the same job undisturbed.
Every job checks that each image got exactly one result; the lost and duplicated counts are reported.

Job times exclude starting the cluster and loading the segmenter (a warm-up job runs first). Times on a
shared machine are noisy: compare the ratios measured in the same run.

Prints a table and writes benchmarks/results/cluster_scaling.json.

Usage: python benchmarks/cluster_scaling.py [--method classical] [--real-images 24] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import signal
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image

from cluster.client import ImageResult, SegmentationRequest, submit_images
from cluster.launch import ClusterSpec, connect, launch
from cluster.launch.control import deploy, stop
from cluster.launch.deployment import close_client, rpc
from cluster.methods import make_segmenter
from cluster.pipeline import segment_sources
from cluster.testing import StandInSegmenter
from cluster.worker import SegmenterSpec, segment_batch

RESULTS = Path(__file__).resolve().parent / "results"


def simulated(seconds: float) -> SegmenterSpec:
    """Accelerator work: the stand-in segmenter waits ``seconds`` per image, as a worker on its GPU.

    It lives in the installed package, so the workers import it by name and Dask pickles a reference to
    it rather than the class itself with every task (as it does for a real method's name).
    """
    return SegmenterSpec("simulated", (("seconds", seconds),), factory=StandInSegmenter)


class Tally:
    """Images with no result, and results beyond the first, over every job of the run."""

    def __init__(self) -> None:
        self.lost = 0
        self.duplicated = 0

    def check(self, results: list[ImageResult], total: int) -> None:
        counts = Counter(result.index for result in results)
        self.lost += total - len(counts)
        self.duplicated += sum(n - 1 for n in counts.values())


async def timed_job(
    client: Any, sources: Sequence[Path], request: SegmentationRequest, tally: Tally
) -> tuple[float, int]:
    started = time.perf_counter()
    async with await submit_images(client, sources, request) as job:
        results = [result async for result in job]
    elapsed = time.perf_counter() - started
    tally.check(results, len(sources))
    failed = sum(not r.outcome.ok for r in results)
    if failed:
        raise RuntimeError(f"{failed} images failed: {results[0].outcome.error}")
    return elapsed, job.batch_size


def _noop(value: int) -> int:
    return value


async def _dask_floor(client: Any, tasks: int) -> float:
    """Seconds per task of Dask alone here and now: no-op tasks, submitted at once, gathered each."""
    from distributed import as_completed

    started = time.perf_counter()
    futures = client.map(_noop, range(tasks), pure=False)
    async for future in as_completed(futures, loop=client.loop):
        await future
    return (time.perf_counter() - started) / tasks


async def _measure(
    address: str, runs: list[tuple[Sequence[Path], SegmentationRequest]], tally: Tally, floor_tasks: int
) -> tuple[list[tuple[float, int]], float | None]:
    client = await connect(address)
    try:
        out = []
        for sources, request in runs:
            await timed_job(
                client, sources[: max(2, len(sources) // 8)], request, tally
            )  # warm-up: load, first calls
            out.append(await timed_job(client, sources, request, tally))
        floor = await _dask_floor(client, floor_tasks) if floor_tasks else None
        return out, floor
    finally:
        await close_client(client)


def _on_cluster(
    spec: ClusterSpec,
    runs: list[tuple[Sequence[Path], SegmentationRequest]],
    tally: Tally,
    floor_tasks: int = 0,
) -> tuple[list[tuple[float, int]], float | None]:
    """Deploy ``spec`` as ``spheroseg cluster deploy`` does (scheduler and workers in their own processes,
    apart from this client), run the jobs (and, with ``floor_tasks``, bare Dask tasks), stop it."""
    with tempfile.TemporaryDirectory() as folder:
        state_path = Path(folder) / "cluster.json"
        state = deploy(spec, state_path)
        try:
            return asyncio.run(_measure(state.scheduler_address, runs, tally, floor_tasks))
        finally:
            stop(state_path)


def _tiny_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"tiny{index:04d}.png"
        Image.fromarray(np.full((16, 16), 100 + index % 50, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def scene_files(folder: Path, count: int, size: int) -> list[Path]:
    from cluster.synthetic import generate_scene

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(count):
        path = folder / f"scene{seed:03d}.tif"
        tifffile.imwrite(path, generate_scene(5000 + seed, (size, size)).image)
        paths.append(path)
    return paths


def calibrate(seconds: float, image: Path, repeats: int = 20) -> float:
    """Seconds one simulated image takes through the whole worker path in this process."""
    spec = simulated(seconds)
    segment_batch([(0, str(image), "x")], spec)  # load once
    started = time.perf_counter()
    for _ in range(repeats):
        segment_batch([(0, str(image), "x")], spec)
    return (time.perf_counter() - started) / repeats


def _segment_path(job: tuple[str, str]) -> bool:
    method, path = job
    (outcome,) = segment_sources([path], _process_segmenter(method))
    return outcome.ok


_SEGMENTERS: dict[str, Any] = {}


def _process_segmenter(method: str) -> Any:
    if method not in _SEGMENTERS:
        _SEGMENTERS[method] = make_segmenter(method)
    return _SEGMENTERS[method]


ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
"""What a Dask nanny sets in its worker processes; the plain processes get the same."""


def _plain_processes(method: str, paths: Sequence[Path], processes: int) -> float:
    """Images per second of ``processes`` plain worker processes, no Dask: what this machine allows."""
    jobs = [(method, str(path)) for path in paths]
    saved = {name: os.environ.get(name) for name in ONE_THREAD}
    os.environ.update(ONE_THREAD)  # inherited by the processes spawned now
    try:
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_segment_path, jobs[:processes]))  # load the segmenter in each process
            started = time.perf_counter()
            assert all(pool.map(_segment_path, jobs))
            return len(paths) / (time.perf_counter() - started)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def real_scaling(folder: Path, method: str, count: int, tally: Tally) -> dict[str, Any]:
    paths = scene_files(folder / "scenes", count, 512)
    request = SegmentationRequest(segmenter=SegmenterSpec.of(method))
    rates = {}
    for workers in (1, 2):
        ((elapsed, batch),), _ = _on_cluster(ClusterSpec(workers=workers), [(paths, request)], tally)
        rates[workers] = {
            "seconds": elapsed,
            "images_per_second": count / elapsed,
            "batch": batch,
            "plain_processes_images_per_second": _plain_processes(method, paths, workers),
        }
    efficiency = rates[2]["images_per_second"] / (2 * rates[1]["images_per_second"])
    plain = rates[2]["plain_processes_images_per_second"] / (
        2 * rates[1]["plain_processes_images_per_second"]
    )
    return {
        "method": method,
        "images": count,
        "size": 512,
        "by_workers": rates,
        "efficiency_2": efficiency,
        "plain_processes_efficiency_2": plain,
    }


def simulated_scaling(folder: Path, worker_counts: Sequence[int], tally: Tally) -> dict[str, Any]:
    tiny = _tiny_images(folder / "tiny", 16 * max(worker_counts) * 2)
    table: dict[str, Any] = {}
    calibrated = {ms: calibrate(ms / 1000, tiny[0]) for ms in (50, 200)}
    for workers in worker_counts:
        spec = ClusterSpec(gpus=True, gpu_devices=tuple(str(i) for i in range(workers)), memory_limit="512MB")
        runs = []
        for ms, per_worker in ((50, 32), (200, 16)):
            request = SegmentationRequest(segmenter=simulated(ms / 1000), gpu=True)
            runs.append((tiny[: per_worker * workers], request))
        measured, _ = _on_cluster(spec, runs, tally)
        for (ms, per_worker), (elapsed, batch) in zip(((50, 32), (200, 16)), measured, strict=True):
            images = per_worker * workers
            ideal = images * calibrated[ms] / workers
            table.setdefault(f"{ms}ms", {})[str(workers)] = {
                "images": images,
                "seconds": elapsed,
                "ideal_seconds": ideal,
                "efficiency": ideal / elapsed,
                "images_per_second": images / elapsed,
                "batch": batch,
            }
    return {"calibrated_seconds_per_image": {f"{k}ms": v for k, v in calibrated.items()}, "by_task": table}


def overhead(folder: Path, count: int, tally: Tally) -> dict[str, Any]:
    tiny = _tiny_images(folder / "tiny", count)
    spec = simulated(0.0)
    batch = [(i, str(path), path.name) for i, path in enumerate(tiny)]
    segment_batch(batch[:2], spec)
    in_process = []
    for _ in range(3):
        started = time.perf_counter()
        segment_batch(batch, spec)
        in_process.append(time.perf_counter() - started)
    local = statistics.median(in_process)
    runs = [
        (tiny, SegmentationRequest(segmenter=spec, batch_size=1)),
        (tiny, SegmentationRequest(segmenter=spec)),
    ]
    measured, floor = _on_cluster(ClusterSpec(workers=1), runs, tally, floor_tasks=count)
    result: dict[str, Any] = {
        "images": count,
        "in_process_ms_per_image": local / count * 1000,
        "dask_ms_per_noop_task": (floor or 0.0) * 1000,
    }
    for name, (elapsed, size) in zip(("batch_1", "policy"), measured, strict=True):
        result[name] = {"batch": size, "ms_per_image": (elapsed - local) / count * 1000, "seconds": elapsed}
    return result


async def _recovery_run(paths: Sequence[Path], kill: bool, tally: Tally) -> dict[str, float]:
    deployment = await launch(ClusterSpec(workers=2, memory_limit="512MB"))
    client = await connect(deployment.scheduler_address)
    try:
        request = SegmentationRequest(segmenter=simulated(0.2), batch_size=2)
        await timed_job(client, paths[:4], request, tally)
        restart = float("nan")
        rejoined: dict[str, float] = {}
        watcher: asyncio.Future[None] | None = None
        started = time.perf_counter()
        async with await submit_images(client, paths, request) as job:
            results = []
            killed_at = None
            async for result in job:
                results.append(result)
                if kill and killed_at is None and len(results) >= len(paths) // 4:
                    pids = await client.run(os.getpid)
                    victim = next(iter(await rpc(client).processing()))
                    os.kill(pids[victim], signal.SIGKILL)
                    killed_at = time.perf_counter()
                    watcher = asyncio.ensure_future(_watch_rejoin(client, victim, killed_at, rejoined))
        elapsed = time.perf_counter() - started
        tally.check(results, len(paths))
        if kill:
            for _ in range(200):
                if "restart" in rejoined:
                    break
                await asyncio.sleep(0.05)
            restart = rejoined.get("restart", float("nan"))
        if watcher is not None:
            watcher.cancel()
        return {"seconds": elapsed, "restart_seconds": restart}
    finally:
        await close_client(client)
        await deployment.close()


async def _watch_rejoin(client: Any, victim: str, since: float, out: dict[str, float]) -> None:
    while True:
        workers = (await rpc(client).identity())["workers"]
        if len(workers) == 2 and victim not in workers:
            out["restart"] = time.perf_counter() - since
            return
        await asyncio.sleep(0.02)


def recovery(folder: Path, tally: Tally) -> dict[str, Any]:
    paths = _tiny_images(folder / "tiny", 40)
    calm = asyncio.run(_recovery_run(paths, kill=False, tally=tally))
    killed = asyncio.run(_recovery_run(paths, kill=True, tally=tally))
    return {
        "images": len(paths),
        "undisturbed_seconds": calm["seconds"],
        "with_kill_seconds": killed["seconds"],
        "extra_seconds": killed["seconds"] - calm["seconds"],
        "replacement_joined_seconds": killed["restart_seconds"],
    }


def _print(report: dict[str, Any]) -> None:
    machine = report["machine"]
    load = machine["load_average_1min"]
    print(
        f"{machine['cpus']} CPUs; 1-minute load average {load['before']:.1f} before the run, "
        f"{load['after']:.1f} after (other work on this machine slows every number below)"
    )
    real = report["real"]
    print(f"\n(a) {real['method']} segmenter, {real['images']} synthetic {real['size']}² scenes")
    print(f"{'workers':>8} {'images/s':>10} {'seconds':>9} {'batch':>6} {'no Dask: images/s':>18}")
    for workers, row in real["by_workers"].items():
        plain = row["plain_processes_images_per_second"]
        cells = f"{workers:>8} {row['images_per_second']:>10.2f} {row['seconds']:>9.2f} {row['batch']:>6}"
        print(f"{cells} {plain:>18.2f}")
    print(
        f"efficiency at 2 workers: {real['efficiency_2']:.2f} (2 plain processes without Dask, same images: "
        f"{real['plain_processes_efficiency_2']:.2f})"
    )
    sim = report["simulated"]
    calibrated = ", ".join(f"{k}: {v * 1000:.1f} ms" for k, v in sim["calibrated_seconds_per_image"].items())
    print(f"\n(b) simulated accelerator work (calibrated per image: {calibrated})")
    heads = ("task", "workers", "images", "images/s", "seconds", "ideal s", "eff.", "batch")
    print(" ".join(f"{head:>8}" for head in heads))
    for task, rows in sim["by_task"].items():
        for workers, row in rows.items():
            cells = (task, workers, row["images"], f"{row['images_per_second']:.1f}", f"{row['seconds']:.2f}")
            cells += (f"{row['ideal_seconds']:.2f}", f"{row['efficiency']:.3f}", row["batch"])
            print(" ".join(f"{cell:>8}" for cell in cells))
    over = report["overhead"]
    print(
        f"\n(c) scheduling overhead, {over['images']} no-op images on 1 worker "
        f"(in-process work {over['in_process_ms_per_image']:.2f} ms/image; Dask alone here and now: "
        f"{over['dask_ms_per_noop_task']:.2f} ms per no-op task)"
    )
    for name in ("batch_1", "policy"):
        row = over[name]
        print(f"  {row['batch']} image(s) per task: {row['ms_per_image']:.2f} ms per image")
    rec = report["recovery"]
    print(f"\n(d) SIGKILL of 1 of 2 workers mid-job ({rec['images']} images of 200 ms, 2 per task)")
    print(
        f"  replacement worker joined after {rec['replacement_joined_seconds']:.2f} s; job took "
        f"{rec['with_kill_seconds']:.2f} s vs {rec['undisturbed_seconds']:.2f} s undisturbed "
        f"(+{rec['extra_seconds']:.2f} s)"
    )
    tally = report["exactly_once"]
    print(f"\nlost images: {tally['lost']}, duplicated results: {tally['duplicated']} (all jobs of this run)")
    goals = report["goals"]
    print(
        f"goals: efficiency at 16 workers, 200 ms tasks {goals['efficiency_16_200ms']:.3f} (>= 0.95); "
        f"overhead {goals['overhead_ms_per_image']:.2f} ms per image (<= 3); lost/duplicated "
        f"{goals['lost_or_duplicated']} (0)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="classical", help="real segmenter of part (a)")
    parser.add_argument("--real-images", type=int, default=24)
    parser.add_argument("--quick", action="store_true", help="1, 2 and 4 simulated workers only")
    args = parser.parse_args()
    tally = Tally()
    counts = (1, 2, 4) if args.quick else (1, 2, 4, 8, 16)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        load_before = os.getloadavg()[0]
        report: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "real": real_scaling(folder, args.method, args.real_images, tally),
            "simulated": simulated_scaling(folder, counts, tally),
            "overhead": overhead(folder, 200, tally),
            "recovery": recovery(folder, tally),
        }
    report["machine"]["load_average_1min"] = {"before": load_before, "after": os.getloadavg()[0]}
    report["exactly_once"] = {"lost": tally.lost, "duplicated": tally.duplicated}
    top = str(max(counts))
    report["goals"] = {
        "efficiency_16_200ms": report["simulated"]["by_task"]["200ms"][top]["efficiency"],
        "overhead_ms_per_image": report["overhead"]["policy"]["ms_per_image"],
        "lost_or_duplicated": tally.lost + tally.duplicated,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster_scaling.json").write_text(json.dumps(report, indent=2))
    _print(report)


if __name__ == "__main__":
    main()
