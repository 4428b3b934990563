"""The desktop workbench: how fast its window opens and how its gallery copes with a big project.

Each section is a function that measures one thing and answers a dict; ``SECTIONS`` lists them, ``main()``
runs them in order, checks the goals, prints a table and writes benchmarks/results/desktop_window.json.

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
Goals: window < 1.5 s, server ready < 4 s.

Gallery (:func:`measure_gallery`): a 10,000-image project on the user's own offline server
(``spheroseg server serve --offline``, started as the workbench starts it, SQLite and blobs in a temporary
folder). Set-up, not timed: 10,000 distinct 48 x 48 PNGs (a dark disc on a light background, seeded) are
imported through the server's own upload API (``LabClient.upload``, 500 files a request, as the import
dialog sends them), and the first screen's thumbnails are requested once with a plain HTTP client, so the
server has rendered them, while the workbench's own disk cache stays cold. Then a real ``QtGallery`` in a
1280 x 800 window under Xvfb (started here when no display is set) opens the project:

- first thumbnails: from ``show_project`` to the first screen of tiles painted with their thumbnails (the
  first page listed, each thumbnail fetched through ``workbench/fetch.py``, decoded and scaled off the loop,
  then a synchronous repaint). Measured twice, each time in a new window with a cold image cache: right
  after the import, while the server's background renderer still makes the other 10,000 thumbnails, and
  once the server is quiet again (it and its renderers under 15% of a core over a second): a project
  opened another day. The goal is checked on the second;
- scroll frames: the grid is moved down one screen per frame from the top to the end; a frame is the
  time from moving the scroll bar through the synchronous repaint of the viewport and the turn of the
  event loop that follows (where pages and thumbnails that arrived are taken in): what a user scrolling
  would feel as a stall. p50, p95 and max over every frame;
- the end: how long after reaching the end the last screen's thumbnails are painted (the gallery reads the
  last pages from the tail of the cursor-paged API, with ``last``, not every page before them);
- peak RSS of the workbench process (``ru_maxrss``; the server is another process).

Goals (issue 16, on this machine): first thumbnails < 1 s, p95 frame < 50 ms, RSS < 400 MB.

The machine is shared: absolute figures are noisy (load average recorded).

Usage: python benchmarks/desktop_window.py [--runs 3] [--images 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import resource
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

GOALS = {"first_thumbnails_s": 1.0, "p95_frame_ms": 50.0, "peak_rss_mb": 400.0}
LAUNCH_GOALS = {"window_shown_s": 1.5, "server_ready_s": 4.0}
MOMENTS = {"window_shown_s": "window shown", "server_ready_s": "signed in to "}
WINDOW = (1280, 800)
BATCH = 500


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:48]
    cx, cy, r = rng.uniform(16, 32), rng.uniform(16, 32), rng.uniform(6, 14)
    pixels = 200 + rng.normal(0, 6, (48, 48))
    pixels[(xx - cx) ** 2 + (yy - cy) ** 2 < r**2] -= 120
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@contextlib.contextmanager
def _display() -> Iterator[str]:
    """A display for a real window: the one set, else an Xvfb of our own for the measurement."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        raise FileNotFoundError("Xvfb is needed for a window without a screen: apt-get install xvfb")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as told:
        display = f":{told.readline().strip()}"
    os.environ["DISPLAY"] = display
    try:
        yield display
    finally:
        server.terminate()
        server.wait(10)
        del os.environ["DISPLAY"]


async def _import(workspace: Any, project_id: int, folder: Path, images: int) -> float:
    started = time.perf_counter()
    for first in range(0, images, BATCH):
        batch = []
        for k in range(first, min(first + BATCH, images)):
            path = folder / f"well_{k:05d}.png"
            path.write_bytes(_png(k))
            batch.append((path.name, path))
        accepted = [line async for line in workspace.client.upload(project_id, batch) if line.get("imageId")]
        if len(accepted) != len(batch):
            raise RuntimeError(f"the server accepted {len(accepted)} of {len(batch)} files")
        for _, path in batch:
            path.unlink()
    return time.perf_counter() - started


async def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the gallery did not get there in time")
        await asyncio.sleep(0.002)


def _screen_painted(gallery: Any) -> Callable[[], bool]:
    """Every tile of the first screen has its thumbnail."""

    def done() -> bool:
        model, view = gallery.model, gallery.view
        rows = range(model.rowCount())[: _per_screen(view)]
        tiles = [model.tile(row) for row in rows]
        return bool(tiles) and all(t is not None and model.thumbnail(t.image_id) is not None for t in tiles)

    return done


