"""The batching policy on its own: images per task from the workers' devices and the job's size."""

from __future__ import annotations

import pytest

from cluster.batching import BatchPolicy, chunks


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
