"""The cluster client with real worker processes: every image gets exactly one result, whatever happens.

Workers are killed with SIGKILL mid-batch, retired mid-batch, crashed by a poisoned image; GPU tasks meet a
cluster without GPU workers; a job is cancelled. Each test starts and stops its own local cluster.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from cluster.client import ImageResult, JobProgress, SegmentationRequest, segment_references, submit_images
from cluster.exceptions import NoCapableWorkerError, SegmentationError
from cluster.launch import ClusterSpec, Deployment, connect, launch
from cluster.launch.deployment import close_client, rpc
from cluster.worker import SegmenterSpec
from tests.cluster.cluster_fakes import FakeSegmenter, FlakyLoad, write_images
from tests.cluster.cluster_fakes import shared_cluster as shared_cluster  # a fixture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def fake(seconds: float = 0.0, **options: Any) -> SegmenterSpec:
    items = tuple(sorted({"seconds": seconds, **options}.items()))
    return SegmenterSpec("fake", items, factory=FakeSegmenter)


def run_on_cluster(workers: int, body: Callable[[Deployment, Any], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        deployment = await launch(ClusterSpec(workers=workers, memory_limit="1GB"))
        client = await connect(deployment.scheduler_address)
        try:
            return await body(deployment, client)
        finally:
            await close_client(client)
            await deployment.close()

    return asyncio.run(main())


def run_on_shared(address: str, body: Callable[[Any], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        client = await connect(address)
        try:
            return await body(client)
        finally:
            await close_client(client)

    return asyncio.run(main())


def assert_exactly_once(results: list[ImageResult], total: int) -> None:
    counts = Counter(result.index for result in results)
    assert sorted(counts) == list(range(total)), "an image got no result"
    assert max(counts.values()) == 1, f"duplicated results: {[i for i, n in counts.items() if n > 1]}"


async def _worker_pids(client: Any) -> dict[str, int]:
    pids: dict[str, int] = await client.run(os.getpid)
    return pids


async def _busy_worker(client: Any) -> str:
    while True:
        processing = await rpc(client).processing()
        busy = [address for address, keys in processing.items() if keys]
        if busy:
            return busy[0]
        await asyncio.sleep(0.02)


def test_results_arrive_once_each_with_progress_and_per_image_failures(
    tmp_path: Path, shared_cluster: str
) -> None:
    paths = write_images(tmp_path, 12)
    sources = [*paths, tmp_path / "missing.png"]
    seen: list[JobProgress] = []

    async def body(client: Any) -> tuple[list[ImageResult], int]:
        request = SegmentationRequest(segmenter=fake())
        async with await submit_images(client, sources, request, progress=seen.append) as job:
            results = [result async for result in job]
        return results, job.batch_size

    results, batch_size = run_on_shared(shared_cluster, body)
    assert_exactly_once(results, len(sources))
    by_index = {r.index: r for r in results}
    assert all(by_index[i].outcome.ok for i in range(12))
    missing = by_index[12].outcome
    assert (
        not missing.ok and "missing.png" in (missing.error or "") and "no such file" in (missing.error or "")
    )
    segmentation = by_index[0].outcome.segmentation
    assert segmentation is not None and segmentation.image_name == str(paths[0])
    assert len(segmentation.spheroids) == 1
    assert [p.done for p in seen] == list(range(1, len(sources) + 1))
    assert seen[-1].failed == 1 and seen[-1].total == len(sources)
    assert 1 <= batch_size <= 4


def test_sigkill_of_a_worker_mid_batch_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    paths = write_images(tmp_path, 30)

    async def body(deployment: Deployment, client: Any) -> list[ImageResult]:
        request = SegmentationRequest(segmenter=fake(0.1), batch_size=3)
        results = []
        async with await submit_images(client, paths, request) as job:
            killed = False
            async for result in job:
                results.append(result)
                if not killed:
                    victim = await _busy_worker(client)
                    os.kill((await _worker_pids(client))[victim], signal.SIGKILL)
                    killed = True
        return results

    results = run_on_cluster(2, body)
    assert_exactly_once(results, len(paths))
    assert all(result.outcome.ok for result in results)


def test_scaling_down_mid_batch_retires_a_worker_without_losing_work(tmp_path: Path) -> None:
    paths = write_images(tmp_path, 24)

    async def body(deployment: Deployment, client: Any) -> tuple[list[ImageResult], int]:
        request = SegmentationRequest(segmenter=fake(0.1), batch_size=2)
        results = []
        async with await submit_images(client, paths, request) as job:
            scaling: asyncio.Task[int] | None = None
            async for result in job:
                results.append(result)
                if scaling is None:
                    scaling = asyncio.ensure_future(deployment.scale(1))
            assert scaling is not None
            await scaling
        workers = len((await rpc(client).identity())["workers"])
        return results, workers

    results, workers_left = run_on_cluster(2, body)
    assert_exactly_once(results, len(paths))
    assert all(result.outcome.ok for result in results)
    assert workers_left == 1


def test_an_image_that_keeps_killing_workers_fails_alone_with_a_reason(tmp_path: Path) -> None:
    paths = write_images(tmp_path, 6, poison=[2])

    async def body(deployment: Deployment, client: Any) -> list[ImageResult]:
        request = SegmentationRequest(segmenter=fake(poison=True), batch_size=2)
        return await segment_references(client, paths, request)

    results = run_on_cluster(2, body)
    assert_exactly_once(results, len(paths))
    failed = [r for r in results if not r.outcome.ok]
    assert [r.index for r in failed] == [2], [r.outcome.error for r in failed]
    assert "worker died 3 times on this image; likely out of memory" in (failed[0].outcome.error or "")
    assert "img002.png" in (failed[0].outcome.error or "")


def test_gpu_work_without_a_gpu_worker_fails_within_seconds(tmp_path: Path, shared_cluster: str) -> None:
    paths = write_images(tmp_path, 3)

    async def body(client: Any) -> float:
        request = SegmentationRequest(segmenter=fake(), gpu=True, no_worker_timeout=1.0, poll_interval=0.1)
        started = time.monotonic()
        with pytest.raises(NoCapableWorkerError, match="GPU") as caught:
            await segment_references(client, paths, request)
        assert "none of the 2 workers offers one" in str(caught.value)
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.2)
        assert not [key for key in (await rpc(client).processing()).values() if key]
        return elapsed

    assert run_on_shared(shared_cluster, body) < 5.0


def test_cancelling_a_job_releases_its_tasks(tmp_path: Path, shared_cluster: str) -> None:
    paths = write_images(tmp_path, 20)

    async def body(client: Any) -> tuple[int, bool, dict[str, int]]:
        request = SegmentationRequest(segmenter=fake(0.2), batch_size=1)
        job = await submit_images(client, paths, request)
        received = 0
        async for _ in job:
            received += 1
            if received == 2:
                await job.cancel()
        await asyncio.sleep(0.5)
        states: dict[str, int] = await client.run_on_scheduler(
            lambda dask_scheduler: dict(Counter(ts.state for ts in dask_scheduler.tasks.values()))
        )
        return received, job.cancelled, states

    received, cancelled, states = run_on_shared(shared_cluster, body)
    assert cancelled and 2 <= received < 20
    assert not states, f"tasks left on the scheduler after cancel: {states}"


def test_transient_load_failures_are_retried_and_lasting_ones_fail_each_image(
    tmp_path: Path, shared_cluster: str
) -> None:
    paths = write_images(tmp_path, 2)

    def flaky(failures: int) -> SegmenterSpec:
        counter = str(tmp_path / f"loads-{failures}")
        return SegmenterSpec("flaky", (("counter", counter), ("failures", failures)), factory=FlakyLoad)

    async def body(client: Any) -> tuple[list[ImageResult], list[ImageResult]]:
        # The plugin loads fail (one per worker); the tasks load it again.
        recovered = await segment_references(
            client, paths, SegmentationRequest(segmenter=flaky(2), retries=2)
        )
        lasting = await segment_references(client, paths, SegmentationRequest(segmenter=flaky(99), retries=1))
        with pytest.raises(SegmentationError, match="bad parameters"):
            await segment_references(client, paths, SegmentationRequest(segmenter=fake(no_such_option=1)))
        return recovered, lasting

    recovered, lasting = run_on_shared(shared_cluster, body)
    assert [r.outcome.ok for r in recovered] == [True, True]
    assert [r.outcome.ok for r in lasting] == [False, False]
    assert all("after 2 tries: RuntimeError: device busy" in (r.outcome.error or "") for r in lasting), [
        r.outcome.error for r in lasting
    ]


def test_gpu_tasks_run_only_on_gpu_workers_in_batches_sized_for_gpus(tmp_path: Path) -> None:
    from distributed import Nanny

    from cluster.worker import worker_report

    paths = write_images(tmp_path, 40)

    async def main() -> tuple[int, int, dict[str, int]]:
        deployment = await launch(ClusterSpec(gpus=True, gpu_devices=("0", "1"), memory_limit="1GB"))
        cpu_worker = await Nanny(deployment.scheduler_address, nthreads=1, memory_limit="1GB", name="cpu")
        client = await connect(deployment.scheduler_address)
        try:
            await client.wait_for_workers(3)
            gpu_job = await submit_images(client, paths, SegmentationRequest(segmenter=fake(), gpu=True))
            async with gpu_job:
                assert_exactly_once([result async for result in gpu_job], len(paths))
            reports = await client.run(worker_report)
            done = {report["name"]: report["images_ok"] for report in reports.values()}
            any_job = await submit_images(client, paths, SegmentationRequest(segmenter=fake()))
            async with any_job:
                assert_exactly_once([result async for result in any_job], len(paths))
            return gpu_job.batch_size, any_job.batch_size, done
        finally:
            await close_client(client)
            await cpu_worker.close()
            await deployment.close()

    gpu_batch, any_batch, done = asyncio.run(main())
    assert done["cpu"] == 0 and done["gpu-0"] + done["gpu-1"] == 40
    assert gpu_batch == 5  # GPU policy: 40 images, 2 GPU workers, 4 tasks each
    assert any_batch == 4  # a pool with a CPU worker gets CPU-sized batches


def test_cancelling_some_images_releases_their_tasks_and_delivers_the_others(
    tmp_path: Path, shared_cluster: str
) -> None:
    paths = write_images(tmp_path, 12)

    async def body(client: Any) -> tuple[list[int], dict[str, int]]:
        request = SegmentationRequest(segmenter=fake(0.3), batch_size=1)
        job = await submit_images(client, paths, request)
        await job.cancel_images(range(4, 12))
        received = sorted([result.index async for result in job])
        await asyncio.sleep(0.5)
        states: dict[str, int] = await client.run_on_scheduler(
            lambda dask_scheduler: dict(Counter(ts.state for ts in dask_scheduler.tasks.values()))
        )
        return received, states

    received, states = run_on_shared(shared_cluster, body)
    assert received == [0, 1, 2, 3]
    assert not states, f"tasks left on the scheduler: {states}"


def test_cancelling_every_image_left_ends_the_job(tmp_path: Path, shared_cluster: str) -> None:
    paths = write_images(tmp_path, 6)

    async def body(client: Any) -> list[int]:
        request = SegmentationRequest(segmenter=fake(0.3), batch_size=1)
        job = await submit_images(client, paths, request)
        received = []
        async for result in job:
            received.append(result.index)
            await job.cancel_images(range(6))
        return received

    assert len(run_on_shared(shared_cluster, body)) == 1