def _per_screen(view: Any) -> int:
    from workbench.qt.qt_tile_delegate import CELL

    viewport = view.viewport()
    return max(1, viewport.width() // CELL.width()) * max(1, viewport.height() // CELL.height())


def _last_screen_painted(gallery: Any) -> bool:
    model = gallery.model
    count = model.rowCount()
    rows = range(max(0, count - _per_screen(gallery.view) // 2), count)
    return all((t := model.tile(r)) is not None and model.thumbnail(t.image_id) is not None for r in rows)


async def _open_gallery(
    workspace: Any, tasks: Any, project_id: int, cache: Path, *, keep: bool = False
) -> tuple[Any, float]:
    """A new gallery window with a cold image cache: the seconds until its first screen is painted with
    its thumbnails."""
    from workbench.fetch import ImageFetcher
    from workbench.qt.qt_gallery import QtGallery

    await workspace.fetcher.aclose()
    workspace.fetcher = ImageFetcher(cache)
    gallery = QtGallery(workspace, tasks)
    gallery.resize(*WINDOW)
    gallery.show()
    await asyncio.sleep(0.5)  # the window is mapped and painted once, empty
    started = time.perf_counter()
    gallery.show_project(project_id)
    await _until(_screen_painted(gallery), 60)
    gallery.view.viewport().repaint()
    painted = time.perf_counter() - started
    if not keep:
        gallery.close()
        await asyncio.sleep(0.2)
    return gallery, painted


async def _server_settled(pid: int | None, quiet: float = 0.15, timeout: float = 600.0) -> float:
    """Wait until the server and its renderers use under ``quiet`` of a core over a second (the
    background thumbnails are done); the seconds waited."""
    import psutil

    started = time.perf_counter()
    if pid is None:
        return 0.0
    server = psutil.Process(pid)

    def cpu() -> float:
        processes = [server, *server.children(recursive=True)]
        return sum(sum(p.cpu_times()[:2]) for p in processes if p.is_running())

    while time.perf_counter() - started < timeout:
        before = cpu()
        await asyncio.sleep(1.0)
        if cpu() - before < quiet:
            break
    return time.perf_counter() - started


async def _gallery_figures(images: int, folder: Path) -> dict[str, Any]:
    import httpx

    from workbench.tasks import Notices, Tasks
    from workbench.workspace import open_offline

    environment = {k: v for k, v in os.environ.items() if not k.startswith("SPHEROSEG_")}
    workspace = await open_offline(folder / "data", cache_dir=folder / "cache", environment=environment)
    try:
        project = await workspace.client.call("CreateProject", name="Ten thousand wells")
        project_id = project["createProject"]["project"]["id"]
        (folder / "files").mkdir()
        import_s = await _import(workspace, project_id, folder / "files", images)
        first = await workspace.client.call(
            "GalleryPage", projectId=project_id, first=60, after=None, filter=None, orderBy="NAME_ASC"
        )
        async with httpx.AsyncClient(timeout=60) as plain:  # the server renders them; our cache stays cold
            for edge in first["project"]["images"]["edges"]:
                (await plain.get(edge["node"]["thumbnailUrl"])).raise_for_status()

        tasks = Tasks(Notices())
        # right after the import, while the server still renders the other thumbnails at idle priority
        while_rendering_s = (await _open_gallery(workspace, tasks, project_id, folder / "cache-1"))[1]
        settled_s = await _server_settled(workspace.started.pid if workspace.started else None)
        gallery, first_thumbnails_s = await _open_gallery(
            workspace, tasks, project_id, folder / "cache-2", keep=True
        )

        frames: list[float] = []
        bar = gallery.view.verticalScrollBar()
        step = gallery.view.viewport().height()
        while bar.value() < bar.maximum():
            frame = time.perf_counter()
            bar.setValue(min(bar.maximum(), bar.value() + step))
            gallery.view.viewport().repaint()
            await asyncio.sleep(0)
            frames.append(time.perf_counter() - frame)
        reached = time.perf_counter()
        await _until(lambda: _last_screen_painted(gallery), 300)
        gallery.view.viewport().repaint()
        end_painted_s = time.perf_counter() - reached
        await asyncio.sleep(0.2)
        shot = ROOT / "test-output" / "screens" / "benchmark-gallery-end.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        gallery.grab().save(str(shot))
        gallery.close()
        await asyncio.sleep(0.2)
        notices = [notice.title for notice in tasks.notices.items]
    finally:
        await workspace.close()
    frames_ms = sorted(1000 * f for f in frames)
    return {
        "images": images,
        "set_up": f"{images:,} distinct 48x48 PNGs imported through the server's upload API "
        f"({BATCH} a request) in {import_s:.0f} s, the server quiet {settled_s:.0f} s later; the first "
        "screen's thumbnails rendered by the server "
        "beforehand, the workbench's disk cache cold",
        "window": f"{WINDOW[0]}x{WINDOW[1]}, {_per_screen(gallery.view)} tiles a screen",
        "first_thumbnails_s": round(first_thumbnails_s, 3),
        "first_thumbnails_while_server_renders_s": round(while_rendering_s, 3),
        "server_settled_after_s": round(settled_s, 1),
        "frames": len(frames_ms),
        "p50_frame_ms": round(statistics.median(frames_ms), 1),
        "p95_frame_ms": round(frames_ms[int(0.95 * (len(frames_ms) - 1))], 1),
        "max_frame_ms": round(frames_ms[-1], 1),
        "end_thumbnails_after_s": round(end_painted_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "notices": notices,
        "screenshot": str(shot.relative_to(ROOT)),
    }


def measure_gallery(images: int = 10_000) -> dict[str, Any]:
    """A real gallery window over a project of ``images``: first thumbnails, scroll frames, peak RSS."""
    with _display(), tempfile.TemporaryDirectory(prefix="spheroseg-bench-gallery-") as tmp:
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        import qasync
        from PySide6.QtWidgets import QApplication

        import workbench.qt  # noqa: F401  (its guard against lost references, before any Qt call)

        app = QApplication.instance() or QApplication([])
        QApplication.setQuitOnLastWindowClosed(False)  # closing the gallery must not stop the loop
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        try:
            result: dict[str, Any] = loop.run_until_complete(_gallery_figures(images, Path(tmp)))
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    result["goals"] = {
        "first_thumbnails_under_1s": result["first_thumbnails_s"] < GOALS["first_thumbnails_s"],
        "p95_frame_under_50ms": result["p95_frame_ms"] < GOALS["p95_frame_ms"],
        "rss_under_400mb": result["peak_rss_mb"] < GOALS["peak_rss_mb"],
    }
    return result


def print_gallery(result: dict[str, Any]) -> None:
    print(f"\nGallery: {result['images']:,} images, window {result['window']}")
    print(f"  set-up: {result['set_up']}")
    rows = [
        ("first screen of thumbnails painted", f"{result['first_thumbnails_s']:.3f} s", "< 1 s"),
        (
            "  the same, right after the import (server rendering)",
            f"{result['first_thumbnails_while_server_renders_s']:.3f} s",
            "",
        ),
        (f"scroll frame p50 ({result['frames']} frames)", f"{result['p50_frame_ms']:.1f} ms", ""),
        ("scroll frame p95", f"{result['p95_frame_ms']:.1f} ms", "< 50 ms"),
        ("scroll frame max", f"{result['max_frame_ms']:.1f} ms", ""),
        ("last screen's thumbnails after reaching the end", f"{result['end_thumbnails_after_s']:.2f} s", ""),
        ("peak RSS of the workbench process", f"{result['peak_rss_mb']:.0f} MB", "< 400 MB"),
    ]
    for what, value, goal in rows:
        print(f"  {what:<52} {value:>12}   {goal}")
    if result["notices"]:
        print(f"  notices shown: {result['notices']}")


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
    with tempfile.TemporaryDirectory(prefix="spheroseg-bench-workbench-") as tmp, _display() as shown_on:
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
        "goals": {name: medians[name] < limit for name, limit in LAUNCH_GOALS.items()},
    }


def print_launch(section: dict[str, Any]) -> None:
    print(f"launch ({section['command']}, median of {section['runs']})")
    print(f"  {'moment':<32}{'median s':>10}{'goal s':>9}  met")
    for name, label in (("window_shown_s", "window shown"), ("server_ready_s", "offline server ready")):
        print(f"  {label:<32}{section[name]:>10.3f}{LAUNCH_GOALS[name]:>9.1f}  {section['goals'][name]}")
    print(f"  first start, new data folder: {section['first_start_untimed']}")


SECTIONS: list[
    tuple[str, Callable[[argparse.Namespace], dict[str, Any]], Callable[[dict[str, Any]], None]]
] = [
    ("launch", lambda args: measure_launch(args.runs), print_launch),
    ("gallery", lambda args: measure_gallery(args.images), print_gallery),
]
"""(name, measure, print) for each section, run in this order."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed launches (medians reported)")
    parser.add_argument("--images", type=int, default=10_000, help="images in the gallery's project")
    args = parser.parse_args()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_start": os.getloadavg(),
        "note": "Shared machine: absolute figures are noisy; the server, the workbench and other work "
        "share the same cores.",
    }
    for name, measure, show in SECTIONS:
        report[name] = measure(args)
        show(report[name])
    report["load_average_end"] = os.getloadavg()
    report["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "desktop_window.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote benchmarks/results/desktop_window.json in {report['seconds']} s")


if __name__ == "__main__":
    main()
