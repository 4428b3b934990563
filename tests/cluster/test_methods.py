"""Method parameters are checked before anything runs, with a message that names the bad one."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest

from cluster.classical import ClassicalParams, ClassicalSegmenter
from cluster.exceptions import SegmentationError
from cluster.methods import JOB_PARAMETERS, checked_parameters, make_segmenter


@pytest.mark.parametrize(
    ("method", "parameters", "message"),
    [
        ("resunet", {"thresold": 0.6}, r"unknown parameter 'thresold'; known parameters: batch_size, device"),
        ("classical", {"threshold": 0.6}, r"unknown parameter 'threshold'; known parameters: background_"),
        ("resunet", {"threshold": "high"}, r"threshold must be a number, not 'high'"),
        ("resunet", {"threshold": True}, r"threshold must be a number, not True"),
        ("resunet", {"threshold": None}, r"threshold must be a number, not None"),
        ("resunet", {"threshold": float("nan")}, r"threshold must be a number, not nan"),
        ("resunet", {"threads": 2.5}, r"threads must be a whole number or none, not 2.5"),
        ("classical", {"working_size": 512.0}, r"working_size must be a whole number, not 512.0"),
        ("classical", {"split_touching": 1}, r"split_touching must be true or false, not 1"),
        ("resunet", {"weights": 7}, r"weights must be text or none, not 7"),
        ("resunet", {"model": "v3"}, r"model must be one of resunet-v2, resunet-v1, not 'v3'"),
        ("resunet", {"threshold": 1.5}, r"threshold must be between 0 and 1, not 1.5"),
        ("resunet", {"max_downscale": 0}, r"max_downscale must be within 1..64, not 0"),
        ("resunet", {"min_diameter_px": -3}, r"min_diameter_px must be 0 or more, not -3.0"),
        ("classical", {"working_size": 32}, r"working_size must be within 64..8192, not 32"),
        ("classical", {"working_size": 10**6}, r"working_size must be within 64..8192, not 1000000"),
        ("classical", {"background_degree": 9}, r"background_degree must be within 0..4, not 9"),
        ("classical", {"opening_radius": 1e4}, r"opening_radius must be within 0..50, not 10000.0"),
        ("classical", {"split_depth": -0.1}, r"split_depth must be within 0..1, not -0.1"),
    ],
)
def test_bad_parameters_are_refused_by_name(method: str, parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(SegmentationError, match=rf"^bad parameters for method '{method}': {message}"):
        checked_parameters(method, parameters)
    with pytest.raises(SegmentationError, match=message):  # the command line and workers say the same
        make_segmenter(method, **parameters)


def test_good_parameters_come_back_normalised() -> None:
    given = {"max_downscale": 4, "min_diameter_px": 20, "threads": None, "device": "cpu"}
    checked = checked_parameters("resunet", given)
    assert checked == {"max_downscale": 4.0, "min_diameter_px": 20.0, "threads": None, "device": "cpu"}
    assert type(checked["max_downscale"]) is float and type(checked["min_diameter_px"]) is float
    classical = checked_parameters("classical", {"working_size": 256, "split_touching": False})
    assert classical == {"working_size": 256, "split_touching": False}
    assert type(classical["working_size"]) is int
    assert checked_parameters("classical", {}) == {}
    segmenter = make_segmenter("classical", threshold_z=3)
    assert isinstance(segmenter, ClassicalSegmenter) and segmenter.params.threshold_z == 3.0


def test_an_allowed_subset_keeps_machine_settings_out_of_reach() -> None:
    allowed = JOB_PARAMETERS["resunet"]
    assert checked_parameters("resunet", {"threshold": 0.4}, allowed=allowed) == {"threshold": 0.4}
    # which shipped model runs is the user's choice; which file on the worker's disk is not
    assert checked_parameters("resunet", {"model": "resunet-v1"}, allowed=allowed) == {"model": "resunet-v1"}
    for name, value in [("weights", "/etc/passwd"), ("device", "cuda"), ("threads", 64), ("batch_size", 1)]:
        with pytest.raises(SegmentationError, match=rf"{name} cannot be set here") as refused:
            checked_parameters("resunet", {name: value}, allowed=allowed)
        assert str(refused.value).endswith("choose from: max_downscale, min_diameter_px, model, threshold")
    with pytest.raises(SegmentationError, match="unknown parameter 'x'; known parameters: max_downscale,"):
        checked_parameters("resunet", {"x": 1}, allowed=allowed)


def test_a_new_classical_parameter_needs_a_decision_for_jobs() -> None:
    # Every classical parameter tunes the analysis; a new field must be judged safe before users get it.
    assert JOB_PARAMETERS["classical"] == {field.name for field in dataclasses.fields(ClassicalParams)}


def test_unknown_methods_and_non_mappings_are_refused() -> None:
    with pytest.raises(SegmentationError, match="unknown segmentation method 'magic'; choose one of"):
        checked_parameters("magic", {})
    with pytest.raises(SegmentationError, match="give a mapping of parameter names to values, not list"):
        checked_parameters("classical", [("working_size", 256)])  # type: ignore[arg-type]


def test_checking_resunet_parameters_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from cluster.methods import JOB_PARAMETERS, checked_parameters\n"
        "checked_parameters('resunet', {'threshold': 0.5}, allowed=JOB_PARAMETERS['resunet'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
