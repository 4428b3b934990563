"""``spheroseg cluster`` as a lab admin uses it: deploy, inspect, segment on it, scale, stop.

The deployed cluster is real (a detached daemon with worker processes); its state file lives in the test's
temporary folder through ``SPHEROSEG_CLUSTER_STATE``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tifffile
from click.testing import CliRunner, Result

from cluster.cli.cluster_commands import cluster
from cluster.cli.segment import segment
from cluster.launch.state import STATE_ENV, load_state, process_alive
from cluster.synthetic import generate_scene

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "state" / "cluster.json"
    monkeypatch.setenv(STATE_ENV, str(path))
    yield path
    if path.exists():  # a failed test must not leave a cluster running
        CliRunner().invoke(cluster, ["stop", "--timeout", "10"])


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cluster, list(args), catch_exceptions=False)


def status(*args: str) -> dict[str, object]:
    result = invoke("status", "--json", *args)
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.output)
    return data


def test_deploy_status_segment_scale_metrics_and_stop(state_file: Path, tmp_path: Path) -> None:
    missing = invoke("status")
    assert missing.exit_code == 1 and "no cluster is deployed" in missing.output

    deployed = invoke("deploy", "--workers", "2", "--memory-limit", "1GB")
    assert deployed.exit_code == 0, deployed.output
    assert re.search(r"running at\s+tcp://127\.0\.0\.1:\d+", deployed.output)
    state = load_state(state_file)
    assert state.pid is not None and process_alive(state.pid)
    again = invoke("deploy")
    assert again.exit_code == 1 and "already deployed" in again.output

    first = status()
    assert len(first["workers"]) == 2  # type: ignore[arg-type]
    assert status("--scheduler", state.scheduler_address)["address"] == state.scheduler_address

    images = tmp_path / "images"
    images.mkdir()
    for seed in range(4):
        tifffile.imwrite(images / f"s{seed}.tif", generate_scene(seed, (160, 160)).image)
    out = tmp_path / "out"
    segmented = CliRunner().invoke(
        segment, [str(images), "--out", str(out), "--method", "classical", "--scheduler", "deployed"]
    )
    assert segmented.exit_code == 0, segmented.output
    assert "4 of 4 images segmented" in segmented.output and (out / "metrics.csv").exists()

    table = invoke("status")
    assert table.exit_code == 0 and "images/s over the last minute" in table.output
    after = status()
    assert after["images_per_second"] > 0  # type: ignore[operator]
    assert sum(w["images_ok"] for w in after["workers"]) == 4  # type: ignore[attr-defined, union-attr]

    metrics = invoke("metrics")
    assert metrics.exit_code == 0, metrics.output
    assert "4 images segmented by the current workers" in metrics.output
    raw = invoke("metrics", "--raw")
    assert "spheroseg_worker_images_total" in raw.output and "dask_scheduler_workers" in raw.output

    scaled = invoke("scale", "1")
    assert scaled.exit_code == 0 and "scaled to 1 workers" in scaled.output, scaled.output
    assert len(status()["workers"]) == 1  # type: ignore[arg-type]
    adapting = invoke("scale", "--adapt", "1:2")
    assert adapting.exit_code == 0 and "adapting between 1 and 2 workers" in adapting.output

    stopped = invoke("stop")
    assert stopped.exit_code == 0 and "stopped the cluster" in stopped.output
    assert not state_file.exists() and not process_alive(state.pid)


def test_an_existing_scheduler_is_recorded_scaled_down_only_and_forgotten(state_file: Path) -> None:
    command = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0"]
    scheduler = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert scheduler.stderr is not None
        address = ""
        for line in scheduler.stderr:
            if "Scheduler at:" in line:
                address = line.split("Scheduler at:")[1].strip()
                break
        deployed = invoke("deploy", "--backend", "address", "--scheduler", address)
        assert deployed.exit_code == 0, deployed.output
        assert load_state(state_file).pid is None
        assert status()["workers"] == []
        refused = invoke("scale", "3")
        assert refused.exit_code == 1 and "can only scale down" in refused.output
        forgot = invoke("stop")
        assert "forgot the scheduler" in forgot.output and not state_file.exists()
        assert scheduler.poll() is None, "stop must not shut down a scheduler we did not start"
    finally:
        os.killpg(scheduler.pid, 15)
        scheduler.wait(timeout=20)
