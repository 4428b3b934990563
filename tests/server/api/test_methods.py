"""The ``methods`` query: what a method form is built from, and that it offers what a job accepts."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from cluster.methods import DEFAULT_METHOD
from tests.server.conftest import Api, png_bytes

pytestmark = pytest.mark.anyio

METHODS = """{ methods { name default available
  parameters { name type nullable default minimum maximum exclusiveMinimum exclusiveMaximum description
    choices }
  models { name version created trainingData heldOutSet sha256 key scores { metric median mean worst5 } }
} }"""
SEGMENT = """mutation($input: SegmentImagesInput!) { segmentImages(input: $input) { __typename
  ... on InputError { field message } } }"""


def _out_of_range(parameter: dict[str, Any]) -> Any:
    """A value the parameter's bounds or choices, as the query states them, refuse (``None`` when it has
    none)."""
    if parameter["choices"]:
        return "-".join(parameter["choices"])  # a name that is none of them
    if parameter["minimum"] is not None:
        return parameter["minimum"] - 1
    if parameter["exclusiveMinimum"] is not None:
        return parameter["exclusiveMinimum"]
    if parameter["maximum"] is not None:
        return parameter["maximum"] + 1
    if parameter["exclusiveMaximum"] is not None:
        return parameter["exclusiveMaximum"]
    return None


async def test_a_member_sees_every_method_with_its_parameters_and_models(api: Api) -> None:
    member = await api.user("member")
    methods = {m["name"]: m for m in (await api.ok(METHODS, member))["methods"]}
    assert set(methods) == {"classical", "resunet"}
    assert [name for name, m in methods.items() if m["default"]] == [DEFAULT_METHOD]
    resunet = {p["name"]: p for p in methods["resunet"]["parameters"]}
    # what a job may set; where the weights live and which device runs them are the workers' settings
    assert set(resunet) == {"model", "threshold", "min_diameter_px", "max_downscale"}
    assert resunet["threshold"] == {
        "name": "threshold",
        "type": "number",
        "nullable": False,
        "default": 0.5,
        "minimum": None,
        "maximum": None,
        "exclusiveMinimum": 0.0,
        "exclusiveMaximum": 1.0,
        "description": "Probability above which a pixel is foreground (and core).",
        "choices": None,
    }
    # which shipped model runs: one of a few names, the newest by default
    assert (resunet["model"]["type"], resunet["model"]["default"]) == ("text", "resunet-v2")
    assert resunet["model"]["choices"] == ["resunet-v2", "resunet-v1"]
    working_size = next(p for p in methods["classical"]["parameters"] if p["name"] == "working_size")
    assert (working_size["type"], working_size["default"]) == ("integer", 512)
    assert (working_size["minimum"], working_size["maximum"]) == (64, 8192)
    split = next(p for p in methods["classical"]["parameters"] if p["name"] == "split_touching")
    assert split["type"] == "boolean" and split["default"] is True
    model, first = methods["resunet"]["models"]
    assert (model["key"], model["name"], model["version"]) == ("resunet-v2", "resunet", "2.2")
    assert (first["key"], first["version"], first["created"]) == ("resunet-v1", "1.1", "2026-12-04")
    assert model["sha256"] != first["sha256"]
    assert "synthetic" in model["trainingData"] and "held-out" in model["heldOutSet"]
    scores = {s["metric"]: s for s in model["scores"]}
    assert scores["iou"]["median"] > 0.95 and len(model["sha256"]) == 64
    [classical] = methods["classical"]["models"]
    classical_iou = next(s for s in classical["scores"] if s["metric"] == "iou")
    assert classical_iou["median"] < scores["iou"]["median"]  # the same held-out set, compared
    assert classical["sha256"] is None and "no training" in classical["trainingData"]
    assert classical["key"] is None


async def test_the_form_offers_what_a_job_accepts(api: Api) -> None:
    """Every default the query gives is accepted by segmentImages, and every bound it states is kept."""
    owner = await api.user("owner")
    project_id = await api.project(owner)
    await api.upload(owner, project_id, [("a.png", png_bytes())])
    for method in (await api.ok(METHODS, owner))["methods"]:
        defaults = {p["name"]: p["default"] for p in method["parameters"]}
        accepted = await api.ok(
            SEGMENT, owner, input={"projectId": project_id, "method": method["name"], "parameters": defaults}
        )
        assert accepted["segmentImages"]["__typename"] == "JobStarted", accepted
        for parameter in method["parameters"]:
            value = _out_of_range(parameter)
            if value is None:
                continue
            given = {
                "projectId": project_id,
                "method": method["name"],
                "parameters": {parameter["name"]: value},
            }
            refused = (await api.ok(SEGMENT, owner, input=given))["segmentImages"]
            assert refused["field"] == "parameters", (parameter, refused)
            assert f"{parameter['name']} must be" in refused["message"]


async def test_methods_need_a_login(api: Api) -> None:
    body = await api.gql("{ methods { name } }")
    assert body["data"] is None and "log in" in body["errors"][0]["message"]


_DESCRIBE_WITHOUT_TORCH = """
import sys
sys.modules['torch'] = None  # as on a lab server without it
from cluster import describe_methods
methods = {m.name: m for m in describe_methods()}
assert methods['resunet'].models[0].version and not methods['resunet'].available, methods
assert methods['classical'].default
heavy = {'torch', 'safetensors'}
loaded = [n for n in sys.modules if n.split('.')[0] in heavy and sys.modules[n] is not None]
assert not loaded, loaded
"""


def test_a_server_without_torch_describes_the_methods_from_their_cards() -> None:
    """The model card is read without torch; the ResUNet is shown but not offered as the default."""
    result = subprocess.run(
        [sys.executable, "-c", _DESCRIBE_WITHOUT_TORCH], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
