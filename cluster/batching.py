"""How many images go into one task, and into one call of the network: policies kept apart from the cluster
and the model, so each is tested alone.

Each task costs the scheduler a few milliseconds and a GPU wants several images to stay busy, so tasks
carry batches; but big batches leave workers idle at the end of a job and lose more work when a worker
dies. The policy takes the most images per task a device should get (``cpu``, ``gpu``) and lowers it so
that every worker still gets at least ``tasks_per_worker`` tasks::

    BatchPolicy().batch_size(n_images=1000, devices=["cuda:0", "cuda:0"])  # 8
    BatchPolicy().batch_size(n_images=10, devices=["cpu", "cpu"])          # 2
    BatchPolicy().batch_size(n_images=3, devices=["cpu", "cpu"])           # 1

Inside a task, a worker hands the segmenter images of one working size together, as many per call as
:class:`DevicePolicy` allows: on a GPU what half its free memory holds (the other half covers what the
estimate misses and the other processes on the device), on a CPU a fixed number chosen by measurement::

    DevicePolicy().images_per_call("cuda:0", free_bytes=8 * 2**30, bytes_per_image=300 * 2**20)  # 13
    DevicePolicy().images_per_call("cpu", free_bytes=None, bytes_per_image=None)                   # 1
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["BatchPolicy", "DevicePolicy", "chunks", "is_gpu_device"]


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


@dataclass(frozen=True)
class DevicePolicy:
    """Images per call of the network from the device and, on a GPU, its free memory.

    The CPU figure is measured (benchmarks/worker_batching.py: 2 shared cores, one torch thread as a Dask
    worker has, the shipped ResUNet at its 256-pixel working size, 32 scenes of 512², 8 per task). Through
    the worker path, 4 images per call gave 0.91 times the images per second of 1 (medians of 5 alternating
    rounds, results/worker_batching.json; busier runs gave 0.55 to 1.44), and the network alone took 33,
    37, 38 and 37 ms per image with 1, 2, 4 and 8 per call. So CPUs keep 1, as before.
    """

    cpu: int = 1
    """Images per call on a CPU."""
    gpu: int = 8
    """Images per call on a GPU whose free memory is unknown."""
    most: int = 64
    """Never more than this, however much memory is free (bigger batches gain nothing more)."""
    memory_share: float = 0.5
    """Share of the free device memory a batch may take."""

    def __post_init__(self) -> None:
        if min(self.cpu, self.gpu, self.most) < 1:
            raise ValueError("images per call must be at least 1")
        if not 0.0 < self.memory_share <= 1.0:
            raise ValueError(f"memory_share must be within (0, 1], not {self.memory_share}")

    def images_per_call(self, device: str, free_bytes: int | None, bytes_per_image: int | None) -> int:
        """Images per call on ``device`` with ``free_bytes`` free, each needing ``bytes_per_image``."""
        if not is_gpu_device(device):
            return self.cpu
        if free_bytes is None or not bytes_per_image:
            return min(self.gpu, self.most)
        fits = int(free_bytes * self.memory_share) // bytes_per_image
        return max(1, min(self.most, fits))


def chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    """``items`` in consecutive lists of ``size`` (the last may be shorter)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
