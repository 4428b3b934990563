"""The review bar in a real window over a real offline server, used by keyboard alone: next and previous
(PageDown/PageUp, Alt+Right/Alt+Left), accept (A), needs fix (F) and reject (R) with a comment typed in
the box, each verdict stored with the version shown and followed by the next image; napari's canvas, which
has the focus, never sees those keys; a stale verdict says so and offers to look again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari.components import ViewerModel
from napari.qt import QtViewer
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from tests.workbench.qt.conftest import Run, screenshot, shown
from tests.workbench.qt.windows import until
from tests.workbench.reviewed_project import REVIEW, graphql, reviewed_project, save, spheroids_of
from workbench.qt.qt_review_bar import QtReviewBar
from workbench.review_walk import STALE_MESSAGE, ReviewWalk, WalkFilter
from workbench.tasks import Tasks
from workbench.workspace import Workspace


class _Page:
    """The review page as the bar sees it: opens what the bar asks for and tells it what it shows."""

    def __init__(self, bar: QtReviewBar) -> None:
        self.opened: list[int] = []
        self._bar = bar
        bar.sig_image_requested.connect(self._open)

    def _open(self, image_id: int) -> None:
        self.opened.append(image_id)
        self._bar.show_image(image_id, 1)


def _canvas() -> tuple[QtViewer, Any]:
    """A napari canvas holding a shapes layer (whose own keys include A, F and R)."""
    viewer = QtViewer(ViewerModel())
    layer = viewer.viewer.add_shapes([[[10, 10], [10, 60], [60, 60], [60, 10]]], name="outlines")
    return viewer, layer


def _window(viewer: QtViewer, bar: QtReviewBar) -> QWidget:
    """The bar under the canvas, in one window."""
    window = QWidget()
    layout = QVBoxLayout(window)
    layout.addWidget(viewer, 1)
    layout.addWidget(bar)
    window.resize(1100, 620)
    return window


def _stored(run: Run, workspace: Workspace, image_id: int) -> dict[str, Any]:
    return run(graphql(workspace, REVIEW, i=image_id))["image"]  # type: ignore[no-any-return]


def test_the_whole_review_flow_by_keyboard_alone(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    viewer, layer = _canvas()  # first: napari takes seconds to start, which the server would wait out
    project = run(reviewed_project(workspace, tmp_path / "images"))
    ids = project.image_ids
    walk = ReviewWalk(workspace, project.id, image_filter={"status": ["DONE"]})
    bar = QtReviewBar(walk, tasks)
    page = _Page(bar)
    window = _window(viewer, bar)
    qtbot.add_widget(window)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    canvas = viewer.canvas.native
    canvas.setFocus()

    def press(key: Qt.Key, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        qtbot.keyClick(QApplication.focusWidget() or canvas, key, modifier)

    def settle(what: str) -> None:
        run(until(lambda: bar._running is None, 30, what))

    bar.show_image(ids[0], 1)  # the page opened the first image from the gallery
    settle("the walk to find the image")
    assert bar.position.text() == "1 of 4"
    press(Qt.Key.Key_E)  # napari's own key reaches the canvas: ellipse mode
    assert layer.mode == "add_ellipse"

    press(Qt.Key.Key_PageDown)
    settle("the next image")
    assert page.opened == [ids[1]] and bar.position.text() == "2 of 4"

    press(Qt.Key.Key_A)  # accept; the walk goes on to the next image
    settle("the verdict")
    assert _stored(run, workspace, ids[1])["reviewHistory"] == [
        {"status": "ACCEPTED", "comment": None, "version": 1}
    ]
    assert page.opened == [ids[1], ids[2]] and bar.position.text() == "3 of 4"
    assert layer.mode == "add_ellipse"  # napari's A (and R below) never reached the canvas

    press(Qt.Key.Key_F)  # needs fix: no comment yet, so the cursor goes to the comment box
    assert QApplication.focusWidget() is bar.comment
    assert "needs a comment" in bar.message.text()
    assert _stored(run, workspace, ids[2])["reviewHistory"] == []
    qtbot.keyClicks(bar.comment, "far from the rim, redraw")  # a, f and r typed as text, not verdicts
    assert page.opened == [ids[1], ids[2]]
    press(Qt.Key.Key_Return)
    settle("the verdict with its comment")
    assert _stored(run, workspace, ids[2])["reviewHistory"] == [
        {"status": "NEEDS_FIX", "comment": "far from the rim, redraw", "version": 1}
    ]
    assert page.opened[-1] == ids[3] and bar.position.text() == "4 of 4"
    assert QApplication.focusWidget() is canvas and bar.comment.text() == ""

    press(Qt.Key.Key_R)
    qtbot.keyClicks(bar.comment, "out of focus")
    press(Qt.Key.Key_Return)
    settle("the rejection")
    assert _stored(run, workspace, ids[3])["reviewStatus"] == "REJECTED"
    assert "last image of the walk" in bar.message.text()
    assert layer.mode == "add_ellipse"
    screenshot(window, "review_bar_after_walk")

    press(Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    settle("the previous image")
    assert page.opened[-1] == ids[2] and bar.position.text() == "3 of 4 · needs fix"
    press(Qt.Key.Key_PageUp)
    settle("the previous image")
    assert page.opened[-1] == ids[1] and bar.position.text() == "2 of 4 · accepted"
    press(Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    settle("the next image")
    assert page.opened[-1] == ids[2]
    walk.close()
    viewer.close()


def test_a_stale_verdict_is_explained_and_the_walk_filter_narrows_the_walk(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project = run(reviewed_project(workspace, tmp_path / "images"))
    ids = project.image_ids
    walk = ReviewWalk(workspace, project.id)
    bar = QtReviewBar(walk, tasks)
    page = _Page(bar)
    shown(qtbot, bar, 1000, 80)
    bar.show_image(ids[1], 1)
    run(until(lambda: bar._running is None, 30, "the walk"))
    run(save(workspace, ids[1], 1, spheroids_of(9)))  # a colleague saves version 2 meanwhile

    bar.verdict_buttons[next(iter(bar.verdict_buttons))].click()  # Accept
    run(until(lambda: bar._running is None, 30, "the verdict"))
    assert bar.message.text() == STALE_MESSAGE and bar.look_again.isVisible()
    assert _stored(run, workspace, ids[1])["reviewStatus"] == "UNREVIEWED"
    assert page.opened == []
    screenshot(bar, "review_bar_stale")
    bar.look_again.click()
    assert page.opened == [ids[1]] and not bar.look_again.isVisible()

    run(graphql(workspace, "mutation($i: Int!) { setReview(images: [{imageId: $i, version: 1}], "
                "status: ACCEPTED) { __typename } }", i=ids[0]))  # fmt: skip
    bar.walk_box.setCurrentIndex(bar.walk_box.findData(WalkFilter.UNREVIEWED.name))
    bar.walk_box.activated.emit(bar.walk_box.currentIndex())
    run(until(lambda: bar._running is None, 30, "the new walk"))
    assert bar.position.text() == "1 of 4 unreviewed"  # well-00 was accepted: well-01 is first now
    bar.next_button.click()
    run(until(lambda: bar._running is None, 30, "the next image"))
    assert page.opened[-1] == ids[2] and bar.position.text() == "2 of 4 unreviewed"

    bar.set_walk(ReviewWalk(workspace, project.id, order="NAME_DESC"))  # the gallery's order changed
    run(until(lambda: bar._running is None, 30, "the walk in the new order"))
    assert bar.position.text() == "3 of 5" and bar.walk.current is not None
    assert bar.walk.current.image_id == ids[2]  # still on the image shown
    bar.walk.close()
