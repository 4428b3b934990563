"""The project plots in a real window over a real offline server: histograms, the scatter and the counts
drawn from the project's spheroid table, labelled in px until every image has a pixel size and in µm
after, and a click on a point of the scatter asking for exactly that spheroid."""

from __future__ import annotations

import itertools
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from tests.workbench.qt.conftest import Run, screenshot, shown
from tests.workbench.qt.windows import until
from tests.workbench.reviewed_project import PIXEL_SIZE, graphql, reviewed_project
from workbench.plots import bins_of
from workbench.qt.qt_project_plots import AXIS_LEFT, MARGIN, QtProjectPlots, x_label_span, x_ticks
from workbench.tasks import Tasks
from workbench.workspace import Workspace


def test_plots_show_the_projects_spheroids_and_a_click_asks_for_that_spheroid(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project = run(reviewed_project(workspace, tmp_path / "images", count=4))
    plots = QtProjectPlots(workspace, tasks)
    shown(qtbot, plots, 900, 640)
    plots.show_project(project.id)
    run(until(lambda: plots.data is not None, 30, "the spheroids"))
    assert plots.data is not None and not plots.data.in_um
    assert plots.status.text() == "12 spheroids in 4 images · values in px (4 images without a pixel size)"
    assert [count for _, _, count in plots.data.counts_per_image()] == [3, 3, 3, 3]
    assert sum(bins_of([p.area for p in plots.data.points]).counts) == 12
    _fits_the_side_panel(qtbot, plots)

    for image_id in project.image_ids[:-1]:  # every image gets its pixel size: the plots turn to µm
        run(graphql(workspace, PIXEL_SIZE, i=image_id, p=0.5))
    plots.reload_button.click()
    run(until(lambda: plots.data is not None and plots.data.in_um, 30, "the spheroids in µm"))
    assert plots.status.text() == "12 spheroids in 4 images · values in µm"
    plots.repaint()
    screenshot(plots, "project_plots")

    wanted: list[tuple[int, int]] = []
    plots.sig_spheroid_requested.connect(lambda image_id, spheroid_id: wanted.append((image_id, spheroid_id)))
    biggest = max(plots.data.points, key=lambda p: p.area)  # alone at the right of the scatter
    assert abs(biggest.area - 0.25 * 0.5 * 24 * 36**2 * 0.25881904510252074) < 0.1  # µm², image 3's disc
    qtbot.mouseClick(plots, Qt.MouseButton.LeftButton, pos=plots.position_of(biggest).toPoint())
    assert wanted == [(biggest.image_id, biggest.spheroid_id)]
    assert biggest.image_id == project.image_ids[3]
    qtbot.mouseClick(plots, Qt.MouseButton.LeftButton, pos=plots.rect().topLeft() + plots.rect().center() / 8)
    assert len(wanted) == 1  # nothing there


def _fits_the_side_panel(qtbot: QtBot, plots: QtProjectPlots) -> None:
    """In the review page's side panel (its narrowest) the status line wraps whole and the axes' tick
    labels stand apart."""
    wide = plots.size()
    plots.resize(plots.minimumWidth(), 640)
    qtbot.waitUntil(lambda: plots.width() == plots.minimumWidth())
    plots.repaint()
    screenshot(plots, "project_plots_side_panel")
    status = plots.status
    assert status.toolTip() == status.text()  # the whole line, also on hover
    assert status.height() >= status.heightForWidth(status.width())  # wrapped, not cut
    assert status.height() > status.fontMetrics().height() * 1.5  # on two lines there
    assert plots.data is not None
    areas = [p.area for p in plots.data.points]
    plot_width = (plots.width() - 2 * MARGIN) / 2 - AXIS_LEFT - MARGIN
    metrics = plots.fontMetrics()
    ticks = x_ticks(metrics, (min(areas), max(areas)), plot_width)
    assert len(ticks) >= 2
    low, high = min(areas), max(areas)
    spans = [
        x_label_span(metrics, tick, (tick - low) / (high - low) * plot_width, plot_width) for tick in ticks
    ]
    assert all(right < left for (_, right), (left, _) in itertools.pairwise(spans))  # apart, as drawn
    assert spans[-1][1] <= plot_width + MARGIN  # the last one inside its cell
    plots.resize(wide)


def test_an_axis_too_narrow_for_two_labels_shows_one_round_value(qapp: QApplication) -> None:
    metrics = QFontMetrics(QApplication.font())
    scatter = (424.9, 10300.0)  # areas padded by 3 % either side, as the scatter draws them
    assert x_ticks(metrics, scatter, 60) == [5000.0]  # not the unround 424.9 at the left end
    wide = x_ticks(metrics, scatter, 400)
    assert len(wide) >= 3 and all(tick % 1000 == 0 for tick in wide)
