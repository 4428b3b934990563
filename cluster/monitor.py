"""What a cluster is doing, for ``spheroseg cluster status`` and ``spheroseg cluster metrics``.

:func:`cluster_status` asks the scheduler for its workers and task states, and each worker for its
device and recent throughput (:func:`cluster.worker.worker_report`). :func:`cluster_metrics` reads the
Prometheus ``/metrics`` pages of the scheduler and of every worker and sums up the lines an operator
looks at first.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cluster.launch.deployment import rpc
from cluster.worker import worker_report

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "ClusterStatus",
    "MetricsSummary",
    "WorkerStatus",
    "cluster_metrics",
    "cluster_status",
    "parse_metrics",
]

log = logging.getLogger(__name__)

WAITING_STATES = ("queued", "no-worker", "waiting")


@dataclass(frozen=True)
class WorkerStatus:
    address: str
    name: str
    nthreads: int
    resources: dict[str, float]
    devices: list[str]
    cuda_visible_devices: str | None
    processing: int
    images_per_second: float | None
    images_ok: int | None
    images_failed: int | None
    memory_bytes: int | None
    status: str


@dataclass(frozen=True)
class ClusterStatus:
    address: str
    dashboard: str | None
    workers: list[WorkerStatus]
    task_states: dict[str, int]

    @property
    def processing(self) -> int:
        return self.task_states.get("processing", 0)

    @property
    def waiting(self) -> int:
        return sum(self.task_states.get(state, 0) for state in WAITING_STATES)

    @property
    def images_per_second(self) -> float:
        return sum(w.images_per_second or 0.0 for w in self.workers)

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "dashboard": self.dashboard,
            "workers": [vars(w) for w in self.workers],
            "task_states": self.task_states,
            "processing": self.processing,
            "waiting": self.waiting,
            "images_per_second": self.images_per_second,
        }


def _task_states(dask_scheduler: Any) -> dict[str, int]:
    return dict(Counter(str(ts.state) for ts in dask_scheduler.tasks.values()))


async def cluster_status(client: Client, address: str) -> ClusterStatus:
    """Workers, their resources, devices and load, task counts and recent images per second."""
    scheduler = rpc(client)
    identity = await scheduler.identity()
    processing = await scheduler.processing()
    reports = await client.run(worker_report, on_error="return")
    try:
        states = await client.run_on_scheduler(_task_states)  # type: ignore[no-untyped-call]
    except Exception as exc:  # a scheduler that refuses pickled functions: report what we can
        log.info("task states unavailable: %s", exc)
        states = {}
    workers = []
    for worker_address, info in sorted(
        identity["workers"].items(), key=lambda item: str(item[1].get("name"))
    ):
        report = reports.get(worker_address)
        report = report if isinstance(report, dict) else {}
        workers.append(
            WorkerStatus(
                address=worker_address,
                name=str(info.get("name")),
                nthreads=int(info.get("nthreads", 0)),
                resources=dict(info.get("resources", {})),
                devices=list(report.get("devices", [])),
                cuda_visible_devices=report.get("cuda_visible_devices"),
                processing=len(processing.get(worker_address, ())),
                images_per_second=report.get("images_per_second"),
                images_ok=report.get("images_ok"),
                images_failed=report.get("images_failed"),
                memory_bytes=info.get("metrics", {}).get("memory"),
                status=str(info.get("status", "")),
            )
        )
    port = identity.get("services", {}).get("dashboard")
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    dashboard = f"http://{host}:{port}/status" if port else None
    return ClusterStatus(address, dashboard, workers, states)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → ``{"name{label=value,...}": value}`` (labels sorted), ignoring comments."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = float(sample.value)
    return values


@dataclass(frozen=True)
class MetricsSummary:
    """The scheduler's and each worker's metrics, raw and summed up."""

    scheduler: dict[str, float]
    workers: dict[str, dict[str, float]]
    errors: dict[str, str] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)

    def total(self, prefix: str) -> float:
        """Sum over workers of every series whose name starts with ``prefix``."""
        return sum(v for metrics in self.workers.values() for k, v in metrics.items() if k.startswith(prefix))

    def worker_value(self, worker: str, prefix: str) -> float:
        return sum(v for k, v in self.workers.get(worker, {}).items() if k.startswith(prefix))


def _get(url: str, timeout: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
    return body.decode("utf-8", errors="replace")


async def cluster_metrics(client: Client, address: str, timeout: float = 5.0) -> MetricsSummary:
    """Fetch and parse ``/metrics`` from the scheduler and every worker's HTTP server."""
    identity = await rpc(client).identity()
    scheduler_host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    pages = {"scheduler": f"http://{scheduler_host}:{identity.get('services', {}).get('dashboard')}/metrics"}
    for worker_address, info in identity["workers"].items():
        port = info.get("services", {}).get("dashboard")
        if port:
            host = info.get("host") or worker_address.split("://", 1)[-1].rsplit(":", 1)[0]
            pages[worker_address] = f"http://{host}:{port}/metrics"
    loop = asyncio.get_running_loop()
    fetched = await asyncio.gather(
        *(loop.run_in_executor(None, _get, url, timeout) for url in pages.values()), return_exceptions=True
    )
    parsed: dict[str, dict[str, float]] = {}
    raw: dict[str, str] = {}
    errors: dict[str, str] = {}
    for source, result in zip(pages, fetched, strict=True):
        if isinstance(result, BaseException):
            errors[source] = f"{type(result).__name__}: {result}"
            continue
        raw[source] = result
        try:
            parsed[source] = parse_metrics(result)
        except ValueError as exc:
            errors[source] = f"unparsable metrics: {exc}"
    scheduler = parsed.pop("scheduler", {})
    return MetricsSummary(scheduler, parsed, errors, raw)
