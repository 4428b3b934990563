"""``make run``: the workbench on the sample project where there is a display; where there is none, one
line saying so and the headless segmentation of the samples instead (what the commands would be,
``make -n``, with the set-up step taken as done)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _planned(**display: str) -> list[str]:
    # without the variables of a make that runs this test (``make test``: it would print its directories)
    left_out = ("DISPLAY", "WAYLAND_DISPLAY", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    environment = {k: v for k, v in os.environ.items() if k not in left_out}
    done = "/nonexistent/.installed-stamp"
    found = subprocess.run(
        ["make", "-n", "run", "VENV=/nonexistent", "-o", done],
        env={**environment, **display},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.splitlines()


def test_make_run_opens_the_workbench_with_a_display_and_segments_headless_without() -> None:
    assert _planned(DISPLAY=":0") == ["/nonexistent/bin/spheroseg workbench --sample-project"]
    assert _planned(WAYLAND_DISPLAY="wayland-0") == ["/nonexistent/bin/spheroseg workbench --sample-project"]
    headless = _planned()
    assert len(headless) == 2 and headless[0].startswith('echo "No display')
    assert headless[1] == "/nonexistent/bin/spheroseg segment resources/samples --out results/"
