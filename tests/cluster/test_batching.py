"""The batching policies on their own: images per task from the workers' devices and the job's size, and
images per network call from the device and its free memory."""

from __future__ import annotations

import pytest

from cluster.batching import BatchPolicy, DevicePolicy, chunks


def test_gpu_workers_get_bigger_batches_than_cpu_workers_on_a_big_job() -> None:
    policy = BatchPolicy(cpu=4, gpu=8, tasks_per_worker=4)
    assert policy.batch_size(10_000, ["cuda:0", "cuda:0"]) == 8
    assert policy.batch_size(10_000, ["cpu", "cpu"]) == 4
    assert policy.batch_size(10_000, ["cuda:0", "cpu"]) == 4  # a mixed pool gets what the CPUs can take


def test_small_jobs_are_spread_over_every_worker() -> None:
    policy = BatchPolicy(cpu=4, gpu=8, tasks_per_worker=4)
    assert policy.batch_size(3, ["cpu", "cpu"]) == 1
    assert policy.batch_size(40, ["cuda:0"] * 2) == 5  # 8 tasks: four per worker
    assert policy.batch_size(0, []) == 1


def test_chunks_cover_every_index_once_in_order() -> None:
    assert list(chunks(list(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(ValueError, match="at least 1"):
        BatchPolicy(cpu=0)


def test_a_gpu_call_takes_what_half_the_free_memory_holds() -> None:
    policy = DevicePolicy(cpu=4, gpu=8, most=64, memory_share=0.5)
    mib = 2**20
    assert policy.images_per_call("cuda:0", free_bytes=8000 * mib, bytes_per_image=300 * mib) == 13
    assert policy.images_per_call("cuda", free_bytes=100 * mib, bytes_per_image=300 * mib) == 1  # never 0
    assert policy.images_per_call("cuda:1", free_bytes=80_000 * mib, bytes_per_image=10 * mib) == 64


def test_cpus_get_the_measured_count_and_an_unmeasured_gpu_the_default() -> None:
    policy = DevicePolicy(cpu=4, gpu=8)
    assert policy.images_per_call("cpu", free_bytes=10**12, bytes_per_image=1) == 4
    assert policy.images_per_call("cuda:0", free_bytes=None, bytes_per_image=None) == 8
    assert policy.images_per_call("mps", free_bytes=None, bytes_per_image=None) == 8
    with pytest.raises(ValueError, match="memory_share"):
        DevicePolicy(memory_share=0.0)
    with pytest.raises(ValueError, match="at least 1"):
        DevicePolicy(cpu=0)
