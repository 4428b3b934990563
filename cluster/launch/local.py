"""The ``local`` backend: worker processes on this machine, one per core, or one per GPU when asked.

CPU workers get one thread each (segmenters use their own threads through numpy/torch). With ``gpus``,
each worker is pinned to one device through ``CUDA_VISIBLE_DEVICES`` and offers ``GPU=1``; dask-cuda's
``LocalCUDACluster`` does this when it is installed and the GPUs are real, else :class:`GpuLocalCluster`.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any

import psutil
from distributed import LocalCluster

from cluster.exceptions import ClusterSpecError
from cluster.launch.deployment import Deployment
from cluster.launch.gpus import GPU_RESOURCE, detect_gpus, gpu_worker_env
from cluster.launch.spec import ClusterSpec
from cluster.launch.tuning import apply_worker_config

__all__ = ["GpuLocalCluster", "local_cores", "start"]

log = logging.getLogger(__name__)


def local_cores() -> int:
    """Cores this process may use (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class GpuLocalCluster(LocalCluster):
    """A LocalCluster whose every worker owns one GPU: ``CUDA_VISIBLE_DEVICES=<id>`` and ``GPU=1``.

    Scaling hands out free devices and never starts more workers than there are devices.
    """

    def __init__(self, devices: tuple[str, ...], **kwargs: Any) -> None:
        if not devices:
            raise ClusterSpecError("a GPU cluster needs at least one GPU device")
        self.devices = devices
        resources = {**kwargs.pop("resources", {}), GPU_RESOURCE: 1}
        super().__init__(n_workers=0, resources=resources, **kwargs)  # type: ignore[no-untyped-call]

    def new_worker_spec(self) -> dict[str, dict[str, Any]]:
        used = {name.removeprefix("gpu-") for name in map(str, self.worker_spec)}
        free = [device for device in self.devices if device not in used]
        if not free:
            raise ClusterSpecError(f"all {len(self.devices)} GPUs already have a worker")
        spec: dict[str, Any] = copy.deepcopy(self.new_spec)
        options = spec.setdefault("options", {})
        options["env"] = {**options.get("env", {}), **gpu_worker_env(free[0])}
        return {f"gpu-{free[0]}": spec}

    def scale(self, n: int = 0, memory: Any = None, cores: Any = None) -> Any:
        if n > len(self.devices):
            log.warning("%d workers asked for, but there are %d GPUs", n, len(self.devices))
        return super().scale(min(n, len(self.devices)), memory=memory, cores=cores)  # type: ignore[no-untyped-call]


def _common_options(spec: ClusterSpec) -> dict[str, Any]:
    options: dict[str, Any] = {
        "threads_per_worker": spec.threads_per_worker,
        "processes": True,
        "memory_limit": spec.memory_limit,
        "host": spec.host,
        "scheduler_port": spec.scheduler_port,
        "dashboard_address": f"{spec.host}:{spec.dashboard_port}",
        "worker_dashboard_address": f"{spec.host}:0",  # each worker's /metrics page
        "scheduler_kwargs": {"allowed_failures": spec.worker_deaths - 1},
        "asynchronous": True,
    }
    if spec.env:
        options["env"] = spec.environment
    return options


def gpu_devices(spec: ClusterSpec) -> tuple[str, ...]:
    """The devices a GPU spec uses: the ones it names, else those found on this machine."""
    return spec.gpu_devices or detect_gpus()


async def start(spec: ClusterSpec) -> Deployment:
    """Start a local cluster as ``spec`` says and wait for its workers."""
    apply_worker_config()
    options = _common_options(spec)
    if spec.gpus:
        devices = gpu_devices(spec)
        if not devices:
            raise ClusterSpecError(
                "GPU workers were asked for, but no CUDA GPU was found (nvidia-smi, CUDA_VISIBLE_DEVICES)"
            )
        n = len(devices) if spec.workers is None else min(spec.workers, len(devices))
        if spec.memory_limit == "auto":
            # Dask's "auto" gives a 1-thread worker RAM / cores: 1/16 of a 16-core GPU box for the worker
            # that does all of a GPU's work. Share the RAM between the GPU workers instead.
            options["memory_limit"] = psutil.virtual_memory().total // len(devices)
        cluster = await _gpu_cluster(devices, n, spec, options)
        max_workers: int | None = len(devices)
    else:
        n = local_cores() if spec.workers is None else spec.workers
        cluster = await LocalCluster(n_workers=n, **options)  # type: ignore[no-untyped-call]
        max_workers = None
    deployment = Deployment.started(spec, cluster, max_workers=max_workers)
    if not spec.adaptive:
        await _wait_for_workers(cluster, n)
    return deployment


async def _gpu_cluster(
    devices: tuple[str, ...], n: int, spec: ClusterSpec, options: dict[str, Any]
) -> LocalCluster:
    if not spec.gpu_devices:
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            pass
        else:
            options.pop("processes", None)
            options.pop("threads_per_worker", None)
            cuda: LocalCluster = await LocalCUDACluster(
                CUDA_VISIBLE_DEVICES=",".join(devices),
                n_workers=n,
                threads_per_worker=spec.threads_per_worker,
                resources={GPU_RESOURCE: 1},
                **options,
            )
            return cuda
    gpu: LocalCluster = await GpuLocalCluster(devices, **options)
    gpu.scale(n)  # type: ignore[no-untyped-call]
    return gpu


async def _wait_for_workers(cluster: LocalCluster, n: int, timeout: float = 60.0) -> None:
    if n == 0:
        return
    from distributed import Client

    async with Client(cluster, asynchronous=True) as client:  # type: ignore[no-untyped-call]
        await client.wait_for_workers(n, timeout=timeout)
