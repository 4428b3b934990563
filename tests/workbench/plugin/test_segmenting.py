"""One image's pixels segmented here and on a real Dask cluster (scheduler and worker processes)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from distributed import LocalCluster

from cluster import SegmentationError, read_image
from workbench.plugin.segmenting import SegmentRequest, segment_layer_pixels
from workbench.samples import SAMPLES


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_here_and_on_a_cluster_give_the_same_outlines(dask_scheduler: str) -> None:
    pixels = read_image(SAMPLES / "several_spheroids.jpg").pixels
    stages: list[str] = []
    here_request = SegmentRequest("classical", pixel_size_um=1.3)
    here = segment_layer_pixels(pixels, "several", here_request, stages.append)
    there = segment_layer_pixels(pixels, "several", SegmentRequest("classical", dask_scheduler, 1.3))
    assert len(here.spheroids) >= 2 and len(there.spheroids) == len(here.spheroids)
    for a, b in zip(here.spheroids, there.spheroids, strict=True):
        assert (a.exterior == b.exterior).all()
    assert here.spheroids[0].metrics is not None and here.spheroids[0].metrics.area_um2 is not None
    assert stages[0] == "Segmenting with classical on this computer"
    assert stages[-1].startswith(f"{len(here.spheroids)} spheroids in ")


def test_a_scheduler_that_does_not_answer_is_named_with_what_to_do() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    request = SegmentRequest("classical", f"tcp://127.0.0.1:{port}", connect_timeout=1.0)
    with pytest.raises(SegmentationError, match=f"127.0.0.1:{port} does not answer.*leave it empty"):
        segment_layer_pixels(read_image(SAMPLES / "hollow_spheroid.png").pixels, "hollow", request)


def test_an_unknown_method_is_refused_with_the_known_ones() -> None:
    pixels = read_image(SAMPLES / "hollow_spheroid.png").pixels
    with pytest.raises(SegmentationError, match="classical, resunet"):
        segment_layer_pixels(pixels, "hollow", SegmentRequest("watershed"))


def test_the_first_model_runs_when_asked_for_by_name() -> None:
    pytest.importorskip("torch")
    pixels = read_image(SAMPLES / "hollow_spheroid.png").pixels
    first = segment_layer_pixels(pixels, "hollow", SegmentRequest("resunet", options={"model": "resunet-v1"}))
    newest = segment_layer_pixels(pixels, "hollow", SegmentRequest("resunet"))
    assert first.model_version.startswith("1.1 ") and newest.model_version.startswith("2.2 ")
    with pytest.raises(SegmentationError, match="model must be one of resunet-v2, resunet-v1"):
        segment_layer_pixels(pixels, "hollow", SegmentRequest("resunet", options={"model": "v0"}))
