"""A biologist's day in the whole window, on a real offline server process, by keyboard where the window
allows it: work offline, create a project, import the bundled samples plus a corrupt file (the good ones
stored, the corrupt one listed with its reason), segment all of them with live progress, badges flipping
in the gallery, filter by name, export CSV and COCO of all images, and the files match the server's
counts. Each step is a screenshot of the window (``test-output/screens/workflow-*.png``)."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QInputDialog, QProgressBar
from pytestqt.qtbot import QtBot

from tests.workbench.qt.conftest import Run
from tests.workbench.qt.whole_window import SIZE, dialog_of, press, scene, tiles
from tests.workbench.qt.windows import close, options_in, settings_in, until
from workbench.jobs import JobState
from workbench.qt import qt_export
from workbench.qt.qt_export import QtExport
from workbench.qt.qt_import import QtImport
from workbench.qt.qt_main_window import QtMainWindow
from workbench.qt.qt_segment import QtSegment
from workbench.samples import sample_files
from workbench.tasks import TaskState

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def window(qtbot: QtBot, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[QtMainWindow]:
    settings = tmp_path / "export.ini"  # the export dialog's remembered folder, not the user's
    monkeypatch.setattr(qt_export, "_settings", lambda: QSettings(str(settings), QSettings.Format.IniFormat))
    shown = QtMainWindow(options_in(tmp_path), settings_in(tmp_path))
    shown.resize(*SIZE)
    shown.show()
    qtbot.waitExposed(shown)
    yield shown
    close(shown, run)


def _corrupt_tiff(folder: Path) -> Path:
    """A TIFF cut short, as a copy that failed half-way leaves it."""
    path = folder / "well_C4_cut_short.tif"
    path.write_bytes((sample_files()[-1]).read_bytes()[:600])
    return path


def _progress(window: QtMainWindow) -> str:
    bar = window.projects.table.cellWidget(0, 2)
    return bar.text() if isinstance(bar, QProgressBar) else ""


def test_offline_import_segment_filter_and_export_in_the_whole_window(
    qtbot: QtBot, run: Run, window: QtMainWindow, tmp_path: Path
) -> None:
    run(scene(window, "workflow-1-start"))
    assert window.start_screen.focusWidget() is window.start_screen.offline_button
    qtbot.keyClick(window.start_screen.offline_button, Qt.Key.Key_Return)  # Work offline, by Enter
    run(until(lambda: window.workspace is not None, 80, "the offline workspace"), 90)
    run(until(lambda: not window.banner.isVisible(), 30, "the live connection"))

    # a new project: Ctrl+N in the projects list, its name typed, Enter; Enter again opens it
    window.projects.table.setFocus()
    run(press(qtbot, window, Qt.Key.Key_N, CTRL))
    asking = window.projects.dialog
    assert isinstance(asking, QInputDialog) and asking.isVisible()
    qtbot.keyClicks(asking.focusWidget(), "Plate 7, day 3")
    qtbot.keyClick(asking.focusWidget(), Qt.Key.Key_Return)
    run(until(lambda: window.projects.table.rowCount() == 1, 30, "the new project"))
    qtbot.keyClick(window.projects.table, Qt.Key.Key_Return)
    assert window.current_project is not None and window.current_project[1] == "Plate 7, day 3"
    assert window.windowTitle() == "Plate 7, day 3 — SpheroSeg Workbench"
    run(until(lambda: window.gallery._position.text() == "No images yet", 30, "the empty gallery"))
    run(scene(window, "workflow-2-project-created"))
    assert window.minimumSizeHint().width() <= SIZE[0]  # the whole workspace fits a 1280-pixel screen

    # import: Ctrl+I opens the dialog; the samples and a corrupt file; Enter starts
    run(press(qtbot, window, Qt.Key.Key_I, CTRL))
    importing = run(dialog_of(window, QtImport))
    samples = sample_files()
    importing.add_paths([*samples, _corrupt_tiff(tmp_path)])
    run(scene(window, "workflow-3-import-chosen", importing))
    qtbot.keyClick(importing, Qt.Key.Key_Return)
    assert importing.task is not None
    run(until(lambda: importing.ended, 120, "the import to end"), 130)
    run(scene(window, "workflow-4-import-done", importing))
    states = {
        importing.files.topLevelItem(i).text(0): importing.files.topLevelItem(i).text(2)
        for i in range(importing.files.topLevelItemCount())
    }
    assert {states[path.name] for path in samples} == {"stored"}
    refused = states["well_C4_cut_short.tif"]
    assert refused.startswith("refused: ") and len(refused) > len("refused: ") + 10  # with its reason
    assert importing.refusals.isVisible() and "well_C4_cut_short.tif" in importing.refusals.text()
    assert importing.summary.text().startswith(f"Done: {len(samples)} stored, 0 skipped")
    qtbot.keyClick(importing, Qt.Key.Key_Escape)
    count = f"{len(samples)} images"
    run(until(lambda: window.gallery._position.text() == count, 30, "the imported images in the gallery"))
    run(until(lambda: set(tiles(window).values()) == {"NONE"}, 30, "unsegmented badges"))
    assert sorted(tiles(window)) == sorted(path.name for path in samples)
    run(scene(window, "workflow-5-imported"))

    # segment all, classical, from the toolbar's action (Ctrl+Shift+S); live progress in the dialog
    run(press(qtbot, window, Qt.Key.Key_S, CTRL | Qt.KeyboardModifier.ShiftModifier))
    segmenting = run(dialog_of(window, QtSegment))
    run(segmenting.loading.wait(), 30)
    assert segmenting.everything.isChecked() and segmenting.everything.text().endswith(f"({len(samples)})")
    segmenting.choose_method("classical")
    run(scene(window, "workflow-6-segment-form", segmenting))
    qtbot.keyClick(segmenting, Qt.Key.Key_Return)
    run(until(lambda: segmenting.job_view is not None, 60, "the job to start"))
    view = segmenting.job_view
    assert view is not None and view.task is not None
    seen: list[tuple[JobState, str, int]] = []
    shots: list[int] = []
    rows: list[str] = []

    def progressed(state: JobState) -> None:
        seen.append((state, view.line.text(), view.bar.value()))

    view.sig_progressed.connect(progressed)

    async def follow() -> None:  # screenshots while it moves, of the dialog and of the task list
        while view.task is not None and view.task.state is TaskState.RUNNING:
            if view.state is not None and 0 < view.state.done < view.state.total and not shots:
                shots.append(view.state.done)
                rows.extend(row.name.text() for row in window.qt_tasks.rows())
                await scene(window, "workflow-7-segmenting", segmenting)
                segmenting.move(window.x() + window.width(), window.y())  # the task list in view too
                await scene(window, "workflow-7b-segmenting-task-list")
            await asyncio.sleep(0.1)

    run(follow(), 300)
    run(view.task.wait(), 30)
    run(scene(window, "workflow-8-segmented", segmenting))
    assert f"Segmenting {len(samples)} images" in rows  # the task list names the job as the dialog does
    done = [state.done for state, _, _ in seen]
    assert done == sorted(done) and len(seen) >= 3 and len(set(done)) >= 2, done  # the bar moved
    assert any(f" of {len(samples)} · " in line and " left" in line for _, line, _ in seen)
    assert seen[-1][0].status == "DONE" and seen[-1][2] == len(samples)
    assert view.line.text().startswith(f"Done: {len(samples)} of {len(samples)} images")
    # the gallery was not reloaded: its badges flipped as the job's events arrived
    run(until(lambda: set(tiles(window).values()) == {"DONE"}, 60, "every badge to say segmented"))
    qtbot.keyClick(segmenting, Qt.Key.Key_Escape)
    # the projects list follows too: "6 of 6 segmented", without a reload
    run(until(lambda: _progress(window) == f"{len(samples)} of {len(samples)} segmented", 30, "the progress"))
    run(scene(window, "workflow-9-gallery-segmented"))

    # filter by name: the count narrows
    gallery = window.gallery
    gallery._name.setFocus()
    qtbot.keyClicks(gallery._name, "spheroid")
    wanted = sorted(path.name for path in samples if "spheroid" in path.name)
    assert 0 < len(wanted) < len(samples)
    run(until(lambda: gallery._position.text() == f"{len(wanted)} images", 30, "the filtered count"))
    assert sorted(tiles(window)) == wanted
    run(scene(window, "workflow-10-filtered"))

    # export CSV and COCO of all images (Ctrl+E), into a folder typed in; Enter starts
    run(press(qtbot, window, Qt.Key.Key_E, CTRL))
    exporting = run(dialog_of(window, QtExport))
    run(exporting.loading.wait(), 30)
    assert exporting.filtered.isChecked() and exporting.filtered.text().endswith(f"({len(wanted)})")
    exporting.everything.setFocus()
    qtbot.keyClick(exporting.everything, Qt.Key.Key_Space)  # all images, not only the filtered ones
    assert exporting.everything.isChecked()
    for name, box in exporting.formats.items():
        box.setChecked(name in ("CSV", "COCO"))
    destination = tmp_path / "exports"
    exporting.folder.selectAll()
    qtbot.keyClicks(exporting.folder, str(destination))
    run(scene(window, "workflow-11-export-chosen", exporting))
    qtbot.keyClick(exporting.folder, Qt.Key.Key_Return)
    assert exporting.task is not None and exporting.task.name == f"Exporting {len(samples)} images"
    run(exporting.task.wait(), 180)
    run(scene(window, "workflow-12-exported", exporting))

    result = exporting.exported
    assert result is not None and result.folder.parent == destination
    assert exporting.show_button.isVisible() and str(result.folder) in exporting.status.text()
    assert sorted(p.name for p in result.folder.iterdir()) == ["annotations.coco.json", "metrics.csv"]
    with (result.folder / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    coco = json.loads((result.folder / "annotations.coco.json").read_text())
    assert window.workspace is not None
    projects = run(window.workspace.client.call("Projects"))["projects"]
    stats = projects[0]["stats"]
    assert stats["imageCount"] == stats["segmentedImageCount"] == len(samples)
    assert len(rows) == len(coco["annotations"]) == stats["spheroidCount"] >= len(samples)  # per spheroid
    assert {row["image"] for row in rows} == {path.name for path in samples}
    assert sorted(image["file_name"] for image in coco["images"]) == sorted(p.name for p in samples)
