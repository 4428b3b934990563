"""``spheroseg segment --workers N``: the same exports as one process, fanned out over a local cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import tifffile
from click.testing import CliRunner

from cluster.cli.segment import segment
from cluster.runner import local_spec
from cluster.synthetic import generate_scene

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def test_two_workers_write_what_one_process_writes(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for seed in range(4):
        tifffile.imwrite(images / f"s{seed}.tif", generate_scene(seed + 10, (160, 160)).image)
    (images / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 20)
    outputs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}"
        result = CliRunner().invoke(
            segment, [str(images), "--out", str(out), "--method", "classical", "--workers", workers]
        )
        assert result.exit_code == 1, result.output  # the broken file fails, and only it
        assert "4 of 5 images segmented" in result.output
        outputs[workers] = (out / "metrics.csv").read_text()
    assert outputs["1"] == outputs["2"]


def test_gpu_only_work_on_a_machine_without_gpus_is_refused_quickly(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    tifffile.imwrite(images / "a.tif", generate_scene(1, (96, 96)).image)
    result = CliRunner().invoke(segment, [str(images), "--out", str(tmp_path / "out"), "--gpus"])
    assert result.exit_code == 1
    assert "no CUDA GPU was found" in result.output


def test_the_local_cluster_is_sized_to_the_machine_and_the_job() -> None:
    assert local_spec(1, "classical").workers == 1
    assert local_spec(1000, "classical", workers=3).workers == 3
    assert local_spec(5, "classical", gpus=True).gpus


def test_without_dask_the_images_are_segmented_in_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cluster.cli.segment as command

    monkeypatch.setattr(command, "_cluster_available", lambda: False)
    monkeypatch.setattr(command, "_run_on_cluster", None)  # would fail if called
    images = tmp_path / "images"
    images.mkdir()
    for seed in range(2):
        tifffile.imwrite(images / f"s{seed}.tif", generate_scene(seed, (96, 96)).image)
    result = CliRunner().invoke(
        segment, [str(images), "--out", str(tmp_path / "out"), "--method", "classical"]
    )
    assert result.exit_code == 0, result.output
    assert "2 of 2 images segmented" in result.output
