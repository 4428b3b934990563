"""The review page in the whole window: Enter on an image in the gallery opens it with its outlines, an
edit made there reaches the server, and Esc returns to the gallery where it was left."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tests.workbench.qt.conftest import Run
from tests.workbench.qt.windows import close, options_in, settings_in, shot, until
from tests.workbench.review_support import SHAPES, disc, segmented_image, stored
from workbench.qt.qt_main_window import QtMainWindow

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def window(qtbot: QtBot, run: Run, tmp_path: Path) -> Iterator[QtMainWindow]:
    shown = QtMainWindow(options_in(tmp_path), settings_in(tmp_path))
    shown.resize(1400, 900)
    shown.show()
    qtbot.waitExposed(shown)
    shown.activateWindow()  # shortcuts (Esc) reach only the active window
    qtbot.waitUntil(shown.isActiveWindow)
    yield shown
    close(shown, run)


def test_enter_in_the_gallery_opens_the_image_for_review_and_esc_returns(
    qtbot: QtBot, run: Run, window: QtMainWindow, tmp_path: Path
) -> None:
    qtbot.keyClick(window.start_screen.offline_button, Qt.Key.Key_Return)
    run(until(lambda: window.workspace is not None, 80, "the offline workspace"), 90)
    workspace = window.workspace
    assert workspace is not None and window.saver is not None
    project_id, image_id = run(segmented_image(workspace.client, tmp_path / "files"))
    window.projects.reload()
    run(until(lambda: any(p.id == project_id for p in window.projects.projects.items), 30, "the project"))
    window._on_projects_opened(project_id, "Review")
    gallery = window.gallery
    run(until(lambda: gallery._position.text().startswith("image 1") or gallery.model.rowCount() > 0, 30))
    gallery.set_current_row(0)
    gallery.view.setFocus()

    qtbot.keyClick(gallery.view, Qt.Key.Key_Return)
    page = window.review
    assert window.pages.currentWidget() is page
    run(until(lambda: page.session.image is not None and len(page.canvas.outlines.data) == len(SHAPES), 60))
    assert page.session.image is not None and page.session.image.id == image_id
    run(shot(window, "review-page-in-window"))

    page.canvas.draw_spheroid(disc(420, 50, 20))
    run(until(lambda: not window.saver.pending and not page.session.unsaved, 30, "the edit saved"))
    assert len(run(stored(workspace.client, image_id))[1]) == len(SHAPES) + 1

    page.canvas.qt_viewer.canvas.native.setFocus()
    qtbot.keyClick(page.canvas.qt_viewer.canvas.native, Qt.Key.Key_Escape)
    assert window.pages.currentWidget() is window._views["splitter"]
    assert gallery.current_image_id() == image_id  # where it was left
