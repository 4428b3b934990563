"""A real Dask scheduler and workers, started as processes (``dask scheduler``, ``dask worker``) on
127.0.0.1 with free ports: a cluster "already running" to point a server or ``spheroseg cluster deploy
--backend address`` at, that a test can stop to see what a gone scheduler looks like."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunningScheduler", "running_scheduler"]


@dataclass(frozen=True)
class RunningScheduler:
    address: str
    dashboard: str


def _wait_for(log: Path, pattern: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(errors="replace")) if log.exists() else None
        if found:
            return found.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    raise TimeoutError(f"{process.args} did not say {pattern!r} in {timeout} s")


@contextmanager
def running_scheduler(folder: Path, workers: int = 1) -> Iterator[RunningScheduler]:
    """A scheduler on 127.0.0.1 (free ports) with ``workers`` one-thread workers named ``remote-N``."""
    folder.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []

    def started(name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = folder / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", *args], stdout=out, stderr=out, start_new_session=True
            )
        processes.append(process)
        return process, log

    try:
        scheduler, log = started(
            "scheduler",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dashboard-address",
            "127.0.0.1:0",
        )
        address = _wait_for(log, r"Scheduler at:\s+(\S+)", scheduler)
        dashboard = _wait_for(log, r"dashboard at:\s+(\S+)", scheduler)
        for k in range(workers):
            worker, log = started(
                f"worker{k}",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--name",
                f"remote-{k}",
                "--no-dashboard",
            )
            _wait_for(log, r"(Registered to)", worker)
        yield RunningScheduler(address, dashboard)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
