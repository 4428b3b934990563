"""The desktop bundle's size and start: what a biologist downloads, and how soon the window is up.

Builds both flavours with packaging/desktop/build.py (or measures bundles already built: --lean/--full
give their folders), then for each:

- its size on disk and as the .tar.gz a lab would hand on (compression level 6);
- the cold start: ``SpheroSeg workbench --check`` under Xvfb, the page cache dropped first where this
  user may (root on Linux; the table says whether it was), read from the program's own report ("Window
  shown N s after the program started"), then the median of ``--repeats`` warm starts;
- whether the check passed (samples segmented offline with the classical method).

The same check run from the source install (``spheroseg workbench --check`` in this virtual
environment) is the baseline, measured in the same run. Goals (issue 18): the lean bundle under 250 MB,
the window up in under 3 s. Prints a table and writes benchmarks/results/packaging.json (the name the
issue gave; the script is not named packaging.py, which would hide the ``packaging`` library from the
other benchmarks, run with this folder first on their path).

Usage: python benchmarks/desktop_bundle.py [--lean DIR] [--full DIR] [--repeats N] [--skip-full]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BUILD = ROOT / "packaging" / "desktop" / "build.py"
SHOWN = re.compile(r"Window shown ([\d.]+) s after the program started")
GOAL_MB, GOAL_WINDOW_S = 250, 3.0


def build(flavour: str, dist: Path) -> tuple[Path, float]:
    started = time.monotonic()
    subprocess.run([sys.executable, str(BUILD), f"--flavour={flavour}", f"--dist={dist}"], check=True)
    return dist / "SpheroSeg", time.monotonic() - started


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def archive_mb(folder: Path) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "bundle.tar.gz"
        with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
            tar.add(folder, arcname=folder.name)
        return archive.stat().st_size / 1e6


def drop_page_cache() -> bool:
    """Make the next start read the bundle from disk, where this user may (else it is only the first)."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def check(command: list[str]) -> dict[str, Any]:
    """One ``workbench --check`` in a home of its own: seconds to the window, whole run, passed."""
    with tempfile.TemporaryDirectory() as home:
        environment = {"PATH": os.environ["PATH"], "HOME": home, "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": home}
        started = time.monotonic()
        ran = subprocess.run(
            ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", *command, "workbench", "--check"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
        whole = time.monotonic() - started
    shown = SHOWN.search(ran.stdout)
    return {
        "window_s": float(shown.group(1)) if shown else None,
        "check_s": round(whole, 2),
        "passed": ran.returncode == 0 and "Installation check passed" in ran.stdout,
        "tail": ran.stdout.splitlines()[-6:] + ran.stderr.splitlines()[-4:] if ran.returncode else [],
    }


def starts(command: list[str], repeats: int) -> dict[str, Any]:
    cold_dropped = drop_page_cache()
    cold = check(command)
    warm = [check(command) for _ in range(repeats)]
    windows = [run["window_s"] for run in warm if run["window_s"] is not None]
    return {
        "cold_window_s": cold["window_s"],
        "cold_page_cache_dropped": cold_dropped,
        "warm_window_s_median": statistics.median(windows) if windows else None,
        "warm_window_s_all": windows,
        "check_s_median": statistics.median(run["check_s"] for run in warm) if warm else cold["check_s"],
        "passed": cold["passed"] and all(run["passed"] for run in warm),
        "failure": cold["tail"] or next((run["tail"] for run in warm if run["tail"]), []),
    }


def measure_bundle(flavour: str, folder: Path | None, scratch: Path, repeats: int) -> dict[str, Any]:
    built_s = None
    if folder is None:
        folder, built_s = build(flavour, scratch / flavour)
    result: dict[str, Any] = {
        "flavour": flavour,
        "build_s": None if built_s is None else round(built_s, 1),
        "size_mb": round(folder_mb(folder), 1),
        "archive_mb": round(archive_mb(folder), 1),
    }
    result.update(starts([str(folder / "SpheroSeg")], repeats))
    return result


def print_table(report: dict[str, Any]) -> None:
    header = (
        f"{'':<22}{'on disk':>10}{'.tar.gz':>10}{'cold window':>13}{'warm window':>13}{'check':>9}  passed"
    )
    print(header)
    print("-" * len(header))
    for row in report["rows"]:
        size = "-" if row.get("size_mb") is None else f"{row['size_mb']:.0f} MB"
        archive = "-" if row.get("archive_mb") is None else f"{row['archive_mb']:.0f} MB"
        cold = "-" if row["cold_window_s"] is None else f"{row['cold_window_s']:.2f} s"
        warm = "-" if row["warm_window_s_median"] is None else f"{row['warm_window_s_median']:.2f} s"
        print(
            f"{row['name']:<22}{size:>10}{archive:>10}{cold:>13}{warm:>13}{row['check_s_median']:>8.1f}s"
            f"  {'yes' if row['passed'] else 'NO'}"
        )
    print(f"goals: lean bundle under {GOAL_MB} MB, window up in under {GOAL_WINDOW_S:.0f} s")
    for name, ratio in report["window_ratio_to_source"].items():
        print(f"{name}: warm window {ratio:.2f}x the source install's")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lean", type=Path, help="a lean bundle's folder, already built")
    parser.add_argument("--full", type=Path, help="a full bundle's folder, already built")
    parser.add_argument("--skip-full", action="store_true", help="leave the full bundle out")
    parser.add_argument("--repeats", type=int, default=3, help="warm starts to take the median of")
    options = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="spheroseg-bundles-") as scratch:
        spheroseg = shutil.which("spheroseg", path=str(Path(sys.executable).parent))
        assert spheroseg, "run with the project's virtual environment's python"
        source = {"name": "source install (venv)", "size_mb": None, "archive_mb": None}
        source.update(starts([spheroseg], options.repeats))
        rows.append(source)
        flavours = [("lean", options.lean)] + ([] if options.skip_full else [("full", options.full)])
        for flavour, folder in flavours:
            measured = measure_bundle(flavour, folder, Path(scratch), options.repeats)
            rows.append({"name": f"{flavour} bundle", **measured})
    base = source["warm_window_s_median"]
    report = {
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        "load_average": os.getloadavg(),
        "goals": {"lean_bundle_mb": GOAL_MB, "window_s": GOAL_WINDOW_S},
        "rows": rows,
        "window_ratio_to_source": {
            row["name"]: row["warm_window_s_median"] / base
            for row in rows[1:]
            if base and row["warm_window_s_median"] is not None
        },
    }
    print_table(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "packaging.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
