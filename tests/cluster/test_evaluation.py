"""Accuracy metrics and ``spheroseg evaluate``: scores that mean what they say, masks read either way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cluster.cli.evaluate import evaluate as evaluate_command
from cluster.evaluation import MethodReport, held_out_cases, load_cases, read_mask, score
from cluster.synthetic import generate_scene


def _discs(shape: tuple[int, int], discs: list[tuple[int, int, int]]) -> np.ndarray:
    rows, cols = np.indices(shape)
    labels = np.zeros(shape, dtype=np.int32)
    for label, (r, c, radius) in enumerate(discs, start=1):
        labels[((rows - r) ** 2 + (cols - c) ** 2 < radius**2) & (labels == 0)] = label
    return labels


def test_a_perfect_prediction_scores_one_everywhere() -> None:
    labels = _discs((80, 120), [(40, 35, 20), (40, 85, 20)])
    scores = score("a", labels, labels)
    assert (scores.iou, scores.dice, scores.boundary_f1, scores.instance_f1) == (1.0, 1.0, 1.0, 1.0)
    assert scores.count_error == 0 and scores.area_error_pct == 0.0
    empty = np.zeros((10, 10), dtype=np.int32)
    assert score("empty", empty, empty).iou == 1.0 and score("empty", empty, empty).area_error_pct is None


def test_merged_spheroids_lose_instance_f1_but_not_iou() -> None:
    reference = _discs((80, 120), [(40, 35, 20), (40, 85, 20)])
    merged = (reference > 0).astype(np.int32)
    scores = score("merged", merged, reference)
    assert scores.iou == 1.0 and scores.count_error == -1
    assert scores.instance_f1 == pytest.approx(0.0)  # the union overlaps each disc at IoU 0.5 exactly


def test_small_spheroids_are_scored_apart_by_how_well_they_are_outlined_and_how_many_are_found() -> None:
    reference = _discs((200, 200), [(40, 40, 15), (40, 120, 12), (130, 100, 50)])
    coarse = _discs((200, 200), [(40, 40, 17), (130, 100, 50)])  # one small one drawn 2 px wide, one missed
    scores = score("coarse", coarse, reference)
    assert scores.small_found == pytest.approx(0.5)
    assert scores.small_iou == pytest.approx(15**2 / 17**2, abs=0.03)
    assert score("exact", reference, reference).small_iou == 1.0
    large_only = _discs((200, 200), [(100, 100, 50)])
    assert score("large", large_only, large_only).small_iou is None
    assert score("missed", np.zeros_like(reference), reference).small_found == 0.0


def test_boundary_f1_tolerates_two_pixels_but_not_five() -> None:
    reference = _discs((100, 100), [(50, 50, 30)])
    assert score("near", _discs((100, 100), [(50, 51, 30)]), reference).boundary_f1 == 1.0
    far = score("far", _discs((100, 100), [(50, 55, 30)]), reference)
    assert far.boundary_f1 < 0.6 and far.iou > 0.8
    bigger = score("bigger", _discs((100, 100), [(50, 50, 33)]), reference)
    assert bigger.area_error_pct == pytest.approx(100 * (33**2 - 30**2) / 30**2, rel=0.05)


def test_summary_gives_median_mean_and_worst_five() -> None:
    report = MethodReport("m", "1")
    reference = _discs((60, 60), [(30, 30, 15)])
    for radius in (15, 14, 13, 12, 11, 10, 9):
        report.images.append(score(f"r{radius}", _discs((60, 60), [(30, 30, radius)]), reference))
    summary = report.summary()
    ious = sorted(s.iou for s in report.images)
    assert summary["iou"]["median"] == pytest.approx(ious[3])
    assert summary["iou"]["worst5"] == pytest.approx(np.mean(ious[:5]))
    assert report.worst_images(1) == ["r9"]


def test_instance_f1_over_the_whole_set_counts_every_spheroid_once() -> None:
    """One false spheroid beside a single true one costs that image a third of its F1, the set one match
    in twenty."""
    report = MethodReport("m", "1")
    single = _discs((100, 100), [(50, 50, 20)])
    report.images.append(score("single", _discs((100, 100), [(50, 50, 20), (10, 10, 6)]), single))
    plate = _discs((300, 300), [(30 + 60 * (k // 3), 30 + 100 * (k % 3), 20) for k in range(9)])
    report.images.append(score("plate", plate, plate))
    summary = report.summary()["instance_f1"]
    assert summary["mean"] == pytest.approx((2 / 3 + 1) / 2)
    assert summary["all"] == pytest.approx(2 * 10 / (11 + 10))
    assert MethodReport("none", "1").instance_f1_all() != MethodReport("none", "1").instance_f1_all()  # NaN


def test_masks_are_binary_or_label_images(tmp_path: Path) -> None:
    labels = _discs((50, 90), [(25, 20, 12), (25, 65, 12)])
    Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(tmp_path / "binary.png")
    Image.fromarray(labels.astype(np.uint16)).save(tmp_path / "labels.tif")
    assert read_mask(tmp_path / "binary.png").max() == 2  # components become spheroids
    assert np.array_equal(read_mask(tmp_path / "labels.tif"), labels)


def _write_case(folder: Path, stem: str, seed: int) -> None:
    scene = generate_scene(seed, (128, 160))
    (folder / "images").mkdir(exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    Image.fromarray(scene.image).save(folder / "images" / f"{stem}.tif")
    Image.fromarray(scene.labels.astype(np.uint16)).save(folder / "masks" / f"{stem}.tif")


def test_evaluate_command_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    for seed in range(2):
        _write_case(tmp_path, f"well{seed}", seed)
    (tmp_path / "images" / "unlabelled.png").write_bytes((tmp_path / "images" / "well0.tif").read_bytes())
    assert [c.name for c in load_cases(tmp_path / "images", tmp_path / "masks")] == ["well0.tif", "well1.tif"]
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(
        evaluate_command,
        [
            "--images", str(tmp_path / "images"),
            "--masks", str(tmp_path / "masks"),
            "--method", "classical",
            "--json", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "boundary F1 (2 px)" in result.output and "classical" in result.output
    assert "spheroids 10-20 px in radius" in result.output and "share found" in result.output
    document = json.loads(out.read_text())
    (method,) = document["methods"]
    assert method["method"] == "classical" and len(method["images"]) == 2
    assert 0.0 <= method["summary"]["iou"]["median"] <= 1.0


def test_held_out_scenes_are_not_training_scenes() -> None:
    (case,) = held_out_cases(1, (96, 96))
    assert case.reference.shape == (96, 96) and case.image.pixels.shape == (96, 96)
    assert not np.array_equal(case.image.pixels, generate_scene(0, (96, 96)).image)


def test_held_out_scores_are_recorded_in_the_evaluated_weights_card(tmp_path: Path) -> None:
    import shutil

    from cluster.model.card import read_card, shipped_card_path

    shipped = shipped_card_path()
    before = shipped.read_text()
    for source in shipped.parent.glob("resunet-v1.*"):
        shutil.copy(source, tmp_path / source.name)
    weights = tmp_path / "resunet-v1.safetensors"
    out = tmp_path / "scores.json"
    arguments = [
        "--synthetic",
        "2",
        "--method",
        "resunet",
        "--method",
        "classical",
        "--weights",
        str(weights),
    ]
    result = CliRunner().invoke(evaluate_command, [*arguments, "--json", str(out), "--record-in-card"])
    assert result.exit_code == 0, result.output
    validation = read_card(weights).validation
    scored = {m["method"]: m["summary"] for m in json.loads(out.read_text())["methods"]}
    assert validation["resunet"]["iou"] == scored["resunet"]["iou"]
    assert validation["classical"]["instance_f1"] == scored["classical"]["instance_f1"]
    assert "2 held-out synthetic scenes" in validation["set"]
    assert shipped.read_text() == before  # only the evaluated weights' card changed

    refused = CliRunner().invoke(
        evaluate_command, ["--images", str(tmp_path), "--masks", str(tmp_path), "--record-in-card"]
    )
    assert refused.exit_code != 0 and "--synthetic" in refused.output


def test_a_card_records_only_the_metrics_a_set_gave_values_for(tmp_path: Path) -> None:
    """A set without small spheroids has no small-spheroid figures: the card leaves them out (never NaN,
    which JSON readers and the server's GraphQL floats refuse)."""
    import shutil

    from cluster.cli.evaluate import _record_in_card
    from cluster.evaluation import ImageScores
    from cluster.model.card import card_path, read_card, shipped_card_path

    for source in shipped_card_path().parent.glob("resunet-v1.*"):
        shutil.copy(source, tmp_path / source.name)
    weights = tmp_path / "resunet-v1.safetensors"
    large_only = ImageScores("a", 0.97, 0.98, 0.95, 1.0, 0, 1.5)  # small_iou and small_found None
    _record_in_card(card_path(weights), 1, [MethodReport("resunet", "1.1", [large_only])])
    recorded = read_card(weights).validation["resunet"]
    assert recorded["iou"]["median"] == 0.97 and "small_iou" not in recorded
    assert "NaN" not in card_path(weights).read_text()


def test_scores_without_small_spheroids_are_plain_json() -> None:
    from cluster.evaluation import ImageScores

    report = MethodReport("classical", "1.1", [ImageScores("a", 0.9, 0.95, 0.9, 1.0, 0, 2.0)])
    document = report.to_dict()
    assert document["summary"]["small_iou"] == {"median": None, "mean": None, "worst5": None}
    json.dumps(document, allow_nan=False)  # raises on NaN
