"""The "Segment spheroids" dock widget of the napari plugin, for a plain napari session.

Pick an image layer, a method (the shipped ResUNet or the classical baseline) and where to run it (this
computer, or a Dask cluster by its scheduler's address); Segment adds a Shapes layer of the outlines,
holes included, with every metric as a layer feature (napari's features table shows them). The work runs
in a napari thread worker (:class:`napari.qt.threading.FunctionWorker`), so the viewer keeps painting;
the widget shows what is happening and napari's activity dock a busy bar. The segmenting itself is the
Qt-free :func:`workbench.plugin.segmenting.segment_layer_pixels` over the core's ``segment_pixels``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Shapes
from napari.qt.threading import FunctionWorker
from napari.utils import progress
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from cluster import DEFAULT_METHOD, SHIPPED_MODELS, Segmentation
from workbench.plugin.segmenting import SegmentRequest, segment_layer_pixels
from workbench.plugin.shapes import shapes_layer

if TYPE_CHECKING:
    from napari.components import ViewerModel

__all__ = ["QtNapariWidget"]

log = logging.getLogger(__name__)

METHODS_OFFERED: tuple[tuple[str, str, dict[str, str]], ...] = (
    *((line, "resunet", {"model": stem}) for stem, line in SHIPPED_MODELS.items()),
    ("Classical (threshold baseline)", "classical", {}),
)
"""(title, method, its options) of each entry in the Method list, in its order."""
HERE, CLUSTER = "This computer", "A Dask cluster"


class QtNapariWidget(QWidget):
    """The form, its Segment button and what the last run did."""

    sig_stage_changed = Signal(str)
    """What the running segmentation is doing (emitted from the worker thread, shown in the GUI's)."""
    sig_segmented = Signal(str)
    """The name of the outlines layer a run added or replaced."""
    sig_failed = Signal(str)
    """What went wrong, as shown to the user."""

    def __init__(self, napari_viewer: ViewerModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._viewer = napari_viewer
        self._worker: Any = None
        self._started = 0.0
        self._shown_layer: Image | None = None
        self._running_image = ""
        self.image_box = QComboBox()
        self.method_box = QComboBox()
        for title, method, _options in METHODS_OFFERED:
            self.method_box.addItem(title, method)
        self.method_box.setCurrentIndex(max(0, self.method_box.findData(DEFAULT_METHOD)))
        self.place_box = QComboBox()
        self.place_box.addItems([HERE, CLUSTER])
        self.scheduler_edit = QLineEdit()
        self.scheduler_edit.setPlaceholderText("tcp://scheduler-host:8786")
        self.pixel_size_box = QDoubleSpinBox()
        self.pixel_size_box.setRange(0.0, 1000.0)
        self.pixel_size_box.setDecimals(4)
        self.pixel_size_box.setSuffix(" µm")
        self.pixel_size_box.setSpecialValueText("unknown (pixels only)")
        self.pixel_size_box.setToolTip(
            "The edge of one pixel, for metrics in µm: the file's where it says, kept with the image layer"
        )
        self.segment_button = QPushButton("Segment")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setTextVisible(False)
        self.progress.setVisible(False)
        self.status = QLabel("Choose an image layer, then Segment.")
        self.status.setWordWrap(True)
        self._build()
        self._wire()
        self._update_images()
        self._update_place()

    # -- building --------------------------------------------------------------------------------------

    def _build(self) -> None:
        form = QFormLayout()
        form.addRow("Image", self.image_box)
        form.addRow("Method", self.method_box)
        form.addRow("Run on", self.place_box)
        form.addRow("Scheduler", self.scheduler_edit)
        form.addRow("Pixel size", self.pixel_size_box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.segment_button)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        # no taller than its form: docks below it (napari's features table) get the rest of the column
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

    def _wire(self) -> None:
        layers = self._viewer.layers
        for event in (layers.events.inserted, layers.events.removed, layers.events.reordered):
            event.connect(self._on_layers_changed)
        self.image_box.currentIndexChanged.connect(self._on_image_box_changed)
        self.place_box.currentIndexChanged.connect(self._update_place)
        self.pixel_size_box.valueChanged.connect(self._on_pixel_size_box_changed)
        self.segment_button.clicked.connect(self._on_segment_button_clicked)
        self.sig_stage_changed.connect(self._on_worker_stage)

    # -- keeping the form in step with the viewer ------------------------------------------------------

    def _on_layers_changed(self, _event: Any = None) -> None:
        self._update_images()

    def _update_images(self) -> None:
        chosen = self.image_box.currentText()
        names = [layer.name for layer in self._viewer.layers if isinstance(layer, Image)]
        self.image_box.blockSignals(True)
        self.image_box.clear()
        self.image_box.addItems(names)
        active = self._viewer.layers.selection.active
        preferred = chosen if chosen in names else getattr(active, "name", None)
        if isinstance(preferred, str) and preferred in names:
            self.image_box.setCurrentText(preferred)
        self.image_box.blockSignals(False)
        self._on_image_box_changed()

    def _on_image_box_changed(self, _index: int = 0) -> None:
        layer = self._chosen_layer()
        if layer is not self._shown_layer:  # the layer's own pixel size, only when another is chosen
            self._shown_layer = layer
            size = layer.metadata.get("pixel_size_um") if layer is not None else None
            self.pixel_size_box.blockSignals(True)
            self.pixel_size_box.setValue(float(size) if isinstance(size, int | float) else 0.0)
            self.pixel_size_box.blockSignals(False)
        self.segment_button.setEnabled(layer is not None and self._worker is None)

    def _on_pixel_size_box_changed(self, value: float) -> None:
        if self._shown_layer is not None:  # kept with the image, as a file's own pixel size is
            self._shown_layer.metadata["pixel_size_um"] = value if value > 0 else None

    def _update_place(self, _index: int = 0) -> None:
        self.scheduler_edit.setEnabled(self.place_box.currentText() == CLUSTER)

    def _chosen_layer(self) -> Image | None:
        name = self.image_box.currentText()
        for layer in self._viewer.layers:
            if isinstance(layer, Image) and layer.name == name:
                return layer
        return None

    # -- running ---------------------------------------------------------------------------------------

    def _on_segment_button_clicked(self) -> None:
        layer = self._chosen_layer()
        if layer is None or self._worker is not None:
            return
        pixels = _plane(layer)
        if pixels is None:
            self._show_failure(f"{layer.name} is {layer.ndim}-D: pick a 2-D image (grayscale or RGB)")
            return
        scheduler = self.scheduler_edit.text().strip() if self.place_box.currentText() == CLUSTER else ""
        if self.place_box.currentText() == CLUSTER and not scheduler:
            self._show_failure("Type the scheduler's address (tcp://host:8786), or run on this computer.")
            return
        size = self.pixel_size_box.value()
        request = SegmentRequest(
            self.method_box.currentData(),
            scheduler or None,
            size if size > 0 else None,
            options=dict(METHODS_OFFERED[self.method_box.currentIndex()][2]),
        )
        self._started = time.perf_counter()
        # FunctionWorker itself, not create_worker: napari 0.9.2's create_worker, inside a napari window,
        # connects `errored` to a status handler that takes too few arguments and raises on every failure
        self._worker = FunctionWorker(
            segment_layer_pixels, pixels, layer.name, request, self.sig_stage_changed.emit
        )
        activity = progress(total=0, desc=f"Segmenting {layer.name}")  # napari's activity dock shows it
        self._running_image = layer.name
        self._worker.returned.connect(self._on_worker_returned)  # a bound slot: dropped with the widget
        self._worker.errored.connect(self._on_worker_errored)
        self._worker.finished.connect(activity.close)
        self._worker.finished.connect(self._on_worker_finished)
        self.segment_button.setEnabled(False)
        self.progress.setRange(0, 0)  # busy: one image has no steps to count
        self.progress.setVisible(True)
        self.status.setStyleSheet("")
        self.status.setText(f"Segmenting {layer.name}…")
        self._worker.start()

    def _on_worker_stage(self, text: str) -> None:
        if self._worker is not None:
            self.status.setText(f"{text}…")

    def _on_worker_returned(self, segmentation: Segmentation) -> None:
        image_name = self._running_image
        source = next((layer for layer in self._viewer.layers if layer.name == image_name), None)
        data, options, _kind = shapes_layer(segmentation, name=f"{image_name} outlines")
        if source is not None:
            options.update(scale=tuple(source.scale)[-2:], translate=tuple(source.translate)[-2:])
        name = options["name"]
        if name in self._viewer.layers:
            self._viewer.layers.remove(name)  # a new run replaces the outlines of the last one
        layer: Shapes = self._viewer.add_shapes(data, **options)
        seconds = time.perf_counter() - self._started
        count = len(segmentation.spheroids)
        holes = sum(len(spheroid.holes) for spheroid in segmentation.spheroids)
        self.status.setText(
            f"{count} spheroid{'s' if count != 1 else ''} ({holes} hole{'s' if holes != 1 else ''}) "
            f"outlined in {seconds:.1f} s, added as “{layer.name}”; their metrics are the layer's "
            "features (Layers > Metadata > Features table widget)."
        )
        self.sig_segmented.emit(layer.name)

    def _on_worker_errored(self, error: BaseException) -> None:
        log.error("segmenting failed", exc_info=error)
        self._show_failure(str(error) or type(error).__name__)

    def _on_worker_finished(self) -> None:
        self._worker = None
        self.progress.setRange(0, 1)
        self.progress.setVisible(False)
        self._on_image_box_changed()

    def _show_failure(self, message: str) -> None:
        self.status.setStyleSheet("color: #d9534f")
        self.status.setText(message)
        self.sig_failed.emit(message)


def _plane(layer: Image) -> np.ndarray[Any, Any] | None:
    """The layer's pixels as one 2-D plane (RGB kept: the core makes it gray), or ``None`` for a stack."""
    data = layer.data[0] if layer.multiscale else layer.data
    pixels = np.asarray(data)
    if pixels.ndim == 2 or (layer.rgb and pixels.ndim == 3):
        return pixels
    return None
