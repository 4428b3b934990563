"""``spheroseg workbench --check`` without its window: the bundled samples imported and segmented on a real
offline server, and a report that says what passed and what did not."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.workbench.qt.conftest import offline_environment
from workbench.installation_check import CHECK_PROJECT, check_installation
from workbench.samples import SAMPLES, sample_files
from workbench.tasks import Task
from workbench.workspace import Workspace, open_offline

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]


@pytest.fixture
async def workspace(tmp_path: Path) -> AsyncIterator[Workspace]:
    opened = await open_offline(tmp_path / "data", environment=offline_environment())
    try:
        yield opened
    finally:
        await opened.close()


def _task() -> Task:
    return Task("Checking this installation", lambda changed: None)


async def test_the_check_segments_every_sample_and_passes(workspace: Workspace) -> None:
    report = await check_installation(workspace, _task())

    assert report.passed, report.lines()
    assert report.images == report.segmented == len(sample_files()) and report.failed == 0
    assert report.spheroids >= len(sample_files())  # every sample shows at least one
    assert report.methods["classical"] is True
    assert report.lines()[-1] == "Installation check passed"
    projects = (await workspace.client.call("Projects"))["projects"]
    assert [project["name"] for project in projects] == [CHECK_PROJECT]


async def test_a_sample_the_server_refuses_fails_the_check_and_says_which(
    workspace: Workspace, tmp_path: Path
) -> None:
    folder = tmp_path / "samples"
    folder.mkdir()
    shutil.copy(SAMPLES / "touching_pair.tif", folder)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG cut short

    report = await check_installation(workspace, _task(), folder)

    assert not report.passed
    assert report.problem is not None and "broken.png" in report.problem
    assert report.lines()[-1] == "Installation check FAILED"
