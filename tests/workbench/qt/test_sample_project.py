"""``make run``'s sample project: on the first start the bundled samples are imported into "Samples"
and segmented; the next start opens it as it is, importing and segmenting nothing again."""

from __future__ import annotations

from pathlib import Path

from tests.workbench.qt.conftest import Run
from tests.workbench.qt.windows import close, options_in, settings_in, until
from workbench.qt.qt_main_window import QtMainWindow
from workbench.samples import sample_files


def _open_samples(run: Run, tmp_path: Path) -> QtMainWindow:
    window = QtMainWindow(options_in(tmp_path, sample_project=True), settings_in(tmp_path))
    window.show()
    window.start_screen.start_offline()  # as `spheroseg workbench --sample-project` does
    run(until(lambda: window.current_project, 240, "the sample project"), 250)
    return window


def test_the_sample_project_is_made_once_then_opened_as_it_is(run: Run, tmp_path: Path) -> None:
    first = _open_samples(run, tmp_path)
    try:
        workspace = first.workspace
        assert workspace is not None
        projects = run(workspace.client.call("Projects"))["projects"]
        assert [p["name"] for p in projects] == ["Samples"]
        stats = projects[0]["stats"]
        assert stats["imageCount"] == len(sample_files()) == stats["segmentedImageCount"]
        assert first.windowTitle() == "Samples — SpheroSeg Workbench"
        assert settings_in(tmp_path).recent_projects(workspace.url) == [projects[0]["id"]]
    finally:
        close(first, run)

    second = _open_samples(run, tmp_path)
    try:
        assert second.workspace is not None
        again = run(second.workspace.client.call("Projects"))["projects"]
        assert again == projects or [p["stats"] for p in again] == [stats]  # nothing imported or redone
    finally:
        close(second, run)
