"""``spheroseg workbench --offline`` as a user runs it: its own process, its window on the display, its own
offline server; ended by SIGTERM (a logout, ``kill``), it closes as its close button does: the server is
stopped and the data folder let go."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.workbench.qt.conftest import offline_environment

ROOT = Path(__file__).resolve().parents[3]
LAUNCH = (
    "import logging; logging.basicConfig(level=logging.INFO); from workbench.cli import workbench; "
    "workbench(prog_name='spheroseg workbench')"
)


def test_the_workbench_opens_offline_and_closes_cleanly_on_sigterm(tmp_path: Path) -> None:
    assert os.environ.get("DISPLAY")  # the display pytest-xvfb started, as on a desktop
    data = tmp_path / "data"
    environment = offline_environment() | {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "--offline", "--data-dir", str(data)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=environment,
    )
    assert process.stderr is not None
    log: list[str] = []
    watch = selectors.DefaultSelector()
    watch.register(process.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + 120
    try:
        while not any("signed in to http://127.0.0.1:" in line for line in log):
            assert time.monotonic() < deadline and process.poll() is None, "".join(log[-30:])
            if watch.select(timeout=1):
                log.append(process.stderr.readline().decode(errors="replace"))
        assert any("window shown" in line for line in log)
        assert (data / "server.lock").exists()  # its own server serves the data folder
    finally:
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=60)[1].decode(errors="replace")

    assert process.returncode == 0, rest[-3000:]
    assert not (data / "server.lock").exists()  # the server stopped cleanly and let go of the folder
    assert "Traceback" not in rest, rest[-3000:]
