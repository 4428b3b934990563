"""The review canvas in a real window under Xvfb, against a real offline server: the image and its outlines
open, every tool changes the outlines as a user expects (and a refused edit changes nothing and says why),
undo and redo go through the same saving, and each result is on the server after the idle.

Every tool is used with real mouse and key events on napari's canvas: clicks (select, Shift+click, remove
a hole), drags (draw, slice, hole, brush, erase, moving a spheroid, a vertex in napari's direct mode) and
keys. A drag's moves are sent as Qt events that carry the held button, 10 ms apart (qtbot's own moves
carry no button, and napari takes a move at most every 5 ms). The undo test draws through the canvas's
public tool methods (points in image coordinates), as a script would."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from tests.workbench.qt.conftest import Run, screenshot
from tests.workbench.qt.windows import until
from tests.workbench.review_support import SHAPES, disc, segmented_image, stored
from workbench.journal import Journals
from workbench.qt.outline_layers import HOLE, LOW_CONFIDENCE, SAVED, UNSAVED
from workbench.qt.qt_review_page import QtReviewPage
from workbench.review import ReviewSession
from workbench.saving import Saver
from workbench.tasks import Tasks
from workbench.workspace import Workspace

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def page(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> Iterator[QtReviewPage]:
    saver = Saver(workspace.client, Journals(tmp_path / "journal", workspace.url), idle=0.2)
    session = ReviewSession(workspace, saver)
    shown = QtReviewPage(session, tasks)
    shown.resize(1100, 800)
    shown.show()
    qtbot.waitExposed(shown)
    shown.activateWindow()  # shortcuts reach only the active window
    qtbot.waitUntil(shown.isActiveWindow)
    _, image_id = run(segmented_image(workspace.client, tmp_path / "files"))
    run(shown.open_image(image_id))
    shown.image_id = image_id  # type: ignore[attr-defined]
    yield shown
    run(saver.close())
    session.close()
    shown.close_page()  # napari's viewer closed first, as the window does (its canvas holds GL state)
    shown.close()
    shown.deleteLater()
    QApplication.processEvents()


def _key_with_hole(page: QtReviewPage) -> int:
    (key,) = [key for key, outline in page.session.outlines.items() if outline.holes]
    return key


def _key_near(page: QtReviewPage, x: float, y: float) -> int:
    key = page.canvas.picker.key_at(x, y)
    assert key is not None
    return key


def _click(qtbot: QtBot, page: QtReviewPage, x: float, y: float, shift: bool = False) -> None:
    """A real click on napari's canvas at image point (x, y)."""
    native = page.canvas.qt_viewer.canvas.native
    camera = page.canvas.viewer.scene.camera
    row, column = page.canvas.world_point(x, y)
    centre_row, centre_column = camera.center[-2:]
    px = (column - centre_column) * camera.zoom + native.width() / 2
    py = (row - centre_row) * camera.zoom + native.height() / 2
    modifier = Qt.KeyboardModifier.ShiftModifier if shift else Qt.KeyboardModifier.NoModifier
    qtbot.mouseClick(native, Qt.MouseButton.LeftButton, modifier, QPoint(round(px), round(py)))


def _drag(qtbot: QtBot, page: QtReviewPage, points: list[list[float]]) -> None:
    """A real press, moves and release on napari's canvas along image points. The moves are sent as Qt
    events carrying the held button (qtbot's own carry none: vispy would read them as hovering), 10 ms
    apart (napari takes a move at most every 5 ms)."""
    native = page.canvas.qt_viewer.canvas.native
    spots = [_spot(page, x, y) for x, y in points]
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    plain = Qt.KeyboardModifier.NoModifier
    qtbot.mousePress(native, left, plain, spots[0])
    for spot in spots[1:]:
        where = QPointF(spot)
        move = QMouseEvent(QEvent.Type.MouseMove, where, native.mapToGlobal(where), none, left, plain)
        QApplication.sendEvent(native, move)
        qtbot.wait(10)
    qtbot.mouseRelease(native, left, plain, spots[-1])


