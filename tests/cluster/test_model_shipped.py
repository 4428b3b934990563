"""The shipped weights: intact, documented, made by `spheroseg train` defaults, better than the baseline."""

from __future__ import annotations

import statistics

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from cluster.evaluation import evaluate, held_out_cases  # noqa: E402
from cluster.methods import DEFAULT_METHOD, make_segmenter  # noqa: E402
from cluster.model.card import file_sha256, read_card, shipped_card_path, weights_path  # noqa: E402
from cluster.model.training import TrainConfig  # noqa: E402
from cluster.model.weights import load_model  # noqa: E402

pytestmark = pytest.mark.skipif(
    not shipped_card_path().is_file(), reason="no shipped weights in resources/models"
)


def test_shipped_weights_match_their_card() -> None:
    card = read_card(shipped_card_path())
    weights = weights_path(card, shipped_card_path())
    assert weights.suffix == ".safetensors" and weights.stat().st_size < 20 * 2**20
    assert file_sha256(weights) == card.sha256
    model, _ = load_model()
    assert model.parameter_count() == card.parameters
    assert card.created and card.working_size == 256
    assert {"iou", "boundary_f1", "instance_f1"} <= set(card.validation["resunet"])


def test_the_train_command_defaults_are_the_shipped_recipe() -> None:
    recipe = read_card(shipped_card_path()).training["recipe"]
    defaults = TrainConfig().to_dict()
    for key in ("steps", "batch_size", "learning_rate", "seed", "working_size", "crop_size", "architecture"):
        assert recipe[key] == defaults[key], key


def test_resunet_is_the_default_and_beats_the_classical_baseline_on_held_out_scenes() -> None:
    assert DEFAULT_METHOD == "resunet"
    cases = held_out_cases(6, (384, 384))
    resunet = evaluate(cases, make_segmenter("resunet", device="cpu"))
    classical = evaluate(cases, make_segmenter("classical"))
    median = {r.method: statistics.median(s.iou for s in r.images) for r in (resunet, classical)}
    assert median["resunet"] >= 0.9
    assert median["resunet"] > median["classical"]
