"""Training and fine-tuning, a few steps of a tiny network: reproducible, resumable, shipped weights kept."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from click.testing import CliRunner  # noqa: E402
from PIL import Image  # noqa: E402

from cluster.cli.train import train as train_command  # noqa: E402
from cluster.model.card import file_sha256, read_card  # noqa: E402
from cluster.model.data import load_pairs, synthetic_sample  # noqa: E402
from cluster.model.exceptions import WeightsError  # noqa: E402
from cluster.model.network import ResUNetConfig  # noqa: E402
from cluster.model.training import TrainConfig, fine_tune, train, train_further  # noqa: E402
from cluster.synthetic import generate_scene  # noqa: E402

TINY = TrainConfig(
    steps=3,
    batch_size=2,
    warmup_steps=1,
    working_size=64,
    pool_size=3,
    fresh_per_step=1,
    size_range=(1.0, 1.5),
    architecture=ResUNetConfig(widths=(8, 16, 16), groups=4),
    checkpoint_every=2,
    device="cpu",
)


def test_training_is_reproducible_from_its_seed(tmp_path: Path) -> None:
    first = train(TINY, tmp_path / "a.safetensors")
    second = train(TINY, tmp_path / "b.safetensors")
    other = train(replace(TINY, seed=1), tmp_path / "c.safetensors")
    assert first.card.sha256 == second.card.sha256 != other.card.sha256
    assert first.card.training["recipe"]["steps"] == 3 and first.card.working_size == 64
    assert not (tmp_path / "a.safetensors.ckpt").exists()  # the checkpoint goes once the weights are written


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    whole = train(TINY, tmp_path / "whole.safetensors")
    out = tmp_path / "resumed.safetensors"

    # Interrupt after the step-2 checkpoint: simulated by a progress callback that raises.
    def stop(step: int, _total: int, _loss: float) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TINY, out, progress=stop)
    assert out.with_name(out.name + ".ckpt").exists() and not out.exists()
    resumed = train(TINY, out)
    assert resumed.card.sha256 == whole.card.sha256


def _write_pair(folder: Path, name: str, seed: int) -> None:
    scene = generate_scene(seed, (96, 128))
    (folder / "images").mkdir(exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    Image.fromarray(scene.image).save(folder / "images" / f"{name}.tif")
    Image.fromarray((scene.labels > 0).astype(np.uint8) * 255).save(folder / "masks" / f"{name}.png")


def test_fine_tuning_writes_new_weights_with_their_own_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = train(TINY, tmp_path / "base.safetensors")
    for seed in range(2):
        _write_pair(tmp_path, f"well{seed}", seed)
    samples = load_pairs(tmp_path / "images", tmp_path / "masks", 64)
    assert len(samples) == 2 and samples[0].image.shape == (48, 64)
    result = fine_tune(
        samples, tmp_path / "lab.safetensors", from_weights=base.weights, steps=2, batch_size=2, device="cpu"
    )
    card = read_card(result.weights)
    assert card.base_model == {"name": "resunet", "version": base.card.version, "sha256": base.card.sha256}
    assert card.sha256 == file_sha256(result.weights) != base.card.sha256
    assert file_sha256(base.weights) == base.card.sha256  # the base weights are untouched
    monkeypatch.setenv("SPHEROSEG_MODEL_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match="shipped"):
        fine_tune(samples, tmp_path / "over.safetensors", from_weights=base.weights, steps=1, device="cpu")


def test_train_command_fine_tunes_from_a_folder_of_masks(tmp_path: Path) -> None:
    base = train(TINY, tmp_path / "base.safetensors")
    _write_pair(tmp_path, "a", 3)
    result = CliRunner().invoke(
        train_command,
        [
            "--out", str(tmp_path / "ft.safetensors"),
            "--from-weights", str(base.weights),
            "--images", str(tmp_path / "images"),
            "--masks", str(tmp_path / "masks"),
            "--steps", "1",
            "--batch-size", "1",
            "--device", "cpu",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and (tmp_path / "ft.card.json").exists()


def test_training_further_starts_from_given_weights_on_other_scenes(tmp_path: Path) -> None:
    base = train(replace(TINY, scenes="v1"), tmp_path / "v1.safetensors")
    further = train_further(
        replace(TINY, scenes="v2", architecture=ResUNetConfig(), working_size=128),
        tmp_path / "v2.safetensors",
        from_weights=base.weights,
    )
    card = read_card(further.weights)
    assert card.base_model == {"name": "resunet", "version": base.card.version, "sha256": base.card.sha256}
    assert card.architecture == base.card.architecture and card.working_size == 64  # the base model's
    assert card.training["recipe"]["scenes"] == "v2" and "for_training('v2')" in card.training["data"]
    assert card.sha256 != base.card.sha256 and file_sha256(base.weights) == base.card.sha256
    with pytest.raises(ValueError, match="v1, v2"):
        replace(TINY, scenes="wide")


def test_train_command_trains_further_without_real_images(tmp_path: Path) -> None:
    base = train(TINY, tmp_path / "base.safetensors")
    out = tmp_path / "further.safetensors"
    arguments = ["--out", str(out), "--from-weights", str(base.weights), "--steps", "1"]
    result = CliRunner().invoke(train_command, [*arguments, "--batch-size", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    card = read_card(out)
    assert card.base_model is not None and card.base_model["sha256"] == base.card.sha256
    assert card.training["recipe"]["seed"] == 2 and card.training["recipe"]["scenes"] == "v2"


def test_synthetic_samples_are_a_function_of_their_seed() -> None:
    a, b = synthetic_sample(5, 64, size_range=(1.0, 2.0)), synthetic_sample(5, 64, size_range=(1.0, 2.0))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.core, b.core)
    assert max(a.image.shape) == 64 and a.foreground.shape == a.image.shape
    assert a.foreground.min() >= 0.0 and a.foreground.max() <= 1.0