def _spot(page: QtReviewPage, x: float, y: float) -> QPoint:
    native = page.canvas.qt_viewer.canvas.native
    camera = page.canvas.viewer.scene.camera
    row, column = page.canvas.world_point(x, y)
    centre_row, centre_column = camera.center[-2:]
    px = (column - centre_column) * camera.zoom + native.width() / 2
    py = (row - centre_row) * camera.zoom + native.height() / 2
    return QPoint(round(px), round(py))


def _key(
    qtbot: QtBot,
    page: QtReviewPage,
    key: Qt.Key,
    modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    """A key pressed with napari's canvas focused, as a user working on the image does."""
    native = page.canvas.qt_viewer.canvas.native
    native.setFocus()
    qtbot.keyClick(native, key, modifier)


def _on_server(run: Run, page: QtReviewPage) -> dict[int, dict[str, object]]:
    """After the idle (no Ctrl+S): the spheroids the server keeps."""

    async def saved() -> dict[int, dict[str, object]]:
        while page.session.saver.pending or page.session.unsaved:
            await asyncio.sleep(0.05)
        return (await stored(page.session.workspace.client, page.image_id))[1]  # type: ignore[attr-defined]

    return run(saved(), 30)


def _drawn_as_held(page: QtReviewPage) -> None:
    """What the canvas draws is each spheroid the session holds, ring for ring."""
    lines = page.canvas.layers.lines
    assert len(lines) == len(page.session.outlines)
    for key, outline in page.session.outlines.items():
        drawn = lines.drawn(key)
        assert len(drawn) == 1 + len(outline.holes)
        for ring, held in zip(drawn, (outline.exterior, *outline.holes), strict=True):
            np.testing.assert_allclose(ring, held, atol=1e-3)


def test_the_image_opens_with_its_outlines_and_holes(qtbot: QtBot, page: QtReviewPage) -> None:
    canvas = page.canvas
    assert len(canvas.layers.lines) == len(SHAPES)
    _drawn_as_held(page)
    holed = next(key for key, outline in page.session.outlines.items() if outline.holes)
    assert canvas.layers.lines.colour_of(holed, ring=1) == pytest.approx(HOLE)  # holes drawn distinctly
    assert canvas.layers.lines.colour_of(holed) == pytest.approx(SAVED)
    assert canvas.viewer.layers["image"].data.shape == (360, 480)
    assert "plate.png" in page.title.text() and "version 1" in page.title.text()
    canvas.viewer.cursor.position = canvas.world_point(100, 80)
    canvas._on_cursor_moved()
    assert "x 100  y 80 px" in canvas.status.text() and "value" in canvas.status.text()
    screenshot(page, "review-opened")


def test_zoomed_out_fewer_vertices_are_drawn_and_zoomed_in_every_one(page: QtReviewPage) -> None:
    canvas = page.canvas
    every = len(canvas.layers.lines.vertices)
    canvas.viewer.scene.camera.zoom = 0.05
    assert 0 < len(canvas.layers.visual.pos) < every
    assert len(canvas.layers.lines) == len(SHAPES)
    canvas.viewer.scene.camera.zoom = 4.0
    assert len(canvas.layers.visual.pos) == every


def test_clicks_select_and_the_keys_choose_tools_while_napari_keeps_off_a_f_r(
    qtbot: QtBot, page: QtReviewPage
) -> None:
    canvas = page.canvas
    big, right = _key_near(page, 260, 120), _key_near(page, 350, 120)
    _click(qtbot, page, 260, 120)
    assert page.session.selection == {big}
    assert len(canvas.selected.data) == 1  # highlighted
    _click(qtbot, page, 350, 120, shift=True)
    assert page.session.selection == {big, right}
    screenshot(page, "review-tool-select")
    _click(qtbot, page, 20, 330)  # nothing there
    assert page.session.selection == frozenset()

    _key(qtbot, page, Qt.Key.Key_S)
    assert canvas.tool == "slice" and canvas.tools.actions_by_name["slice"].isChecked()
    assert not canvas.viewer.scene.camera.mouse_pan  # a stroke, not a pan
    _key(qtbot, page, Qt.Key.Key_V)
    assert canvas.tool == "select" and canvas.viewer.scene.camera.mouse_pan
    modes = [layer.mode for layer in (canvas.outlines, canvas.selected)]
    for key in (Qt.Key.Key_A, Qt.Key.Key_F, Qt.Key.Key_R):
        _key(qtbot, page, key)
    assert canvas.tool == "select"
    assert [layer.mode for layer in (canvas.outlines, canvas.selected)] == modes  # napari's keys unbound

    _key(qtbot, page, Qt.Key.Key_F1)
    assert canvas.sheet is not None and canvas.sheet.isVisible()
    sheet = canvas.sheet.text.text()
    for key in ("Ctrl+Shift+Z", "Shift+H", "Backspace", "PageDown", "Accept", "needing a fix", "Reject"):
        assert key in sheet or key.lower() in sheet.lower()
    screenshot(canvas.sheet, "review-shortcut-sheet")


def test_slice_merge_and_delete_reach_the_server_and_a_refused_merge_changes_nothing(
    qtbot: QtBot, run: Run, page: QtReviewPage
) -> None:
    canvas = page.canvas
    holed = _key_with_hole(page)
    _key(qtbot, page, Qt.Key.Key_S)
    _drag(qtbot, page, [[100, 40], [100, 80], [100, 120], [100, 160], [100, 200]])  # through the hole
    assert len(canvas.layers.lines) == len(SHAPES) + 1
    assert canvas.message.text() == "Slice: 1 spheroid became 2 (Ctrl+Z undoes)"
    screenshot(page, "review-tool-slice")
    assert len(_on_server(run, page)) == len(SHAPES) + 1
    assert holed in page.session.outlines

    _key(qtbot, page, Qt.Key.Key_V)
    left, right = _key_near(page, 300, 270), _key_near(page, 385, 270)
    _click(qtbot, page, 300, 270)
    _click(qtbot, page, 385, 270, shift=True)
    _key(qtbot, page, Qt.Key.Key_M)
    assert canvas.message.text().endswith(": 2 spheroids became 1 (Ctrl+Z undoes)")
    assert left in page.session.outlines and right not in page.session.outlines
    assert page.session.outlines[left].polygon().area > 2 * np.pi * 42**2
    screenshot(page, "review-tool-merge")
    assert len(_on_server(run, page)) == len(SHAPES)

    before = len(canvas.layers.lines)
    page.session.select([_key_near(page, 260, 120), _key_near(page, 350, 120)])
    assert canvas.merge_selected() is None  # 10 px apart: not joined by area nobody drew
    assert "not done" in canvas.message.text() and len(canvas.layers.lines) == before
    screenshot(page, "review-merge-refused")

    page.session.select([_key_near(page, 350, 120)])
    _key(qtbot, page, Qt.Key.Key_Delete)
    assert len(canvas.layers.lines) == before - 1
    screenshot(page, "review-tool-delete")
    assert len(_on_server(run, page)) == len(SHAPES) - 1


def test_draw_holes_brush_erase_simplify_and_move(qtbot: QtBot, run: Run, page: QtReviewPage) -> None:
    canvas = page.canvas
    _key(qtbot, page, Qt.Key.Key_D)
    ring = disc(420, 50, 25, 24)
    _drag(qtbot, page, [*ring, ring[0]])
    (drawn,) = page.session.selection
    screenshot(page, "review-tool-draw")

    middle = _key_near(page, 260, 120)
    _key(qtbot, page, Qt.Key.Key_H)
    ring = disc(260, 120, 15, 16)
    _drag(qtbot, page, [*ring, ring[0]])
    assert len(page.session.outlines[middle].holes) == 1
    screenshot(page, "review-tool-add-hole")
    stored_now = _on_server(run, page)
    assert len(stored_now) == len(SHAPES) + 1
    assert [len(s["holes"]) for s in stored_now.values()].count(1) == 2  # type: ignore[arg-type]

    _key(qtbot, page, Qt.Key.Key_H, Qt.KeyboardModifier.ShiftModifier)
    assert canvas.tool == "remove_hole"
    _click(qtbot, page, 260, 120)  # inside the new hole
    assert page.session.outlines[middle].holes == ()
    screenshot(page, "review-tool-remove-hole")

    area = page.session.outlines[drawn].polygon().area
    _key(qtbot, page, Qt.Key.Key_B)
    _drag(qtbot, page, [[420, 50], [430, 50], [440, 50], [450, 50], [460, 50]])
    grown = page.session.outlines[drawn].polygon().area
    assert grown > area
    screenshot(page, "review-tool-brush")
    _key(qtbot, page, Qt.Key.Key_X)
    _drag(qtbot, page, [[420, 20], [420, 35], [420, 50], [420, 65], [420, 80]])  # cuts it in two
    assert page.session.outlines[drawn].polygon().area < grown
    screenshot(page, "review-tool-erase")

    page.session.select([middle])
    vertices = len(page.session.outlines[middle].exterior)
    _key(qtbot, page, Qt.Key.Key_L)
    assert len(page.session.outlines[middle].exterior) <= vertices
    assert "Simplify" in canvas.message.text()
    screenshot(page, "review-tool-simplify")

    _key(qtbot, page, Qt.Key.Key_V)
    x0 = page.session.outlines[middle].exterior[:, 0].min()
    _drag(qtbot, page, [[260, 120], [264, 120], [268, 120], [272, 120]])  # the selected one, dragged
    assert page.session.outlines[middle].exterior[:, 0].min() == pytest.approx(x0 + 12, abs=1)
    screenshot(page, "review-tool-move")
    stored_now = _on_server(run, page)
    server_id = page.session.outlines.server_id(middle)
    assert min(x for x, _ in stored_now[server_id]["exterior"]) == pytest.approx(x0 + 12, abs=1)  # type: ignore[union-attr]


def test_vertices_of_a_spheroid_with_a_hole_are_edited_as_separate_rings(
    qtbot: QtBot, run: Run, page: QtReviewPage
) -> None:
    canvas = page.canvas
    holed = _key_with_hole(page)
    page.session.select([holed])
    _key(qtbot, page, Qt.Key.Key_E)
    assert canvas.editing_key == holed and len(canvas.editing.data) == 2  # the exterior and the hole
    assert canvas.editing.mode == "direct"
    screenshot(page, "review-tool-edit-vertices")
    exterior = np.array(canvas.editing.data[0])
    top_row, top_column = exterior[np.argmin(exterior[:, 0])]  # napari's (row, column)
    _drag(qtbot, page, [[top_column, top_row - step] for step in (0, 5, 10, 15, 20)])  # 20 px up
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert canvas.editing_key is None and not canvas.editing.visible
    outline = page.session.outlines[holed]
    assert len(outline.holes) == 1 and outline.exterior[:, 1].min() < 120 - 60 - 10
    stored_now = _on_server(run, page)
    assert len(stored_now[holed]["holes"]) == 1  # type: ignore[arg-type]


def test_undo_and_redo_by_key_survive_tool_switches_and_are_saved(
    qtbot: QtBot, run: Run, page: QtReviewPage
) -> None:
    canvas = page.canvas
    original = {key: outline for key, outline in page.session.outlines.items()}
    _key(qtbot, page, Qt.Key.Key_S)
    canvas.slice_along([(260, 60), (260, 180)])
    _key(qtbot, page, Qt.Key.Key_D)
    canvas.draw_spheroid(disc(60, 300, 20))
    _key(qtbot, page, Qt.Key.Key_V)
    assert len(_on_server(run, page)) == len(SHAPES) + 2

    _key(qtbot, page, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    _key(qtbot, page, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert page.session.outlines.snapshot().keys() == original.keys()
    assert all(page.session.outlines[key] is outline for key, outline in original.items())
    assert len(canvas.layers.lines) == len(SHAPES)
    _drawn_as_held(page)
    assert len(_on_server(run, page)) == len(SHAPES)
    screenshot(page, "review-undone")

    _key(qtbot, page, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    _key(qtbot, page, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert len(canvas.layers.lines) == len(SHAPES) + 2
    _drawn_as_held(page)
    assert len(_on_server(run, page)) == len(SHAPES) + 2


def test_the_summary_line_follows_a_save_and_what_others_saved_meanwhile(
    qtbot: QtBot, run: Run, page: QtReviewPage
) -> None:
    canvas, client = page.canvas, page.session.workspace.client
    image_id: int = page.image_id  # type: ignore[attr-defined]
    assert canvas.message.text() == f"plate.png: {len(SHAPES)} spheroids, version 1"
    page.session.saver.idle = 30.0  # sent by Ctrl+S only
    theirs = {"upsert": [{"exterior": disc(60, 300, 20), "holes": []}], "delete": []}
    run(client.call("EditSegmentation", imageId=image_id, baseVersion=1, changes=theirs))  # someone else
    canvas.draw_spheroid(disc(440, 40, 15))
    assert canvas.message.text() == "Draw spheroid: 1 spheroid added (Ctrl+Z undoes)"

    _key(qtbot, page, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    run(until(lambda: len(page.session.outlines) == len(SHAPES) + 2, 30, "their spheroid taken in"))
    version = run(stored(client, image_id))[0]
    assert version == 3  # theirs, then ours merged onto it
    summary = f"Saved · plate.png: {len(SHAPES) + 2} spheroids, version {version}"
    run(until(lambda: canvas.message.text() == summary, 10, "the summary to follow"))
    assert f"version {version}  ·" in page.title.text()  # as the header says
    screenshot(page, "review-summary-after-save")


def test_full_resolution_on_demand_shows_the_true_values(qtbot: QtBot, run: Run, page: QtReviewPage) -> None:
    canvas = page.canvas
    _key(qtbot, page, Qt.Key.Key_O)
    run(until(lambda: canvas.full_resolution, 50, "the full-resolution image"))
    assert canvas.viewer.layers["image"].data.dtype == np.uint16
    canvas.viewer.cursor.position = canvas.world_point(20, 20)
    canvas._on_cursor_moved()
    full = page.session.full
    assert full is not None
    assert f"value {int(full[20, 20]):,}" in canvas.status.text()
    screenshot(page, "review-full-resolution")


def test_outlines_are_coloured_by_state_unsaved_until_the_server_confirms(
    qtbot: QtBot, run: Run, page: QtReviewPage
) -> None:
    canvas = page.canvas
    key = _key_near(page, 350, 120)

    def colour_of(wanted: int) -> tuple[float, ...]:
        return canvas.layers.lines.colour_of(wanted)

    assert colour_of(key) == pytest.approx(SAVED)
    page.session.select([key])
    canvas.move_selected(0, 5)
    assert colour_of(key) == pytest.approx(UNSAVED)  # on its way to the server
    screenshot(page, "review-unsaved-colour")
    _on_server(run, page)
    assert colour_of(key) == pytest.approx(SAVED)

    page.session.confidence[key] = 0.2  # as a model that was unsure of it says
    canvas.layers.rebuild()
    assert colour_of(key) == pytest.approx(LOW_CONFIDENCE)


def test_a_spheroid_drawn_and_sliced_by_real_mouse_drags(qtbot: QtBot, run: Run, page: QtReviewPage) -> None:
    canvas = page.canvas
    _key(qtbot, page, Qt.Key.Key_D)
    ring = disc(60, 300, 30, 24)
    _drag(qtbot, page, [*ring, ring[0]])
    assert len(canvas.layers.lines) == len(SHAPES) + 1
    drawn = _key_near(page, 60, 300)
    assert page.session.outlines[drawn].polygon().area == pytest.approx(np.pi * 30**2, rel=0.1)
    _key(qtbot, page, Qt.Key.Key_S)
    _drag(qtbot, page, [[60, 260], [60, 280], [60, 320], [60, 340]])
    assert len(canvas.layers.lines) == len(SHAPES) + 2
    screenshot(page, "review-drawn-and-sliced-by-mouse")
    assert len(_on_server(run, page)) == len(SHAPES) + 2


def test_the_pixel_size_is_the_scale_and_the_status_line_says_where_in_micrometres(
    qtbot: QtBot, page: QtReviewPage
) -> None:
    canvas, image = page.canvas, page.session.image
    assert image is not None
    page.session.image = replace(image, pixel_size_um=0.5)  # as updateImage sets it
    page.session.image_opened.emit(page.session.image)
    assert tuple(canvas.viewer.layers["image"].scale) == (0.5, 0.5)
    assert tuple(canvas.outlines.scale) == (0.5, 0.5)
    assert "0.5 µm/px" in page.title.text()
    canvas.viewer.cursor.position = canvas.world_point(100, 80)
    canvas._on_cursor_moved()
    assert "x 100  y 80 px (50.0, 40.0 µm)" in canvas.status.text()
    _click(qtbot, page, 260, 120)  # picking follows the scale
    assert page.session.selection == {_key_near(page, 260, 120)}
