"""The review page: the canvas in the centre, side panels on the right (the measurements of the image, the
project's plots), the review bar and the save status below. The window shows it when an image is activated
in the gallery; Esc or Back returns there. The review bar walks the images the gallery shows (its project,
filter and order, handed over with :meth:`QtReviewPage.walk_images`)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QTabWidget, QVBoxLayout, QWidget

from workbench.qt.qt_measurements import QtMeasurements
from workbench.qt.qt_project_plots import QtProjectPlots
from workbench.qt.qt_review_bar import QtReviewBar
from workbench.qt.qt_review_canvas import QtReviewCanvas
from workbench.qt.qt_save_status import QtSaveStatus
from workbench.review import ReviewedImage, ReviewSession
from workbench.review_walk import GivenVerdict, ReviewWalk
from workbench.tasks import Tasks

__all__ = ["QtReviewPage"]


class QtReviewPage(QWidget):
    sig_back_requested = Signal()

    def __init__(self, session: ReviewSession, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.tasks = tasks
        self.canvas = QtReviewCanvas(session, tasks)
        self.back_button = QPushButton("← Gallery")
        self.back_button.setToolTip("Back to the gallery (Esc)")
        self.back_button.clicked.connect(self.sig_back_requested)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.side_tabs = QTabWidget()
        self.side_tabs.setObjectName("side_tabs")
        self.side_tabs.setVisible(False)  # until a panel is added
        self.bottom_bar = QHBoxLayout()
        header = QHBoxLayout()
        header.addWidget(self.back_button)
        header.addWidget(self.title, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.canvas)
        splitter.addWidget(self.side_tabs)
        splitter.setStretchFactor(0, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(header)
        layout.addWidget(splitter, 1)
        layout.addLayout(self.bottom_bar)
        self.review_bar: QtReviewBar | None = None  # once the gallery says which images to walk
        self.save_status = QtSaveStatus(session.saver)
        self.add_bottom_widget(self.save_status)
        self.measurements = QtMeasurements(session, session.workspace, tasks)
        self.measurements.sig_pixel_size_changed.connect(self._on_measurements_pixel_size_changed)
        self.add_side_panel(self.measurements, "Measurements")
        self.plots = QtProjectPlots(session.workspace, tasks)
        self.plots.sig_spheroid_requested.connect(self._on_plots_spheroid_requested)
        self.add_side_panel(self.plots, "Project plots")
        self._project_id: int | None = None
        # the plots read every image's outlines: only once someone looks at them
        self.side_tabs.currentChanged.connect(self._on_side_tabs_current_changed)
        escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        escape.activated.connect(self._on_escape_activated)
        # napari's canvas takes the keys pressed on it as its own: Esc is caught before it
        self.canvas.qt_viewer.canvas.native.installEventFilter(self)
        # the header follows the image's record: opened, then saved (version), measured (pixel size), reviewed
        self._disconnects = [
            session.image_opened.connect(self._show_title),
            session.image_changed.connect(self._show_title),
        ]

    def walk_images(self, project_id: int, image_filter: dict[str, Any] | None, order: str) -> None:
        """The review bar walks these images (the gallery's): its project, filter and order."""
        walk = ReviewWalk(self.session.workspace, project_id, image_filter=image_filter, order=order)
        walk.verdict_given.connect(self._on_walk_verdict_given)
        if self.review_bar is None:
            self.review_bar = QtReviewBar(walk, self.tasks, self.session)
            self.review_bar.sig_image_requested.connect(self._on_review_bar_image_requested)
            self.bottom_bar.insertWidget(0, self.review_bar, 1)
        else:
            self.review_bar.set_walk(walk)
        self._project_id = project_id
        self._on_side_tabs_current_changed()

    def add_side_panel(self, widget: QWidget, title: str) -> None:
        self.side_tabs.addTab(widget, title)
        self.side_tabs.setVisible(True)

    def add_bottom_widget(self, widget: QWidget) -> None:
        self.bottom_bar.addWidget(widget)

    async def open_image(self, image_id: int) -> None:
        """Show image ``image_id`` with its outlines (the canvas follows the session)."""
        self.title.setText("Opening…")
        await self.session.open(image_id)
        self.canvas.qt_viewer.canvas.native.setFocus()

    def _on_side_tabs_current_changed(self, index: int = -1) -> None:
        shown = self.side_tabs.currentWidget() is self.plots
        if shown and self._project_id is not None and self.plots.project_id != self._project_id:
            self.plots.show_project(self._project_id)

    def _on_review_bar_image_requested(self, image_id: int) -> None:
        self.tasks.start("Opening the image", lambda task: self.open_image(image_id))

    def _on_plots_spheroid_requested(self, image_id: int, spheroid_id: int) -> None:
        self.tasks.start("Opening the spheroid", lambda task: self._open_spheroid(image_id, spheroid_id))

    async def _open_spheroid(self, image_id: int, spheroid_id: int) -> None:
        image = self.session.image
        if image is None or image.id != image_id:
            await self.open_image(image_id)
        self.session.select([spheroid_id])  # a stored spheroid's key is its id

    def _on_measurements_pixel_size_changed(self, image_id: int, pixel_size_um: float) -> None:
        image = self.session.image
        if image is not None and image.id == image_id:
            self.canvas.set_pixel_size(pixel_size_um or None)

    def _on_walk_verdict_given(self, given: GivenVerdict) -> None:
        self.session.reviewed(given.image_id, given.verdict.value, given.comment)

    def _show_title(self, image: ReviewedImage) -> None:
        status = image.review_status.replace("_", " ").lower()
        size = f"{image.width} x {image.height} px"
        scale = f", {image.pixel_size_um:g} µm/px" if image.pixel_size_um else ", pixel size unknown"
        self.title.setText(f"{image.name}  ·  {size}{scale}  ·  version {image.version}  ·  {status}")
        comment = f"Review comment: {image.review_comment}" if image.review_comment else ""
        self.title.setToolTip(comment)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802  (Qt's name)
        if (
            event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
        ):
            self._on_escape_activated()
            return True
        return super().eventFilter(watched, event)

    def _on_escape_activated(self) -> None:
        """Esc drops a stroke or vertex edit in progress first; with none, back to the gallery."""
        if not self.canvas.cancel():
            self.sig_back_requested.emit()

    def close_page(self) -> None:
        for disconnect in self._disconnects:
            disconnect()
        self.measurements.close_panel()
        self.canvas.close_canvas()
