"""What a segmentation worker counts: Prometheus metrics on its ``/metrics`` page, and a recent-rate window.

Metrics live in prometheus_client's default registry, which a Dask worker's HTTP server already serves at
``/metrics`` next to Dask's own ``dask_worker_*`` metrics:

=========================================  =========  ===================================================
name                                       type       meaning
=========================================  =========  ===================================================
``spheroseg_worker_images_total``          counter    images segmented, by ``method`` and ``outcome``
                                                      (``ok`` or ``failed``)
``spheroseg_worker_image_seconds``         histogram  seconds per image (fetch, read, segment, measure)
``spheroseg_worker_model_load_seconds``    gauge      seconds the last segmenter load (and warm-up) took
``spheroseg_worker_gpu_memory_bytes``      gauge      CUDA memory allocated by torch (CUDA workers only)
=========================================  =========  ===================================================

Without prometheus_client installed the counting still works for ``spheroseg cluster status``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Any

__all__ = ["RATE_WINDOW_S", "WorkerTelemetry", "cuda_memory_bytes", "telemetry"]

RATE_WINDOW_S = 60.0
"""The window of "images per second over the last minute"."""

_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def cuda_memory_bytes() -> int | None:
    """CUDA memory torch has allocated in this process; ``None`` when torch or CUDA is not in use."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return None
        return int(torch.cuda.memory_allocated())
    except (RuntimeError, AttributeError):
        return None


class _Prometheus:
    """The Prometheus side; every method is a no-op when prometheus_client is missing."""

    def __init__(self) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            self.enabled = False
            return
        self.enabled = True
        self.images = prom.Counter(
            "spheroseg_worker_images", "Images segmented by this worker", ["method", "outcome"]
        )
        self.seconds = prom.Histogram(
            "spheroseg_worker_image_seconds", "Seconds per image", ["method"], buckets=_BUCKETS
        )
        self.load = prom.Gauge(
            "spheroseg_worker_model_load_seconds",
            "Seconds the segmenter took to load and warm up",
            ["method"],
        )
        self.gpu = prom.Gauge("spheroseg_worker_gpu_memory_bytes", "CUDA memory allocated by torch")


class WorkerTelemetry:
    """Counts of one worker process. Thread-safe: tasks run in the worker's thread pool."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self.images_ok = 0
        self.images_failed = 0
        self.seconds_total = 0.0
        self.load_seconds: dict[str, float] = {}
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()
        self._prometheus = _Prometheus()

    def record_image(self, method: str, seconds: float, ok: bool) -> None:
        now = time.monotonic()
        with self._lock:
            if ok:
                self.images_ok += 1
            else:
                self.images_failed += 1
            self.seconds_total += seconds
            self._recent.append(now)
            self._trim(now)
        if self._prometheus.enabled:
            self._prometheus.images.labels(method, "ok" if ok else "failed").inc()
            self._prometheus.seconds.labels(method).observe(seconds)
            memory = cuda_memory_bytes()
            if memory is not None:
                self._prometheus.gpu.set(memory)

    def record_load(self, method: str, seconds: float) -> None:
        with self._lock:
            self.load_seconds[method] = seconds
        if self._prometheus.enabled:
            self._prometheus.load.labels(method).set(seconds)

    def recent_rate(self) -> float:
        """Images per second over the last :attr:`window_s` seconds."""
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            return len(self._recent) / self.window_s

    def snapshot(self) -> dict[str, Any]:
        done = self.images_ok + self.images_failed
        return {
            "images_ok": self.images_ok,
            "images_failed": self.images_failed,
            "mean_seconds": self.seconds_total / done if done else None,
            "images_per_second": self.recent_rate(),
            "load_seconds": dict(self.load_seconds),
            "gpu_memory_bytes": cuda_memory_bytes(),
        }

    def _trim(self, now: float) -> None:
        while self._recent and self._recent[0] < now - self.window_s:
            self._recent.popleft()


_telemetry: WorkerTelemetry | None = None
_telemetry_lock = threading.Lock()


def telemetry() -> WorkerTelemetry:
    """This process's telemetry (metrics are registered once per process)."""
    global _telemetry
    with _telemetry_lock:
        if _telemetry is None:
            _telemetry = WorkerTelemetry()
        return _telemetry
