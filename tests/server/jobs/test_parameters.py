"""segmentImages checks a method's parameters before it creates a job, and keeps the workers' settings
(weights file, device, precision, threads, batch size) out of users' reach."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from server.db.models import Job
from tests.server.conftest import Api, png_bytes

pytestmark = pytest.mark.anyio

SEGMENT = """mutation($input: SegmentImagesInput!) { segmentImages(input: $input) { __typename
  ... on JobStarted { job { id method parameters } } ... on InputError { field message } } }"""


async def _jobs_stored(api: Api) -> int:
    async with api.services.db() as db:
        return int(await db.scalar(select(func.count()).select_from(Job)) or 0)


async def test_bad_parameters_are_an_input_error_and_create_no_job(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    await api.upload(owner, project_id, [("a.png", png_bytes())])

    async def segment(method: str, parameters: Any) -> dict[str, Any]:
        given = {"projectId": project_id, "method": method, "parameters": parameters}
        return (await api.ok(SEGMENT, owner, input=given))["segmentImages"]  # type: ignore[no-any-return]

    refusals = [
        ("resunet", {"weights": "/etc/passwd"}, "weights cannot be set here"),
        ("resunet", {"device": "cuda:3"}, "device cannot be set here"),
        ("resunet", {"threads": 64, "threshold": 0.5}, "threads cannot be set here"),
        ("resunet", {"batch_size": 512}, "batch_size cannot be set here"),
        ("resunet", {"thresold": 0.5}, "unknown parameter 'thresold'; known parameters: max_downscale, "),
        ("resunet", {"threshold": "0.5"}, "threshold must be a number, not '0.5'"),
        ("resunet", {"threshold": 2}, "threshold must be between 0 and 1, not 2.0"),
        ("classical", {"split_touching": "yes"}, "split_touching must be true or false, not 'yes'"),
        ("classical", {"working_size": 8}, "working_size must be within 64..8192, not 8"),
        ("classical", [], "give a mapping of parameter names to values, not list"),
    ]
    for method, parameters, message in refusals:
        refused = await segment(method, parameters)
        assert refused["__typename"] == "InputError" and refused["field"] == "parameters", refused
        assert refused["message"].startswith(f"bad parameters for method '{method}': {message}"), refused
    assert await _jobs_stored(api) == 0


async def test_good_parameters_are_stored_with_the_job(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    await api.upload(owner, project_id, [("a.png", png_bytes())])
    given = {
        "projectId": project_id,
        "method": "resunet",
        "parameters": {"threshold": 0.6, "max_downscale": 4},
    }
    started = (await api.ok(SEGMENT, owner, input=given))["segmentImages"]
    assert started["__typename"] == "JobStarted"
    assert started["job"]["parameters"] == {"max_downscale": 4.0, "threshold": 0.6}
    assert await _jobs_stored(api) == 1
