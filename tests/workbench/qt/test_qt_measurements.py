"""The measurements panel in a real window, on outlines read from a real offline server's geometryUrl: the
table sorts, a row clicked selects that spheroid (and the canvas's selection selects the row), an edit
changes the selected spheroid's metrics at once, the TSV copied is the table, and a pixel size typed in
is stored on the server and turns every value into µm."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from tests.workbench.qt.conftest import Run, screenshot, shown
from tests.workbench.qt.windows import until
from tests.workbench.reviewed_project import graphql, reviewed_project
from workbench.editing import Editor, ImageOutlines
from workbench.qt.qt_measurements import QtMeasurements
from workbench.tasks import Listeners, Tasks, TaskState
from workbench.workspace import Workspace


@dataclass(frozen=True)
class _Image:
    id: int
    name: str
    version: int
    pixel_size_um: float | None


@dataclass
class _Session:
    """The review session as the panel sees it, over outlines decoded from the server's geometry."""

    image: _Image
    outlines: ImageOutlines
    outlines_changed: Listeners[frozenset[int]] = field(default_factory=Listeners)
    selection_changed: Listeners[frozenset[int]] = field(default_factory=Listeners)
    image_opened: Listeners[Any] = field(default_factory=Listeners)
    selected: frozenset[int] = frozenset()

    def select(self, keys: Iterable[int]) -> None:
        self.selected = frozenset(keys)
        self.selection_changed.emit(self.selected)


async def _session(workspace: Workspace, image_id: int, name: str) -> _Session:
    data = await workspace.client.call("MeasuredImage", id=image_id, version=None)
    segmentation = data["image"]["segmentation"]
    decoded = await workspace.fetcher.fetch_outlines(segmentation["geometryUrl"])  # as the canvas opens it
    image = _Image(image_id, name, segmentation["version"], data["image"]["pixelSizeUm"])
    return _Session(image, ImageOutlines.of(decoded, image.pixel_size_um))


def _column(panel: QtMeasurements, column: int) -> list[str]:
    model = panel.table.model()
    return [model.index(row, column).data() for row in range(model.rowCount())]


def _headings(panel: QtMeasurements) -> list[str]:
    model = panel.table.model()
    return [model.headerData(column, Qt.Orientation.Horizontal) for column in range(model.columnCount())]


