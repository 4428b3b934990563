"""The review page: the canvas in the centre, side panels on the right, the review bar and save status
below. The window shows it when an image is activated in the gallery; Esc or Back returns there."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QTabWidget, QVBoxLayout, QWidget

from workbench.qt.qt_review_canvas import QtReviewCanvas
from workbench.review import ReviewedImage, ReviewSession
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
        escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        escape.activated.connect(self._on_escape_activated)
        # napari's canvas takes the keys pressed on it as its own: Esc is caught before it
        self.canvas.qt_viewer.canvas.native.installEventFilter(self)
        self._disconnect = session.image_opened.connect(self._on_session_image_opened)

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

    def _on_session_image_opened(self, image: ReviewedImage) -> None:
        status = image.review_status.replace("_", " ").lower()
        size = f"{image.width} x {image.height} px"
        scale = f", {image.pixel_size_um:g} µm/px" if image.pixel_size_um else ", pixel size unknown"
        self.title.setText(f"{image.name}  ·  {size}{scale}  ·  version {image.version}  ·  {status}")

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
        self._disconnect()
        self.canvas.close_canvas()
