"""The method form's model against the real server app: the methods with their parameters and bounds as
the server declares them, a refusal mapped to the field it names, and a job's progress in one line."""

from __future__ import annotations

import pytest

from server.app import create_app
from spheroseg_testing import free_port, serve
from tests.server.conftest import Api
from workbench.api import ApiError, LabClient
from workbench.jobs import JobState, lost_line, progress_line, start_segmentation
from workbench.methods import load_methods, refused_field

pytestmark = pytest.mark.anyio


async def test_methods_come_with_defaults_and_bounds_and_a_refusal_names_its_field(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    async with (
        serve(create_app(services=api.services), free_port()) as url,
        LabClient(url, token=owner) as client,
    ):
        methods = {method.name: method for method in await load_methods(client)}
        with pytest.raises(ApiError) as refused:
            await start_segmentation(
                client, project_id, method="resunet", parameters={"threshold": 0.0, "max_downscale": 8.0}
            )
        with pytest.raises(ApiError) as unknown:
            await start_segmentation(client, project_id, method="magic")

    classical = methods["classical"].defaults()
    assert classical["working_size"] == 512 and classical["split_touching"] is True
    threshold = {p.name: p for p in methods["resunet"].parameters}["threshold"]
    assert (threshold.minimum, threshold.maximum, threshold.above, threshold.below) == (0, 1, True, True)
    assert threshold.bounds == "> 0 and < 1" and threshold.label == "Threshold"
    assert methods["classical"].model is not None and methods["classical"].model.name == "classical"
    names = [p.name for p in methods["resunet"].parameters]
    assert refused_field(refused.value, names) == "threshold"
    assert refused_field(unknown.value, names) == "method"


def test_a_job_in_one_line() -> None:
    running = JobState(1, "RUNNING", 120, 36, 1, 0, 30.8, 2.4, None, "well_B3.tif")
    line = "37 of 120 · 1 failed · 2.4 images/s · about 35 s left · last: well_B3.tif"
    assert progress_line(running) == line
    stuck = JobState(1, "RUNNING", 10, 0, 0, 0, 0.0, 0.0, "the cluster cannot be reached")
    assert progress_line(stuck) == "0 of 10 · time left unknown — the cluster cannot be reached"
    ended = JobState(1, "DONE", 3, 2, 1, 0, 100.0, 1.0, None, "speck.png")
    assert progress_line(ended) == "done: 2 of 3 images · 1 failed · last: speck.png"


def test_a_job_whose_live_connection_is_lost_shows_no_speed_or_time_left() -> None:
    running = JobState(1, "RUNNING", 120, 36, 1, 0, 30.8, 2.4, None, "well_B3.tif")
    line = "connection lost — progress resumes when the server is back (37 of 120 done when it was lost)"
    assert lost_line(running) == line
    assert lost_line(None) == "connection lost — progress resumes when the server is back"