def test_the_table_sorts_selects_follows_edits_and_copies_as_tsv(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project = run(reviewed_project(workspace, tmp_path / "images", count=2))
    session = run(_session(workspace, project.image_ids[1], project.names[1]))
    panel = QtMeasurements(session, workspace, tasks)
    shown(qtbot, panel, 760, 640)
    session.image_opened.emit(session.image)
    # while they are read: the columns keep their names, the selected spheroid's fields show dashes
    assert _headings(panel)[:3] == ["Spheroid", "Area (px²)", "Diameter (px)"]
    assert {label.text() for label in panel._fields.values()} == {"–"}
    run(until(lambda: panel.measurements is not None, 30, "the measurements"))
    assert panel.count.text() == "3 spheroids"
    headings = _headings(panel)
    assert headings[:3] == ["Spheroid", "Area (px²)", "Diameter (px)"] and headings[-1] == "Touches border"

    panel.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)  # largest area first
    areas = [float(text.replace(",", "")) for text in _column(panel, 1)]
    assert areas == sorted(areas, reverse=True) and len(areas) == 3
    assert _column(panel, 11) == ["no", "yes", "no"]  # the square at x = 0 touches the border
    round_one = 0.5 * 24 * 32**2 * 0.25881904510252074  # the 24-gon of radius 32 (image 1)
    assert abs(areas[0] - round_one) < 0.1
    panel.table.sortByColumn(6, Qt.SortOrder.AscendingOrder)  # least circular first: the flat one
    assert float(_column(panel, 6)[0]) < 0.8 < float(_column(panel, 6)[-1])

    panel.table.setFocus()
    rect = panel.table.visualRect(panel.table.model().index(0, 0))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    (clicked,) = session.selected  # the row clicked selects that spheroid on the canvas
    assert panel._fields["Spheroid"].text() == str(clicked)
    assert panel._fields["Area"].text().endswith("px²")

    other = max(session.outlines, key=lambda key: session.outlines.metrics(key).area_px)  # the round one
    assert other != clicked
    session.select({other})  # selected on the canvas: the table follows
    (row,) = panel.table.selectionModel().selectedRows()
    assert row.data() == str(other) and panel._fields["Spheroid"].text() == str(other)

    before = panel._fields["Area"].text()
    change = Editor(session.outlines).brush(other, [[60.0, 32.0], [60.0, 12.0]], 6.0)  # paint a bump on it
    session.outlines_changed.emit(frozenset(change.after))
    after = panel._fields["Area"].text()
    assert float(after.split()[0].replace(",", "")) > float(before.split()[0].replace(",", ""))
    assert panel._fields["Confidence"].text() == "–"  # measured here: no segmenter's confidence

    panel.copy_all()
    lines = QApplication.clipboard().text().splitlines()
    assert lines[0].split("\t") == headings
    table = [[_column(panel, column)[row] for column in range(len(headings))] for row in range(3)]
    for copied, cells_shown in zip(lines[1:], table, strict=True):
        cells = copied.split("\t")
        assert cells[0] == cells_shown[0] and cells[-1] == cells_shown[-1]
        for value, text in zip(cells[1:-1], cells_shown[1:-1], strict=True):
            assert (value == "" and text == "–") or abs(float(value) - float(text.replace(",", ""))) < 0.06
    panel.table.setFocus()
    qtbot.keyClick(panel.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    (now,) = panel.table.selectionModel().selectedRows()  # the bump made it less round: it moved up
    assert QApplication.clipboard().text().splitlines() == [lines[0], lines[1 + now.row()]]
    assert lines[1 + now.row()].startswith(f"{other}\t")
    screenshot(panel, "measurements_px")
    panel.resize(400, 720)  # as wide as the review page's side panel
    screenshot(panel, "measurements_side_panel")


def test_a_pixel_size_typed_in_is_stored_and_every_value_turns_into_um(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project = run(reviewed_project(workspace, tmp_path / "images", count=1))
    session = run(_session(workspace, project.image_ids[0], project.names[0]))
    panel = QtMeasurements(session, workspace, tasks)
    shown(qtbot, panel, 760, 640)
    told: list[tuple[int, float]] = []
    panel.sig_pixel_size_changed.connect(lambda image_id, size: told.append((image_id, size)))
    session.image_opened.emit(session.image)
    run(until(lambda: panel.measurements is not None, 30, "the measurements"))
    panel.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    px_areas = [float(text.replace(",", "")) for text in _column(panel, 1)]
    assert panel.pixel_size.text() == "unknown: values in pixels"
    chosen = next(iter(session.outlines))
    session.select({chosen})  # selected on the canvas: still shown once the values turn to µm

    panel.pixel_size.setFocus()
    panel.pixel_size.selectAll()
    qtbot.keyClicks(panel.pixel_size, "0.5")
    qtbot.keyClick(panel.pixel_size, Qt.Key.Key_Return)
    run(until(lambda: bool(told), 30, "the pixel size saved"))

    assert told == [(session.image.id, 0.5)]
    stored = run(graphql(workspace, "query($i: Int!) { image(id: $i) { pixelSizeUm } }", i=session.image.id))
    assert stored["image"]["pixelSizeUm"] == 0.5
    assert _headings(panel)[1:3] == ["Area (µm²)", "Diameter (µm)"]
    um_areas = [float(text.replace(",", "")) for text in _column(panel, 1)]
    assert [round(area, 1) for area in um_areas] == [round(area * 0.25, 1) for area in px_areas]
    assert panel._fields["Spheroid"].text() == str(chosen)
    assert panel._fields["Diameter"].text().endswith("µm")
    screenshot(panel, "measurements_um")

    session.image_opened.emit(replace(session.image, pixel_size_um=0.5))  # opened again: read in µm
    assert _headings(panel)[1:3] == ["Area (µm²)", "Diameter (µm)"]  # the last ones, while read again
    run(
        until(
            lambda: panel.measurements is not None and panel.measurements.in_um, 30, "the measurements again"
        )
    )


def test_a_panel_closed_while_its_measurements_are_read_stops_reading_them(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    """The user opens an image and goes straight back to the gallery: the reading the page started stops
    (it would otherwise fill a table Qt has deleted) and leaves no notice behind."""
    project = run(reviewed_project(workspace, tmp_path / "images", count=1))
    session = run(_session(workspace, project.image_ids[0], project.names[0]))
    panel = QtMeasurements(session, workspace, tasks)
    shown(qtbot, panel, 760, 640)
    session.image_opened.emit(session.image)
    loading = panel.loading
    assert loading is not None and loading.state is TaskState.RUNNING

    panel.close_panel()  # what the review page does as it goes
    run(loading.wait())

    assert loading.state is TaskState.CANCELLED
    assert not tasks.notices.items
