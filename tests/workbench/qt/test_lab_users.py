"""Two people on one lab server, each in a window of their own (a real ``spheroseg server serve`` process,
two accounts made by ``spheroseg server create-user``, a project shared with a role): what Ana imports and
segments arrives in Bea's gallery and projects list as it happens, with no reload."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QProgressBar
from pytestqt.qtbot import QtBot

from spheroseg_testing.ports import free_port
from spheroseg_testing.server import SPHEROSEG
from tests.server.processes import disc_png
from tests.workbench.qt.conftest import Run
from tests.workbench.qt.test_lab_connection import PASSWORD, LabServer
from tests.workbench.qt.whole_window import SIZE, dialog_of, press, scene, tiles
from tests.workbench.qt.windows import close, options_in, settings_in, until
from workbench.qt.qt_import import QtImport
from workbench.qt.qt_main_window import QtMainWindow
from workbench.qt.qt_segment import QtSegment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NAMES = ["day3_A1.png", "day3_A2.png", "day3_A3.png"]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabServer]:
    server = LabServer(tmp_path / "lab", free_port())
    server.folder.mkdir()
    environment = server.environment()
    subprocess.run([SPHEROSEG, "server", "migrate"], env=environment, check=True, capture_output=True)
    for username in ("ana", "bea"):
        subprocess.run(
            [SPHEROSEG, "server", "create-user", username, "--password-stdin"],
            env=environment,
            input=PASSWORD.encode(),
            check=True,
            capture_output=True,
        )
    server.start()
    yield server
    assert server.process is not None
    server.process.terminate()
    server.process.wait(30)


def _window(qtbot: QtBot, run: Run, folder: Path, lab: LabServer, username: str) -> QtMainWindow:
    """A window of its own (settings, saved sessions), signed in as ``username`` by typing, then Enter."""
    folder.mkdir()
    window = QtMainWindow(options_in(folder, server_url=lab.url), settings_in(folder))
    window.resize(*SIZE)
    window.show()
    qtbot.waitExposed(window)
    screen = window.start_screen
    screen.username.setText(username)
    qtbot.keyClicks(screen.password, PASSWORD)
    qtbot.keyClick(screen.password, Qt.Key.Key_Return)
    run(until(lambda: window.workspace is not None, 60, f"{username}'s workspace"), 70)
    assert window.user_label.text() == f"Signed in as {username}"
    return window


def _open(qtbot: QtBot, run: Run, window: QtMainWindow, name: str) -> None:
    """The project chosen in the list and opened with Enter."""
    run(until(lambda: name in [p.name for p in window.projects.projects.items], 30, f"project {name}"))
    window.projects.select(next(p.id for p in window.projects.projects.items if p.name == name))
    qtbot.keyClick(window.projects.table, Qt.Key.Key_Return)
    assert window.current_project is not None and window.current_project[1] == name


def _progress(window: QtMainWindow) -> str:
    bar = window.projects.table.cellWidget(window.projects.table.currentRow(), 2)
    return bar.text() if isinstance(bar, QProgressBar) else ""


def test_what_one_user_imports_and_segments_arrives_live_in_the_other_users_window(
    qtbot: QtBot, run: Run, lab: LabServer, tmp_path: Path
) -> None:
    ana = _window(qtbot, run, tmp_path / "ana", lab, "ana")
    bea = _window(qtbot, run, tmp_path / "bea", lab, "bea")
    try:
        assert ana.workspace is not None
        ana.projects.table.setFocus()  # Ana makes the project: Ctrl+N, its name, Enter
        run(press(qtbot, ana, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier))
        asking = ana.projects.dialog
        assert isinstance(asking, QInputDialog)
        qtbot.keyClicks(asking.focusWidget(), "Shared plate")
        qtbot.keyClick(asking.focusWidget(), Qt.Key.Key_Return)
        run(until(lambda: ana.projects.table.rowCount() == 1, 30, "Ana's new project"))
        project_id = ana.projects.projects.items[0].id
        shared = run(
            ana.workspace.client.call("AddProjectMember", id=project_id, username="bea", role="EDITOR")
        )
        assert "bea" in str(shared)
        assert bea.projects.table.rowCount() == 0  # signed in before it was shared: F5 reads the list again
        bea.projects.table.setFocus()
        run(press(qtbot, bea, Qt.Key.Key_F5, Qt.KeyboardModifier.NoModifier))
        _open(qtbot, run, ana, "Shared plate")
        _open(qtbot, run, bea, "Shared plate")
        run(until(lambda: bea.gallery._position.text() == "No images yet", 30, "Bea's empty gallery"))
        roles = {p.name: p.my_role for p in bea.projects.projects.items}
        assert roles == {"Shared plate": "EDITOR"}
        for window in (ana, bea):
            run(until(lambda w=window: not w.banner.isVisible(), 30, "the live connection"))

        # Ana imports three images through her import dialog
        paths = []
        for seed, name in enumerate(NAMES):
            paths.append(tmp_path / name)
            paths[-1].write_bytes(disc_png(seed=seed, size=320))
        run(press(qtbot, ana, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier))
        importing = run(dialog_of(ana, QtImport))
        importing.add_paths(paths)
        qtbot.keyClick(importing, Qt.Key.Key_Return)
        run(until(lambda: importing.ended, 120, "Ana's import"), 130)
        qtbot.keyClick(importing, Qt.Key.Key_Escape)

        # ... and they appear in Bea's gallery and list, which nobody reloaded
        run(until(lambda: bea.gallery._position.text() == "3 images", 60, "the images in Bea's gallery"))
        run(until(lambda: sorted(tiles(bea)) == NAMES, 30, "Bea's tiles"))
        assert set(tiles(bea).values()) == {"NONE"}
        run(until(lambda: _progress(bea) == "0 of 3 segmented", 30, "Bea's project counts"))
        run(scene(bea, "lab-bea-sees-anas-import"))

        # Ana segments them all; Bea watches the badges flip
        run(
            press(
                qtbot,
                ana,
                Qt.Key.Key_S,
                Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
            )
        )
        segmenting = run(dialog_of(ana, QtSegment))
        run(segmenting.loading.wait(), 30)
        segmenting.choose_method("classical")
        qtbot.keyClick(segmenting, Qt.Key.Key_Return)
        run(until(lambda: segmenting.job_view is not None, 60, "Ana's job"))
        seen_by_bea: list[frozenset[str]] = []

        def watching() -> bool:
            statuses = frozenset(tiles(bea).values())
            if not seen_by_bea or seen_by_bea[-1] != statuses:
                seen_by_bea.append(statuses)
            return statuses == {"DONE"}

        run(until(watching, 240, "every badge in Bea's gallery to say segmented"), 250)
        run(until(lambda: _progress(bea) == "3 of 3 segmented", 30, "Bea's project progress"))
        run(scene(bea, "lab-bea-sees-anas-segmentation"))
        run(scene(ana, "lab-ana-segmented", segmenting))
        assert len(seen_by_bea) >= 2 and seen_by_bea[0] != {"DONE"}  # it changed under Bea's eyes
        assert bea.gallery._position.text() == "3 images"
        assert bea.windowTitle() == "Shared plate — SpheroSeg Workbench"
    finally:
        close(bea, run)
        close(ana, run)
