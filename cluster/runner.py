"""One segmentation job run to completion from synchronous code (``spheroseg segment``, scripts).

Where it runs: an existing scheduler (``scheduler="tcp://…"``), the cluster ``spheroseg cluster deploy``
started (``scheduler="deployed"``), or a local cluster started for the job and stopped after it, sized to
the machine: one worker per core, or one per GPU for a GPU method on a machine with GPUs::

    outcomes = run_job(paths, SegmentationRequest(...), workers=4, progress=print)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster.client import ProgressCallback, SegmentationRequest, segment_references
from cluster.launch import ClusterSpec, connect, launch
from cluster.launch.control import resolve_target
from cluster.launch.deployment import close_client
from cluster.launch.gpus import detect_gpus
from cluster.launch.local import local_cores
from cluster.launch.spec import TlsFiles
from cluster.pipeline import ImageOutcome

__all__ = ["JobPlace", "local_spec", "run_job"]

CPU_METHODS = frozenset({"classical"})


@dataclass(frozen=True)
class JobPlace:
    """Where a job runs; see the module docstring."""

    scheduler: str | None = None
    workers: int | None = None
    tls: TlsFiles | None = None


def local_spec(n_images: int, method: str, workers: int | None = None, gpus: bool = False) -> ClusterSpec:
    """The local cluster for a job of ``n_images``: ``workers`` processes, or one per core (at most one per
    image); GPU workers, one per GPU, when asked or when the method runs on GPUs and the machine has them."""
    on_gpus = gpus or (method not in CPU_METHODS and bool(detect_gpus()))
    if on_gpus:
        return ClusterSpec(workers=workers, gpus=True)
    size = workers if workers is not None else max(1, min(local_cores(), n_images))
    return ClusterSpec(workers=size)


async def _run(
    sources: Sequence[str | Path],
    request: SegmentationRequest,
    place: JobPlace,
    progress: ProgressCallback | None,
) -> list[ImageOutcome]:
    deployment = None
    if place.scheduler:
        target = resolve_target(place.scheduler, place.tls)
        client = await target.client()
    else:
        spec = local_spec(len(sources), request.segmenter.method, place.workers, request.gpu)
        deployment = await launch(spec)
        client = await connect(deployment.scheduler_address)
    try:
        results = await segment_references(client, sources, request, progress)
    finally:
        await close_client(client)
        if deployment is not None:
            await deployment.close()
    return [result.outcome for result in results]


def run_job(
    sources: Sequence[str | Path],
    request: SegmentationRequest,
    place: JobPlace | None = None,
    progress: ProgressCallback | None = None,
) -> list[ImageOutcome]:
    """Segment ``sources`` on a cluster and return one outcome per source, in the order given."""
    return asyncio.run(_run(sources, request, place or JobPlace(), progress))
