"""How many images go into one task: the batching policy, kept apart from the cluster so it is tested alone.

Each task costs the scheduler a few milliseconds and a GPU wants several images to stay busy, so tasks
carry batches; but big batches leave workers idle at the end of a job and lose more work when a worker
dies. The policy takes the most images per task a device should get (``cpu``, ``gpu``) and lowers it so
that every worker still gets at least ``tasks_per_worker`` tasks::

    BatchPolicy().batch_size(n_images=1000, devices=["cuda:0", "cuda:0"])  # 8
    BatchPolicy().batch_size(n_images=10, devices=["cpu", "cpu"])          # 2
    BatchPolicy().batch_size(n_images=3, devices=["cpu", "cpu"])           # 1
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["BatchPolicy", "chunks", "is_gpu_device"]


def is_gpu_device(device: str) -> bool:
    return device.startswith(("cuda", "gpu", "mps"))


@dataclass(frozen=True)
class BatchPolicy:
    """Images per task from the workers' devices and the job's size."""

    cpu: int = 4
    """Most images per task when the workers compute on CPUs."""
    gpu: int = 8
    """Most images per task when every capable worker has an accelerator."""
    tasks_per_worker: int = 4
    """Fewest tasks each worker should get, so the work evens out at the end of a job."""

    def __post_init__(self) -> None:
        if min(self.cpu, self.gpu, self.tasks_per_worker) < 1:
            raise ValueError("batch sizes and tasks_per_worker must be at least 1")

    def batch_size(self, n_images: int, devices: Sequence[str]) -> int:
        """Images per task for ``n_images`` on workers computing on ``devices`` (one entry a worker)."""
        workers = max(1, len(devices))
        on_gpus = bool(devices) and all(is_gpu_device(device) for device in devices)
        most = self.gpu if on_gpus else self.cpu
        spread = math.ceil(n_images / (workers * self.tasks_per_worker))
        return max(1, min(most, spread))


def chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    """``items`` in consecutive lists of ``size`` (the last may be shorter)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
