"""What the client learns from the workers before and while it submits: the segmenter loaded on each, which
workers can run the job's tasks and on what device, and why none can when that happens."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from cluster.exceptions import SegmentationError
from cluster.launch.deployment import rpc
from cluster.launch.gpus import GPU_RESOURCE
from cluster.worker import SegmenterPlugin, SegmenterSpec, device_report, has_plugin

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["capable_devices", "capable_workers", "describe_no_worker", "ensure_plugin", "in_flight_limit"]

log = logging.getLogger(__name__)


async def ensure_plugin(client: Client, spec: SegmenterSpec) -> None:
    """Have every worker (and every worker that joins later) load ``spec``'s segmenter once.

    A segmenter that cannot be built as asked (unknown method, bad parameters) fails the job here; any
    other failure to load may pass (a busy GPU, a slow file system): the tasks load it again and, failing,
    report it per image.
    """
    plugin = SegmenterPlugin(spec)
    have = await client.run(has_plugin, plugin.name, on_error="return")
    if have and all(value is True for value in have.values()):
        return
    try:
        await client.register_plugin(plugin, name=plugin.name)
    except SegmentationError as exc:
        raise SegmentationError(f"the segmenter could not be loaded on the workers: {exc}") from exc
    except Exception as exc:  # the tasks retry the load and report a lasting failure per image
        log.warning("loading the %r segmenter failed on a worker (%s); tasks will retry", spec.method, exc)


def _can_run(resources: dict[str, Any], gpu: bool) -> bool:
    return not gpu or float(resources.get(GPU_RESOURCE, 0)) >= 1


async def capable_devices(client: Client, spec: SegmenterSpec, gpu: bool) -> list[str]:
    """The devices of the workers that can run the job's tasks, one entry a worker."""
    reports = await client.run(device_report, spec.key, on_error="return")
    devices = []
    for report in reports.values():
        if isinstance(report, dict) and _can_run(report["resources"], gpu):
            devices.append(report["device"] or ("cuda" if gpu else "cpu"))
    return devices


async def capable_workers(client: Client, gpu: bool) -> tuple[int, int]:
    """How many running workers could run the job's tasks, and how many workers there are."""
    workers = (await rpc(client).identity())["workers"]
    capable = sum(
        1
        for info in workers.values()
        if info.get("status", "running") == "running" and _can_run(info.get("resources", {}), gpu)
    )
    return capable, len(workers)


def in_flight_limit(workers: int, per_worker: int) -> int:
    """Tasks a job keeps submitted at once: enough to keep every worker busy, few enough that a worker
    that dies takes little work with it, and that cancelling is cheap."""
    return max(per_worker, per_worker * workers)


async def describe_no_worker(client: Client, gpu: bool, n_tasks: int) -> str:
    """Why ``n_tasks`` tasks find no worker, and what to do about it."""
    workers = (await rpc(client).identity())["workers"]
    if not workers:
        return (
            f"{n_tasks} images wait, but the cluster has no workers; start some "
            "(spheroseg cluster scale N) or check why they died (the worker logs)"
        )
    if gpu:
        offered = sorted({key for info in workers.values() for key in info.get("resources", {})})
        return (
            f"{n_tasks} images need a GPU worker (resource {GPU_RESOURCE}=1), but none of the {len(workers)} "
            f"workers offers one (resources offered: {', '.join(offered) or 'none'}); start GPU workers "
            "(spheroseg cluster deploy --gpus) or run without --gpus"
        )
    return f"{n_tasks} images wait for a worker that can run them; none of the {len(workers)} workers can"
