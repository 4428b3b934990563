"""The shipped weights: intact, documented, made by `spheroseg train`'s recipes, better than the baseline."""

from __future__ import annotations

import statistics
from itertools import pairwise

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from cluster.evaluation import evaluate, held_out_cases  # noqa: E402
from cluster.methods import DEFAULT_METHOD, make_segmenter  # noqa: E402
from cluster.model.card import (  # noqa: E402
    SHIPPED_MODELS,
    file_sha256,
    read_card,
    shipped_card_path,
    weights_path,
)
from cluster.model.training import FURTHER_TRAINING, TrainConfig  # noqa: E402
from cluster.model.weights import load_model  # noqa: E402

pytestmark = pytest.mark.skipif(
    not shipped_card_path().is_file(), reason="no shipped weights in resources/models"
)


@pytest.mark.parametrize("stem", SHIPPED_MODELS)
def test_shipped_weights_match_their_card(stem: str) -> None:
    card = read_card(shipped_card_path(stem))
    weights = weights_path(card, shipped_card_path(stem))
    assert weights.suffix == ".safetensors" and weights.stat().st_size < 20 * 2**20
    assert file_sha256(weights) == card.sha256
    model, _ = load_model(shipped_card_path(stem))
    assert model.parameter_count() == card.parameters
    assert card.created and card.working_size == 256
    assert {"iou", "boundary_f1", "instance_f1", "small_iou"} <= set(card.validation["resunet"])


def test_the_train_command_defaults_are_the_shipped_recipes() -> None:
    """Version 1 came from `spheroseg train`'s defaults, version 2.0 from `--from-weights`' (twice), 2.1 and
    2.2 each from the version before with the options their stages name."""
    first, newest = (read_card(shipped_card_path(stem)) for stem in ("resunet-v1", "resunet-v2"))
    keys = ("steps", "batch_size", "learning_rate", "warmup_steps", "seed", "working_size", "crop_size")
    stages = newest.training["stages"]
    polish = {"steps": 2000, "learning_rate": 1e-3, "seed": 4}  # --steps 2000 --learning-rate 1e-3 --seed 4
    light = {"steps": 3000, "learning_rate": 1e-3, "seed": 5}  # --steps 3000 --learning-rate 1e-3 --seed 5
    recipes = (
        (first.training["recipe"], TrainConfig().to_dict()),
        (stages[0]["recipe"], FURTHER_TRAINING.to_dict()),
        (stages[1]["recipe"], FURTHER_TRAINING.to_dict()),
        (stages[2]["recipe"], {**FURTHER_TRAINING.to_dict(), **polish}),
        (stages[3]["recipe"], {**FURTHER_TRAINING.to_dict(), **light}),
    )
    for recorded, defaults in recipes:
        for key in (*keys, "architecture"):
            assert recorded[key] == defaults[key], key
    assert [stage["recipe"]["scenes"] for stage in stages] == ["v2", "v2", "v2.1", "v2.2"]
    assert newest.training["recipe"] == stages[-1]["recipe"]
    for stage, options in ((stages[2], polish), (stages[3], light)):
        assert f"--steps {options['steps']} --learning-rate 1e-3 --seed {options['seed']}" in stage["command"]
    # each stage from the one before, from 1.1 (the first stage's weights were never shipped: see its card)
    assert stages[0]["from"]["sha256"] == first.sha256
    for before, after in pairwise(stages):
        assert after["from"]["sha256"] == before["made"]["sha256"]
    assert (
        stages[-1]["from"]["sha256"] == newest.base_model["sha256"]
        and stages[-1]["made"]["sha256"] == newest.sha256
    )
    assert shipped_card_path() == shipped_card_path("resunet-v2")  # the newest is the default


def test_resunet_is_the_default_and_beats_the_classical_baseline_on_held_out_scenes() -> None:
    assert DEFAULT_METHOD == "resunet"
    cases = held_out_cases(6, (384, 384))
    resunet = evaluate(cases, make_segmenter("resunet", device="cpu"))
    classical = evaluate(cases, make_segmenter("classical"))
    median = {r.method: statistics.median(s.iou for s in r.images) for r in (resunet, classical)}
    assert median["resunet"] >= 0.9
    assert median["resunet"] > median["classical"]
