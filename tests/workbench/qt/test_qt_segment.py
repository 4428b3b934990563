"""The segment dialog and the job view against a real offline server: the method form built from the
server's methods with their defaults, a refused value shown at its field, and a job on all images
followed live to its end."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox, QWidget
from pytestqt.qtbot import QtBot

from spheroseg_testing import free_port
from tests.server.conftest import png_bytes
from tests.server.processes import disc_png
from tests.workbench.qt.conftest import Run, offline_environment, screenshot, shown
from tests.workbench.qt.windows import until
from workbench.jobs import JobDetail, JobState, job_detail, start_segmentation
from workbench.qt.qt_job_view import QtJobView
from workbench.qt.qt_segment import QtSegment
from workbench.tasks import Tasks, TaskState
from workbench.uploads import import_files
from workbench.workspace import Workspace, open_offline


def _project_with_images(
    run: Run, workspace: Workspace, tmp_path: Path, count: int = 3, size: int = 384
) -> tuple[int, list[int]]:
    project_id: int = run(workspace.client.call("CreateProject", name="Plate 1"))["createProject"]["project"][
        "id"
    ]
    paths = []
    for k in range(count):
        path = tmp_path / f"well_A{k + 1}.png"
        path.write_bytes(disc_png(seed=k, size=size))
        paths.append(path)
    results = run(import_files(workspace.client, project_id, paths))
    return project_id, [r.image_id for r in results if r.image_id is not None]


def _opened(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, project_id: int, ids: list[int] | None
) -> QtSegment:
    dialog = QtSegment(workspace, tasks, project_id, ids, None)
    qtbot.add_widget(dialog)
    dialog.open()
    run(dialog.loading.wait())
    return dialog


def test_the_form_shows_the_servers_methods_and_parameters_with_their_defaults(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project_id, ids = _project_with_images(run, workspace, tmp_path)
    dialog = _opened(qtbot, run, workspace, tasks, project_id, ids[:1])

    names = [dialog.method.itemData(i) for i in range(dialog.method.count())]
    assert set(names) == {"classical", "resunet"} and "(default)" in dialog.method.itemText(0)
    assert dialog.selected.isChecked() and dialog.selected.text() == "&Selected images (1)"
    assert not dialog.filtered.isEnabled() and dialog.everything.text() == "&All images in the project (3)"
    dialog.choose_method("classical")
    form = dialog.form
    assert form is not None and form.method.name == "classical"
    working_size = form.fields["working_size"]
    assert isinstance(working_size, QSpinBox)
    assert (working_size.value(), working_size.minimum(), working_size.maximum()) == (512, 64, 8192)
    contrast = form.fields["min_contrast"]
    assert isinstance(contrast, QDoubleSpinBox) and contrast.value() == 0.08 and contrast.maximum() == 1
    split = form.fields["split_touching"]
    assert isinstance(split, QCheckBox) and split.isChecked()
    assert "Long side" in working_size.toolTip() and "classical 1.1" in dialog.model.text()
    working_size.setValue(1024)
    dialog.reset_button.click()
    assert working_size.value() == 512
    screenshot(dialog, "segment-dialog")

    # the ResUNet's shipped models: the newest by default, the first one kept for repeating old results
    dialog.choose_method("resunet")
    form = dialog.form
    assert form is not None and form.method.name == "resunet"
    model = form.fields["model"]
    assert isinstance(model, QComboBox)
    assert [model.itemText(i) for i in range(model.count())] == ["resunet-v2", "resunet-v1"]
    assert model.currentText() == "resunet-v2" and "Model resunet 2.2" in dialog.model.text()
    model.setCurrentIndex(1)
    assert "Model resunet 1.1, made 2026-12-04" in dialog.model.text()
    assert form.values()["model"] == "resunet-v1"
    screenshot(dialog, "segment-dialog-first-model")
    dialog.reset_button.click()
    assert model.currentText() == "resunet-v2" and "Model resunet 2.2" in dialog.model.text()

    filtered = QtSegment(workspace, tasks, project_id, None, {"nameContains": "a2"})
    qtbot.add_widget(filtered)
    run(filtered.loading.wait())
    assert filtered.filtered.isChecked() and filtered.filtered.text() == "&Filtered images (1)"
    assert not filtered.selected.isEnabled() and "none selected" in filtered.selected.text()


def test_a_refused_value_is_shown_at_its_field(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project_id, _ = _project_with_images(run, workspace, tmp_path, count=1)
    dialog = _opened(qtbot, run, workspace, tasks, project_id, None)
    dialog.choose_method("resunet")
    form = dialog.form
    assert form is not None
    threshold = form.fields["threshold"]
    assert isinstance(threshold, QDoubleSpinBox)
    threshold.setFocus()
    threshold.selectAll()
    qtbot.keyClicks(threshold, "0")  # the form allows 0; the server wants more than 0
    qtbot.keyClick(threshold, Qt.Key.Key_Return)  # Enter starts, as the default button
    assert dialog.starting is not None
    run(dialog.starting.wait())

    error = form.errors["threshold"]
    assert error.isVisibleTo(dialog) and "threshold" in error.text() and "0" in error.text()
    assert not any(label.isVisibleTo(dialog) for name, label in form.errors.items() if name != "threshold")
    assert dialog.job_view is None and dialog.start_button.isEnabled()
    screenshot(dialog, "segment-refused")


def test_a_job_on_all_images_is_followed_live_to_its_end(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project_id, ids = _project_with_images(run, workspace, tmp_path)
    dialog = _opened(qtbot, run, workspace, tasks, project_id, ids[:1])
    dialog.choose_method("classical")
    dialog.everything.setChecked(True)
    dialog.start_button.click()
    assert dialog.starting is not None
    run(dialog.starting.wait())
    view = dialog.job_view
    assert view is not None and view.task is not None
    states: list[JobState] = []
    lines: list[str] = []
    ended: list[JobDetail] = []

    def seen(state: JobState) -> None:
        states.append(state)
        lines.append(view.line.text())
        if 0 < state.done < state.total and not any(0 < s.done < s.total for s in states[:-1]):
            screenshot(dialog, "job-running")

    view.sig_progressed.connect(seen)
    view.sig_ended.connect(ended.append)
    assert view.task in tasks.running
    run(view.task.wait(), timeout=180)
    screenshot(dialog, "job-done")

    assert view.task.name == "Segmenting 3 images" and dialog.close_button.text() == "&Close"
    assert states[-1].status == "DONE" and (states[-1].done, states[-1].total) == (3, 3)
    done = [s.done for s in states]
    assert done == sorted(done) and len(set(done)) >= 2  # the bar moved while the view was shown
    assert any(" of 3 · " in line and " left" in line for line in lines)  # a count and the time left
    assert lines[-1].startswith("Done: 3 of 3 images") and "last: well_A" in lines[-1]
    assert view.bar.value() == view.bar.maximum() == 3
    assert ended and ended[0].failures == () and not view.retry_button.isVisibleTo(dialog)
    statuses = run(
        workspace.client.call(
            "GalleryPage", projectId=project_id, first=10, after=None, filter=None, orderBy="NAME_ASC"
        )
    )
    assert [e["node"]["segmentationStatus"] for e in statuses["project"]["images"]["edges"]] == ["DONE"] * 3


def test_failed_images_are_listed_with_their_reasons_and_retried_exactly(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project_id, _ = _project_with_images(run, workspace, tmp_path, count=2)
    tiny = tmp_path / "speck.png"
    tiny.write_bytes(png_bytes(4, 4, seed=5))  # a valid image, too small for any segmenter
    (speck,) = run(import_files(workspace.client, project_id, [tiny]))
    job_id = run(start_segmentation(workspace.client, project_id, method="classical"))
    view = QtJobView(workspace, tasks, job_id)  # on its own, as a dock holds it
    shown(qtbot, view, 520, 300)
    retried: list[int] = []
    view.sig_retried.connect(retried.append)
    assert view.task is not None
    run(view.task.wait(), timeout=180)
    screenshot(view, "job-failures")

    assert view.state is not None and (view.state.done, view.state.failed) == (2, 1)
    assert view.failures.topLevelItemCount() == 1
    row = view.failures.topLevelItem(0)
    assert row.text(0) == "speck.png" and "Import the full-size image" in row.text(1)
    # the reason is read whole, wrapped in its row, not cut off at the view's edge
    assert view.failures.visualItemRect(row).height() >= 2 * view.failures.fontMetrics().height()
    assert view.retry_button.isVisible()

    view.retry_button.click()
    run(until(lambda: bool(retried), 50, "the retried job"))
    assert view.task is not None and view.job_id == retried[0] != job_id
    run(view.task.wait(), timeout=180)
    assert view.task.name == "Segmenting 1 image"  # exactly the failed one, not the whole project
    detail = run(job_detail(workspace.client, view.job_id))
    assert [f.image_id for f in detail.failures] == [speck.image_id]


def test_an_unreachable_cluster_is_shown_as_the_jobs_problem_and_cancel_stops_the_job(
    qtbot: QtBot, run: Run, tasks: Tasks, tmp_path: Path
) -> None:
    environment = {
        **offline_environment(),
        "SPHEROSEG_SCHEDULER": f"tcp://127.0.0.1:{free_port()}",  # nothing listens there
        "SPHEROSEG_CLUSTER_CONNECT_TIMEOUT": "1",
    }
    workspace = run(open_offline(tmp_path / "data", cache_dir=tmp_path / "cache", environment=environment))
    try:
        project_id, _ = _project_with_images(run, workspace, tmp_path, count=2)
        job_id = run(start_segmentation(workspace.client, project_id, method="classical"))
        view = QtJobView(workspace, tasks, job_id)
        shown(qtbot, view, 520, 220)
        run(until(lambda: view.problem.isVisible(), 110, "the cluster's problem"), timeout=120)
        screenshot(view, "job-problem")
        problem = view.problem.text()
        assert view.task is not None
        listed = view.task.detail  # the window's task list shows it too
        view.cancel_button.click()
        run(view.task.wait(), timeout=60)
        final = view.state
    finally:
        run(workspace.close())

    assert problem.startswith("Not moving: ") and "tried again" in problem
    assert listed.endswith(problem.removeprefix("Not moving: "))
    assert final is not None and final.status == "CANCELLED" and final.cancelled == 2
    assert view.line.text().startswith("Cancelled: 0 of 2 images")


def test_closing_the_view_leaves_the_job_running_to_its_end_in_the_task_list(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project_id, _ = _project_with_images(run, workspace, tmp_path, count=2)
    job_id = run(start_segmentation(workspace.client, project_id, method="classical"))
    window = QWidget()  # the main window stays; only its dock's view goes
    qtbot.add_widget(window)
    view = QtJobView(workspace, tasks, job_id, window)
    window.show()
    task = view.task
    assert task is not None
    view.sig_progressed.connect(lambda state: shiboken6.delete(view))  # the dock is closed at once

    run(task.wait(), timeout=180)

    assert not shiboken6.isValid(view)
    assert task.state is TaskState.DONE and task.detail.startswith("done: 2 of 2 images")
    assert tasks.notices.items == []  # nothing went wrong for the user to read


def test_while_the_server_is_away_the_view_says_progress_is_unknown_and_resumes_once_it_is_back(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project_id, _ = _project_with_images(run, workspace, tmp_path, count=6, size=1024)
    job_id = run(start_segmentation(workspace.client, project_id, method="classical"))
    view = QtJobView(workspace, tasks, job_id)
    shown(qtbot, view, 520, 220)
    run(until(lambda: view.state is not None, 60, "the job's first state"))
    assert view.state is not None and not view.state.ended, "the job ended before the kill: bigger images"
    assert workspace.offline is not None and workspace.started is not None and view.task is not None

    os.kill(workspace.started.pid, signal.SIGKILL)
    run(until(lambda: view.line.text().startswith("Connection lost"), 30, "the view to say so"))
    screenshot(view, "job-connection-lost")
    line = view.line.text()
    assert "progress resumes when the server is back" in line
    assert " left" not in line and "images/s" not in line  # no estimate from before the loss
    assert not view.bar.isEnabled() and view.bar.text() == "progress unknown"
    assert view.task.detail.startswith("connection lost")  # the task list says the same

    workspace.started = run(workspace.offline.restart(workspace.offline.environment), 90)
    run(until(lambda: view.bar.isEnabled(), 60, "the progress to come back"))
    assert not view.line.text().startswith("Connection lost")
    run(view.task.wait(), timeout=300)
    screenshot(view, "job-connection-back")
    assert view.state is not None and (view.state.status, view.state.done) == ("DONE", 6)
    assert view.line.text().startswith("Done: 6 of 6 images")
