"""The review page in the whole window: Enter on an image in the gallery opens it with its outlines, an
edit made there reaches the server, and Esc returns to the gallery where it was left."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tests.workbench.qt.conftest import Run
from tests.workbench.qt.windows import close, options_in, settings_in, shot, until
from tests.workbench.review_support import HEIGHT, SHAPES, WIDTH, disc, plate_png, segmented_image, stored
from workbench.api import LabClient
from workbench.qt.qt_main_window import QtMainWindow
from workbench.uploads import import_files

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

    assert window.activity_dock.isVisible()  # beside the gallery, as the workspace opened
    qtbot.keyClick(gallery.view, Qt.Key.Key_Return)
    page = window.review
    assert window.pages.currentWidget() is page
    run(until(lambda: page.session.image is not None and len(page.canvas.layers.lines) == len(SHAPES), 60))
    assert page.session.image is not None and page.session.image.id == image_id
    run(shot(window, "review-page-in-window"))
    # the canvas has the window's width: the activity dock does not narrow it
    assert not window.activity_dock.isVisible() and not window.cluster_dock.isVisible()
    assert page.width() > 0.95 * window.width()

    page.canvas.draw_spheroid(disc(420, 50, 20))
    run(until(lambda: not window.saver.pending and not page.session.unsaved, 30, "the edit saved"))
    assert len(run(stored(workspace.client, image_id))[1]) == len(SHAPES) + 1

    page.canvas.qt_viewer.canvas.native.setFocus()
    qtbot.keyClick(page.canvas.qt_viewer.canvas.native, Qt.Key.Key_Escape)
    assert window.pages.currentWidget() is window._views["splitter"]
    assert gallery.current_image_id() == image_id  # where it was left
    assert window.activity_dock.isVisible() and not window.cluster_dock.isVisible()  # as they were
    run(shot(window, "review-page-back-to-gallery"))


async def _second_image(client: LabClient, project_id: int, folder: Path) -> int:
    """Another segmented image in ``project_id`` (other pixels: an import skips a file it holds)."""
    (folder / "plate-2.png").write_bytes(plate_png(WIDTH, HEIGHT - 10))
    (imported,) = await import_files(client, project_id, [folder / "plate-2.png"])
    assert imported.image_id is not None
    changes = {"upsert": SHAPES[:2], "delete": []}
    await client.call("EditSegmentation", imageId=imported.image_id, baseVersion=0, changes=changes)
    return imported.image_id


async def _verdict(client: LabClient, image_id: int) -> tuple[str, str | None]:
    found = (await client.call("CanvasImage", imageId=image_id, previewWidth=256))["image"]
    return found["reviewStatus"], found["reviewComment"]


async def _verdict_once_given(client: LabClient, image_id: int) -> tuple[str, str | None]:
    for _ in range(150):
        verdict = await _verdict(client, image_id)
        if verdict[0] != "UNREVIEWED":
            return verdict
        await asyncio.sleep(0.2)
    raise AssertionError(f"no verdict stored for image {image_id}")


def test_a_plate_is_reviewed_by_keyboard_with_its_measurements_and_save_status_on_the_page(
    qtbot: QtBot, run: Run, window: QtMainWindow, tmp_path: Path
) -> None:
    qtbot.keyClick(window.start_screen.offline_button, Qt.Key.Key_Return)
    run(until(lambda: window.workspace is not None, 80, "the offline workspace"), 90)
    workspace = window.workspace
    assert workspace is not None
    project_id, first = run(segmented_image(workspace.client, tmp_path / "files"))
    second = run(_second_image(workspace.client, project_id, tmp_path / "files"))
    window.projects.reload()
    run(until(lambda: any(p.id == project_id for p in window.projects.projects.items), 30, "the project"))
    window._on_projects_opened(project_id, "Review")
    gallery = window.gallery
    run(until(lambda: gallery.model.rowCount() == 2, 30, "both images in the gallery"))
    gallery.set_current_row(0)
    gallery.view.setFocus()
    qtbot.keyClick(gallery.view, Qt.Key.Key_Return)
    page = window.review
    canvas = page.canvas.qt_viewer.canvas.native

    def showing(image_id: int) -> bool:
        return page.session.image is not None and page.session.image.id == image_id

    opened_first = gallery.current_image_id()
    run(until(lambda: showing(opened_first) and page.review_bar is not None, 60, "the first image"))
    bar = page.review_bar
    assert bar is not None
    run(until(lambda: bar.position.text().startswith("1 of 2"), 30, "the bar's position"))
    rows = len(run(stored(workspace.client, opened_first))[1])
    model = page.measurements.table.model()
    run(until(lambda: model.rowCount() == rows, 30, "every spheroid measured"))
    assert "version 1  ·  unreviewed" in page.title.text()
    page.canvas.draw_spheroid(disc(440, 40, 15))
    run(until(lambda: page.save_status.text.text() == "All edits saved", 30, "the save status"))
    saved_version = run(stored(workspace.client, opened_first))[0]
    assert saved_version > 1
    run(until(lambda: f"version {saved_version}  ·" in page.title.text(), 10, "the header's new version"))
    assert "pixel size unknown" in page.title.text()
    page.measurements.pixel_size.setFocus()
    page.measurements.pixel_size.selectAll()
    qtbot.keyClicks(page.measurements.pixel_size, "0.65")
    qtbot.keyClick(page.measurements.pixel_size, Qt.Key.Key_Return)
    run(until(lambda: "0.65 µm/px" in page.title.text(), 30, "the header's pixel size"))
    run(shot(window, "review-page-measurements-and-bar"))

    window.activateWindow()  # the review keys are the window's shortcuts: Xvfb has no window manager
    run(until(window.isActiveWindow, 10, "the window active"))
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_A)  # accept: stored, and on to the next image
    other = second if opened_first == first else first
    run(until(lambda: showing(other), 60, "the next image after accepting"))
    assert run(_verdict(workspace.client, opened_first)) == ("ACCEPTED", None)
    run(until(lambda: bar.position.text().startswith("2 of 2"), 30, "the bar's position"))

    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_F)  # needs fix: asks for the comment first
    run(until(lambda: bar.comment.hasFocus(), 10, "the comment box focused"))
    qtbot.keyClicks(bar.comment, "rim missed at the top")
    qtbot.keyClick(bar.comment, Qt.Key.Key_Return)
    assert run(_verdict_once_given(workspace.client, other)) == ("NEEDS_FIX", "rim missed at the top")
    # the last image of the walk: the page stays on it and its header says the verdict
    run(until(lambda: page.title.text().endswith("·  needs fix"), 10, "the header's verdict"))
    assert page.title.toolTip() == "Review comment: rim missed at the top"

    page.side_tabs.setCurrentWidget(page.plots)
    run(until(lambda: page.plots.data is not None, 60, "the project's plots"))
    run(shot(window, "review-page-project-plots"))

    # a point of the scatter clicked asks for its spheroid: the page opens that image with it selected
    spheroid_id = min(run(stored(workspace.client, opened_first))[1])
    page.plots.sig_spheroid_requested.emit(opened_first, spheroid_id)
    run(until(lambda: showing(opened_first), 60, "the plotted spheroid's image"))
    run(until(lambda: page.session.selection == {spheroid_id}, 10, "the plotted spheroid selected"))
