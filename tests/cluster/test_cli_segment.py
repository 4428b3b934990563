"""`spheroseg segment` as a biologist uses it: a folder in, exports out, bad files reported, not fatal."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cluster.cli.main import cli

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"


@pytest.fixture
def plate(tmp_path: Path) -> Path:
    """A folder with two sample images, a text file and a truncated TIFF."""
    folder = tmp_path / "plate"
    folder.mkdir()
    shutil.copy(SAMPLES / "touching_pair.tif", folder)
    shutil.copy(SAMPLES / "single_necrotic_core.png", folder)
    (folder / "notes.png").write_text("not an image")
    (folder / "broken.tif").write_bytes((SAMPLES / "phase_contrast_halo.tif").read_bytes()[:4000])
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    return folder


def test_segments_a_folder_and_writes_every_export(tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, ["segment", str(SAMPLES), "--out", str(out)])
    assert result.exit_code == 0, result.output
    images = sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.suffix != ".py")
    assert "6 of 6 images segmented" in result.output
    for export in ("annotations.coco.json", "metrics.csv", "metrics.xlsx"):
        assert (out / export).stat().st_size > 0
    assert len(list((out / "masks").glob("*.png"))) == len(images)
    assert len(list((out / "geojson").glob("*.geojson"))) == len(images)
    coco = json.loads((out / "annotations.coco.json").read_text())
    assert len(coco["images"]) == len(images) and coco["annotations"]


def test_bad_files_are_reported_and_the_rest_processed(plate: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, ["segment", str(plate), "--out", str(out), "--formats", "csv"])
    assert result.exit_code == 1
    assert "2 of 4 images segmented" in result.output
    assert "notes.png" in result.output and "not an image" in result.output
    assert "broken.tif" in result.output and "truncated" in result.output
    with (out / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {Path(row["image"]).name for row in rows} == {"touching_pair.tif", "single_necrotic_core.png"}
    assert not (out / "masks").exists(), "--formats csv must write only the CSV"


def test_pixel_size_option_fills_micrometre_columns(tmp_path: Path) -> None:
    out = tmp_path / "results"
    image = SAMPLES / "touching_pair.tif"  # carries no pixel size
    CliRunner().invoke(cli, ["segment", str(image), "--out", str(out), "--formats", "csv"])
    with (out / "metrics.csv").open() as handle:
        assert all(row["area_um2"] == "" for row in csv.DictReader(handle))
    result = CliRunner().invoke(
        cli, ["segment", str(image), "--out", str(out), "--formats", "csv", "--pixel-size", "2"]
    )
    assert result.exit_code == 0, result.output
    with (out / "metrics.csv").open() as handle:
        for row in csv.DictReader(handle):
            assert float(row["area_um2"]) == pytest.approx(4 * float(row["area_px"]), rel=1e-6)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--formats", "coco,pdf"], "unknown format"),
        (["--pixel-size", "-1"], "pixel-size"),
        (["--method", "magic"], "magic"),
        (["--model", "resunet-v9"], "resunet-v2"),
        (["--method", "classical", "--model", "resunet-v1"], "add --method resunet"),
    ],
)
def test_bad_options_are_explained(tmp_path: Path, arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["segment", str(SAMPLES), "--out", str(tmp_path), *arguments])
    assert result.exit_code == 2
    assert message in result.output


def test_the_first_model_can_still_be_chosen(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    image = SAMPLES / "touching_pair.tif"
    versions = {}
    for model in ("resunet-v1", "resunet-v2"):
        out = tmp_path / model
        arguments = ["--method", "resunet", "--model", model, "--formats", "coco"]
        result = CliRunner().invoke(cli, ["segment", str(image), "--out", str(out), *arguments])
        assert result.exit_code == 0, result.output
        [made] = json.loads((out / "annotations.coco.json").read_text())["info"]["models"]
        versions[model] = made["version"]
    assert versions["resunet-v1"].startswith("1.1 ") and versions["resunet-v2"].startswith("2.2 ")


def test_half_of_the_tls_files_is_a_usage_error_not_plain_tcp(tmp_path: Path) -> None:
    """As for `spheroseg cluster status`: a CA without a client certificate cannot make a TLS connection."""
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    arguments = ["--scheduler", "tls://127.0.0.1:1", "--tls-ca-file", str(ca)]
    result = CliRunner().invoke(cli, ["segment", str(SAMPLES), "--out", str(tmp_path / "out"), *arguments])
    assert result.exit_code == 2, result.output
    assert "TLS needs both --tls-ca-file and --tls-cert" in result.output


def test_folder_without_images_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = CliRunner().invoke(cli, ["segment", str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "no image files" in result.output


def test_top_level_help_lists_the_subcommands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "segment" in result.output
