"""Rich tables of a cluster's status and metrics, for ``spheroseg cluster status`` and ``metrics``."""

from __future__ import annotations

from rich.table import Table

from cluster.monitor import ClusterStatus, MetricsSummary

__all__ = ["metrics_tables", "status_table"]

SCHEDULER_METRICS = ("dask_scheduler_workers", "dask_scheduler_clients", "dask_scheduler_tasks{")
STATUS_COLUMNS = (
    "worker",
    "address",
    "threads",
    "resources",
    "device",
    "processing",
    "images/s (1 min)",
    "done / failed",
    "memory",
)


def status_table(status: ClusterStatus) -> Table:
    table = Table(title=f"Workers of {status.address}", title_justify="left")
    for column in STATUS_COLUMNS:
        table.add_column(column, justify="right" if column in {"threads", "processing"} else "left")
    for w in status.workers:
        resources = ", ".join(f"{k}={v:g}" for k, v in sorted(w.resources.items())) or "-"
        device = ", ".join(w.devices) or "-"
        if w.cuda_visible_devices is not None:
            device += f" (CUDA_VISIBLE_DEVICES={w.cuda_visible_devices})"
        rate = "-" if w.images_per_second is None else f"{w.images_per_second:.2f}"
        done = "-" if w.images_ok is None else f"{w.images_ok} / {w.images_failed}"
        memory = "-" if w.memory_bytes is None else f"{w.memory_bytes / 2**20:,.0f} MiB"
        table.add_row(
            w.name, w.address, str(w.nthreads), resources, device, str(w.processing), rate, done, memory
        )
    return table


def metrics_tables(summary: MetricsSummary) -> list[Table]:
    scheduler = Table(title="Scheduler", title_justify="left")
    scheduler.add_column("metric")
    scheduler.add_column("value", justify="right")
    for key in sorted(summary.scheduler):
        if key.startswith(SCHEDULER_METRICS):
            scheduler.add_row(key, f"{summary.scheduler[key]:g}")
    workers = Table(title="Workers", title_justify="left")
    for column in ("worker", "images ok", "failed", "s / image", "model load s", "GPU memory", "memory"):
        workers.add_column(column, justify="left" if column == "worker" else "right")
    for name in sorted(summary.workers):
        ok = _labelled(summary, name, "spheroseg_worker_images_total", "outcome=ok")
        failed = _labelled(summary, name, "spheroseg_worker_images_total", "outcome=failed")
        count = summary.worker_value(name, "spheroseg_worker_image_seconds_count")
        seconds = summary.worker_value(name, "spheroseg_worker_image_seconds_sum")
        load = summary.worker_value(name, "spheroseg_worker_model_load_seconds")
        gpu = summary.worker_value(name, "spheroseg_worker_gpu_memory_bytes")
        memory = summary.worker_value(name, "dask_worker_memory_bytes")
        workers.add_row(
            name,
            f"{ok:g}",
            f"{failed:g}",
            f"{seconds / count:.3f}" if count else "-",
            f"{load:.2f}" if load else "-",
            f"{gpu / 2**20:,.0f} MiB" if gpu else "-",
            f"{memory / 2**20:,.0f} MiB",
        )
    return [scheduler, workers]


def _labelled(summary: MetricsSummary, worker: str, name: str, label: str) -> float:
    return sum(
        v for k, v in summary.workers.get(worker, {}).items() if k.startswith(name + "{") and label in k
    )
