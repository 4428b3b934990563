"""The import dialog against a real offline server: good files stored, a corrupt one listed with the
server's reason, the same files again all skipped by hash, and a cancel that keeps what was stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from tests.server.conftest import png_bytes
from tests.server.processes import disc_png
from tests.workbench.qt.conftest import Run, offline_environment, screenshot
from workbench.jobs import count_images
from workbench.qt.qt_import import QtImport, image_files
from workbench.tasks import Tasks, TaskState
from workbench.uploads import UploadProgress
from workbench.workspace import Workspace, open_offline


def _project(run: Run, workspace: Workspace, name: str = "Plate 1") -> int:
    answer = run(workspace.client.call("CreateProject", name=name))
    project_id: int = answer["createProject"]["project"]["id"]
    return project_id


def _states(dialog: QtImport) -> dict[str, str]:
    return {
        dialog.files.topLevelItem(i).text(0): dialog.files.topLevelItem(i).text(2)
        for i in range(dialog.files.topLevelItemCount())
    }


def test_good_files_go_in_a_corrupt_one_is_refused_and_the_same_files_again_are_skipped(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    folder = tmp_path / "plate"
    folder.mkdir()
    for k in range(3):
        (folder / f"well_A{k + 1}.png").write_bytes(disc_png(seed=k))
    (folder / "notes.txt").write_text("not an image: a folder adds only its images")
    broken = tmp_path / "well_B1.PNG"
    broken.write_bytes(disc_png(seed=9)[:300])  # cut short, as a failed copy leaves it
    project_id = _project(run, workspace)

    dialog = QtImport(workspace, tasks, project_id)
    qtbot.add_widget(dialog)
    dialog.open()
    dialog.add_paths([folder])
    dropped = QMimeData()
    dropped.setUrls([QUrl.fromLocalFile(str(broken))])
    dialog.dropEvent(
        QDropEvent(
            QPointF(20, 20),
            Qt.DropAction.CopyAction,
            dropped,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
    )
    assert sorted(_states(dialog)) == ["well_A1.png", "well_A2.png", "well_A3.png", "well_B1.PNG"]
    assert set(_states(dialog).values()) == {"waiting"}
    screenshot(dialog, "import-chosen")
    seen_sending: list[str] = []
    dialog.progress.valueChanged.connect(
        lambda _: seen_sending.extend(s for s in _states(dialog).values() if s.startswith("sending"))
    )

    imported: list[list[int]] = []
    dialog.sig_imported.connect(imported.append)  # the window refreshes the gallery with these
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert dialog.task is not None and dialog.task.name == "Importing 4 files"
    assert dialog.task in tasks.running  # the window's task list shows it, with its cancel
    run(dialog.task.wait(), timeout=120)
    screenshot(dialog, "import-done")

    states = _states(dialog)
    assert [states[f"well_A{k}.png"] for k in (1, 2, 3)] == ["stored"] * 3
    assert states["well_B1.PNG"].startswith("refused: ") and len(states["well_B1.PNG"]) > len("refused: ")
    assert seen_sending and all(" of " in s for s in seen_sending)
    assert (
        dialog.summary.text().startswith("Done: 3 stored, 0 skipped") and "1 refused" in dialog.summary.text()
    )
    assert dialog.progress.value() == dialog.progress.maximum()
    assert run(count_images(workspace.client, project_id, None)) == 3
    assert len(imported) == 1 and len(set(imported[0])) == 3

    again = QtImport(workspace, tasks, project_id)
    qtbot.add_widget(again)
    again.add_paths([folder])
    again.start()
    assert again.task is not None
    run(again.task.wait(), timeout=120)
    assert all(state.startswith("skipped: already in the project as") for state in _states(again).values())
    assert run(count_images(workspace.client, project_id, None)) == 3


def test_cancel_stops_the_import_and_what_was_stored_stays(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    paths = []
    for k in range(3):
        path = tmp_path / f"large{k}.png"
        path.write_bytes(png_bytes(900, 900, seed=10 + k))  # ~2.4 MB of noise each
        paths.append(path)
    project_id = _project(run, workspace)
    dialog = QtImport(workspace, tasks, project_id)
    qtbot.add_widget(dialog)
    dialog.per_request = 1
    dialog.open()
    qtbot.mouseClick(dialog.add_files_button, Qt.MouseButton.LeftButton)
    chooser = dialog.findChild(QFileDialog)
    assert chooser is not None and chooser.isVisible()  # opened with open(): the loop keeps running
    chooser.setDirectory(str(tmp_path))
    chooser.selectFile(" ".join(f'"{path.name}"' for path in paths))
    chooser.accept()
    assert sorted(_states(dialog)) == [path.name for path in paths]
    taken: list[Path] = []

    def cancel_midway(progress: UploadProgress) -> None:
        if progress.sent_bytes > progress.total_bytes // 2 and not taken:
            taken.append(screenshot(dialog, "import-midway"))
            dialog.cancel_button.click()

    dialog.sig_progressed.connect(cancel_midway)
    dialog.start()
    assert dialog.task is not None
    run(dialog.task.wait(), timeout=120)

    assert dialog.task.state is TaskState.CANCELLED and taken
    states = list(_states(dialog).values())
    stored = states.count("stored")
    assert 1 <= stored < 3 and "not sent" in states
    assert "stopped" in dialog.summary.text().lower() and "stays" in dialog.summary.text()
    run(asyncio.sleep(0.5))  # the server may finish storing the part it had whole
    assert run(count_images(workspace.client, project_id, None)) >= stored


def test_a_too_large_and_an_unsupported_file_are_refused_with_reasons_while_the_others_go_in(
    qtbot: QtBot, run: Run, tasks: Tasks, tmp_path: Path
) -> None:
    environment = {**offline_environment(), "SPHEROSEG_MAX_UPLOAD_BYTES": "500000"}
    workspace = run(open_offline(tmp_path / "data", cache_dir=tmp_path / "cache", environment=environment))
    try:
        project_id = _project(run, workspace)
        files = {
            "well_A1.png": disc_png(seed=1),
            "huge.png": png_bytes(900, 900, seed=3),  # ~800 KB, over this server's 500 KB
            "notes.txt": b"plate layout: A1 control, A2 drug",
            "well_A2.png": disc_png(seed=2),
        }
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
        dialog = QtImport(workspace, tasks, project_id)
        qtbot.add_widget(dialog)
        dialog.open()
        dialog.add_paths([tmp_path / name for name in files])  # files named themselves are all sent
        dialog.start()
        assert dialog.task is not None
        run(dialog.task.wait(), timeout=120)
        screenshot(dialog, "import-refusals")
        states = _states(dialog)
        spelled_out = dialog.refusals.text()
        images = run(count_images(workspace.client, project_id, None))
    finally:
        run(workspace.close())

    assert states["well_A1.png"] == states["well_A2.png"] == "stored" and images == 2
    assert states["huge.png"].startswith("refused: ") and "large" in states["huge.png"]
    assert states["notes.txt"].startswith("refused: ") and len(states["notes.txt"]) > len("refused: ") + 5
    for name in ("huge.png", "notes.txt"):  # the whole reason, which the list's row may cut
        assert f"{name}: {states[name].removeprefix('refused: ')}" in spelled_out


def test_a_folder_gives_its_image_files_whatever_the_case_of_their_suffix(tmp_path: Path) -> None:
    (tmp_path / "day 2").mkdir()
    for name in ("b.TIF", "a.png", "c.Jpeg", "day 2/d.tiff", "notes.txt", "day 2/plate.xlsx"):
        (tmp_path / name).write_bytes(b"x")
    found = image_files([tmp_path, tmp_path / "notes.txt"])
    assert [str(p.relative_to(tmp_path)) for p in found] == [
        "a.png",
        "b.TIF",
        "c.Jpeg",
        "notes.txt",  # a file named itself is kept
    ]
    with_subfolders = image_files([tmp_path], subfolders=True)
    assert [str(p.relative_to(tmp_path)) for p in with_subfolders] == [
        "a.png",
        "b.TIF",
        "c.Jpeg",
        "day 2/d.tiff",
    ]


def test_a_folder_gives_its_own_images_and_names_the_subfolders_left_out_until_they_are_included(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks
) -> None:
    samples = Path(__file__).parents[3] / "resources" / "samples"
    dialog = QtImport(workspace, tasks, _project(run, workspace))
    qtbot.add_widget(dialog)
    dialog.open()
    assert not dialog.subfolders.isChecked()

    dialog.add_paths([samples])  # "Add folder…" on the samples: their six images, not truth/'s masks
    shown = [dialog.files.topLevelItem(i).toolTip(0) for i in range(dialog.files.topLevelItemCount())]
    assert len(shown) == 6 and not any("truth" in path for path in shown)
    assert dialog.left_out.isVisible() and "samples/truth" in dialog.left_out.text()
    assert dialog.summary.text().startswith("6 files")
    screenshot(dialog, "import-subfolders-left-out")

    dialog.subfolders.setChecked(True)
    dialog.add_paths([samples])  # added again with its subfolders: the masks join, nothing twice
    assert dialog.files.topLevelItemCount() == 12 and not dialog.left_out.isVisible()
