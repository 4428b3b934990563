"""The "Segment spheroids" widget docked in a plain napari window (napari's ``make_napari_viewer``, under
Xvfb): it segments a sample with the shipped ResUNet in a thread and adds the outlines with their metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import LocalCluster
from PIL import Image
from pytestqt.qtbot import QtBot

from tests.workbench.qt.conftest import SCREENS
from tests.workbench.qt.napari_plugin import PLUGIN, spheroseg_plugin  # noqa: F401  (the fixture)
from workbench.plugin.shapes import vertex_rings
from workbench.qt.qt_napari_widget import CLUSTER, QtNapariWidget

pytestmark = pytest.mark.usefixtures("spheroseg_plugin")

MakeViewer = Callable[..., Any]
SEGMENTING = 180_000  # ms; the first run loads the model


def test_the_widget_outlines_a_sample_and_adds_the_metrics(
    make_napari_viewer: MakeViewer, qtbot: QtBot
) -> None:
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1400, 900)
    viewer.open_sample(PLUGIN, "several_spheroids")[0].visible = False
    viewer.open_sample(PLUGIN, "hollow_spheroid")
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Segment spheroids")
    assert isinstance(widget, QtNapariWidget)
    assert [widget.image_box.itemText(i) for i in range(widget.image_box.count())] == [
        "several_spheroids",
        "hollow_spheroid",
    ]
    widget.image_box.setCurrentText("hollow_spheroid")
    assert widget.method_box.currentData() == "resunet"
    offered = [widget.method_box.itemText(i) for i in range(widget.method_box.count())]
    assert offered[0].startswith("ResUNet 2, the newest") and offered[1].startswith("ResUNet 1, the first")
    widget.pixel_size_box.setValue(0.65)
    assert viewer.layers["hollow_spheroid"].metadata["pixel_size_um"] == 0.65, "kept with the image"

    with qtbot.waitSignal(widget.sig_segmented, timeout=SEGMENTING) as added:
        widget.segment_button.click()
        assert not widget.segment_button.isEnabled(), "one run at a time"
    assert added.args == ["hollow_spheroid outlines"]
    layer = viewer.layers["hollow_spheroid outlines"]
    assert layer.nshapes >= 2
    assert max(len(vertex_rings(vertices)) for vertices in layer.data) >= 2, "a hole is drawn as a hole"
    assert layer.features["area_um2"].to_numpy() == pytest.approx(layer.features["area_px"] * 0.65**2)
    assert "circularity" in layer.features and widget.pixel_size_box.value() == 0.65
    assert widget.status.text().startswith(f"{layer.nshapes} spheroids (")
    qtbot.waitUntil(widget.segment_button.isEnabled)

    viewer.layers.selection.active = layer
    viewer.window.add_plugin_dock_widget("napari", "Features table widget")  # the metrics as a user sees them
    viewer.reset_view()
    qtbot.wait(300)  # a few paints
    SCREENS.mkdir(parents=True, exist_ok=True)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    Image.fromarray(np.asarray(shot)).save(SCREENS / "napari_plugin_segment_spheroids.png")
    assert np.asarray(shot)[..., :3].std() > 10, "the window was painted"

    with qtbot.waitSignal(widget.sig_segmented, timeout=SEGMENTING):
        widget.segment_button.click()
    assert [lay.name for lay in viewer.layers].count("hollow_spheroid outlines") == 1, "a rerun replaces"


def test_the_widget_segments_on_a_dask_cluster_by_its_address(
    make_napari_viewer: MakeViewer, qtbot: QtBot
) -> None:
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "touching_pair")
    widget = QtNapariWidget(viewer)
    qtbot.addWidget(widget)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        widget.place_box.setCurrentText(CLUSTER)
        widget.scheduler_edit.setText(cluster.scheduler_address)
        widget.method_box.setCurrentIndex(widget.method_box.findData("classical"))
        with qtbot.waitSignal(widget.sig_segmented, timeout=SEGMENTING):
            widget.segment_button.click()
        assert cluster.scheduler is not None
        assert "segment_pixels" in cluster.scheduler.task_prefixes, "the task ran on the cluster"
    layer = viewer.layers["touching_pair outlines"]
    assert layer.nshapes >= 2 and layer.metadata["spheroseg"]["model_name"] == "classical"


def test_a_cluster_without_an_address_says_what_to_type(make_napari_viewer: MakeViewer, qtbot: QtBot) -> None:
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "hollow_spheroid")
    widget = QtNapariWidget(viewer)
    qtbot.addWidget(widget)
    widget.place_box.setCurrentText(CLUSTER)
    assert widget.scheduler_edit.isEnabled()
    with qtbot.waitSignal(widget.sig_failed) as failed:
        widget.segment_button.click()
    assert "scheduler's address" in failed.args[0]
    assert len(viewer.layers) == 1


def test_a_wrong_scheduler_address_is_shown_and_the_widget_stays_usable(
    make_napari_viewer: MakeViewer, qtbot: QtBot
) -> None:
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "hollow_spheroid")
    widget = QtNapariWidget(viewer)
    qtbot.addWidget(widget)
    widget.place_box.setCurrentText(CLUSTER)
    widget.scheduler_edit.setText("scheduler-host")
    with qtbot.waitSignal(widget.sig_failed, timeout=SEGMENTING) as failed:
        widget.segment_button.click()
    assert failed.args[0].startswith("'scheduler-host' is not a scheduler address")
    assert widget.status.text() == failed.args[0] and len(viewer.layers) == 1
    qtbot.waitUntil(widget.segment_button.isEnabled)


def test_the_image_list_follows_the_layers(
    make_napari_viewer: MakeViewer, qtbot: QtBot, tmp_path: Path
) -> None:
    viewer = make_napari_viewer()
    widget = QtNapariWidget(viewer)
    qtbot.addWidget(widget)
    assert widget.image_box.count() == 0 and not widget.segment_button.isEnabled()
    viewer.open_sample(PLUGIN, "touching_pair")
    assert widget.image_box.currentText() == "touching_pair" and widget.segment_button.isEnabled()
    viewer.layers.remove("touching_pair")
    assert widget.image_box.count() == 0 and not widget.segment_button.isEnabled()
