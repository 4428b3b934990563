"""The desktop workbench: how soon it is there for the user.

Launch: ``spheroseg workbench --offline --data-dir D`` started for real as its own process under the X
display (an Xvfb started here when there is none: ``xvfb-run``'s Xvfb, with Mesa), logging at INFO on
standard error. Two moments are read from its log as the lines arrive, timed from just before the
process is started: "window shown" (the first pass of the event loop after ``show()``: the window is
painted) and "signed in" (the offline server started, its bootstrap token exchanged for a session: the
workspace is usable). The data folder is made by one untimed first run (migrations, the local user), so
the timed runs are the everyday start; each run is then closed with SIGTERM, which closes the window as
its close button does (the offline server stopped), before the next starts. Medians of ``--runs``.

Where the ``spheroseg`` command does not list ``workbench`` yet (an install older than the entry point),
the same click command is run through ``python -c``; the JSON says which.

Goals on this machine: window < 1.5 s, server ready < 4 s.

The machine is shared: absolute figures are noisy (load average recorded), compare those of one run.

Prints a table and writes benchmarks/results/workbench.json. Other sections (the gallery) add themselves
to ``SECTIONS``.

Usage: python benchmarks/workbench.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
GOALS = {"window_shown_s": 1.5, "server_ready_s": 4.0}
MOMENTS = {"window_shown_s": "window shown", "server_ready_s": "signed in to "}


def _command() -> tuple[list[str], str]:
    """``spheroseg -v workbench`` when the installed command has it, else the same click command."""
    if any(entry.name == "workbench" for entry in entry_points(group="spheroseg.commands")):
        return [sys.executable, "-m", "cluster.cli", "-v", "workbench"], "spheroseg -v workbench"
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, "
        "format='%(levelname)s %(name)s: %(message)s'); from workbench.cli import workbench; "
        "workbench(prog_name='spheroseg workbench')"
    )
    return [sys.executable, "-c", code], "python -c workbench.cli:workbench (entry point not installed)"


@contextmanager
def display() -> Iterator[str]:
    """An X display: this session's, else an Xvfb started here for the benchmark."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        raise SystemExit("no display and no Xvfb: install xvfb, or run under a desktop session")
    number = 90 + os.getpid() % 100
    server = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("Xvfb did not start")
            time.sleep(0.05)
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def launch_once(command: list[str], data_dir: Path, environment: dict[str, str]) -> dict[str, float]:
    """One start of the workbench: seconds from launch to each of ``MOMENTS``; then closed."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--offline", "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=environment,
        cwd=ROOT,
    )
    assert process.stderr is not None
    seen: dict[str, float] = {}
    log: list[str] = []
    watch = selectors.DefaultSelector()
    watch.register(process.stderr, selectors.EVENT_READ)
    deadline = started + 120
    try:
        while len(seen) < len(MOMENTS) and time.perf_counter() < deadline:
            if not watch.select(timeout=1):
                continue
            line = process.stderr.readline().decode(errors="replace")
            if not line:
                break
            log.append(line)
            for name, text in MOMENTS.items():
                if name not in seen and text in line:
                    seen[name] = time.perf_counter() - started
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    if len(seen) < len(MOMENTS):
        waited = time.perf_counter() - started
        raise RuntimeError(
            f"the workbench did not get there in {waited:.0f} s (exit status {process.returncode}); "
            "its log:\n" + "".join(log[-40:])
        )
    _wait_for_stop(data_dir)
    return seen


def _wait_for_stop(data_dir: Path, timeout: float = 30) -> None:
    """Until the offline server has let go of the data folder (the next run must start its own)."""
    deadline = time.monotonic() + timeout
    while (data_dir / "server.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def measure_launch(runs: int = 3) -> dict[str, Any]:
    """Launch to window shown, and to the offline server ready (signed in): medians of ``runs``."""
    command, how = _command()
    kept = {name: value for name, value in os.environ.items() if not name.startswith("SPHEROSEG_")}
    with tempfile.TemporaryDirectory(prefix="spheroseg-bench-workbench-") as tmp, display() as shown_on:
        environment = {
            **kept,
            "DISPLAY": shown_on,
            "QT_QPA_PLATFORM": "xcb",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), kept.get("PYTHONPATH")])),
            "XDG_CONFIG_HOME": str(Path(tmp) / "config"),
            "XDG_CACHE_HOME": str(Path(tmp) / "cache"),
        }
        data_dir = Path(tmp) / "data"
        first = launch_once(command, data_dir, environment)  # makes the data folder: not timed
        timed = [launch_once(command, data_dir, environment) for _ in range(runs)]
    medians = {name: round(statistics.median(run[name] for run in timed), 3) for name in MOMENTS}
    return {
        "command": how,
        "runs": runs,
        "first_start_untimed": {name: round(value, 3) for name, value in first.items()},
        "each_run": [{name: round(value, 3) for name, value in run.items()} for run in timed],
        **medians,
        "goals": {name: medians[name] < limit for name, limit in GOALS.items()},
    }


def print_launch(section: dict[str, Any]) -> None:
    print(f"launch ({section['command']}, median of {section['runs']})")
    print(f"  {'moment':<32}{'median s':>10}{'goal s':>9}  met")
    for name, label in (("window_shown_s", "window shown"), ("server_ready_s", "offline server ready")):
        print(f"  {label:<32}{section[name]:>10.3f}{GOALS[name]:>9.1f}  {section['goals'][name]}")
    print(f"  first start, new data folder: {section['first_start_untimed']}")


SECTIONS: list[
    tuple[str, Callable[[argparse.Namespace], dict[str, Any]], Callable[[dict[str, Any]], None]]
] = [
    ("launch", lambda args: measure_launch(args.runs), print_launch),
]
"""(name, measure, print): each section measured in turn, printed, and kept under its name in the JSON."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_start": os.getloadavg(),
        "note": "Shared machine: absolute figures are noisy; compare those of the same run.",
    }
    for name, measure, show in SECTIONS:
        report[name] = measure(args)
        show(report[name])
    report["load_average_end"] = os.getloadavg()
    report["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "workbench.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote benchmarks/results/workbench.json in {report['seconds']} s")


if __name__ == "__main__":
    main()
