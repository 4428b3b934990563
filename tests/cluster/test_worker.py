"""The worker side: the segmenter loaded once per worker, per-image failures, Prometheus metrics, devices,
and the real classical method end to end through the cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from cluster.client import SegmentationRequest, segment_references
from cluster.launch import connect
from cluster.launch.deployment import close_client
from cluster.methods import make_segmenter
from cluster.monitor import cluster_metrics, cluster_status
from cluster.pipeline import segment_sources
from cluster.synthetic import generate_scene
from cluster.worker import SegmenterSpec, segment_batch, worker_report
from tests.cluster.cluster_fakes import FakeSegmenter, write_images
from tests.cluster.cluster_fakes import shared_cluster as shared_cluster  # a fixture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def test_a_batch_runs_in_any_process_and_a_bad_image_fails_only_its_own_entry(tmp_path: Path) -> None:
    good = write_images(tmp_path, 2)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    batch = [(0, str(good[0]), "a.png"), (1, str(broken), "broken.png"), (2, str(good[1]), "b.png")]
    spec = SegmenterSpec("fake", (), factory=FakeSegmenter)
    results = segment_batch(batch, spec)
    assert [index for index, _ in results] == [0, 1, 2]
    assert [outcome.ok for _, outcome in results] == [True, False, True]
    assert results[0][1].segmentation is not None and results[0][1].segmentation.image_name == "a.png"
    assert "broken.png" in (results[1][1].error or "")


def test_failure_reasons_name_the_image_never_where_the_server_keeps_it(tmp_path: Path) -> None:
    """A server hands workers its storage paths; a reason is shown to users and must not contain them."""
    (good,) = write_images(tmp_path, 1)
    storage = tmp_path / "storage" / "blobs" / "images"
    storage.mkdir(parents=True)
    truncated = storage / ("ab" * 32)
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    missing = storage / ("cd" * 32)
    batch = [(0, str(truncated), "plate1.tif"), (1, str(missing), "plate2.tif")]
    results = segment_batch(batch, SegmenterSpec("fake", (), factory=FakeSegmenter))
    reasons = [outcome.error or "" for _, outcome in results]
    assert reasons[0].startswith("plate1.tif: ") and "truncated" in reasons[0], reasons
    assert reasons[1] == "plate2.tif: no such file", reasons
    assert not any(str(tmp_path) in reason or "blobs" in reason for reason in reasons), reasons


def _scenes(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(count):
        scene = generate_scene(seed, (192, 192))
        path = folder / f"scene{seed}.tif"
        tifffile.imwrite(path, scene.image)
        paths.append(path)
    return paths


def test_the_model_loads_once_per_worker_and_workers_report_devices_and_metrics(
    tmp_path: Path, shared_cluster: str
) -> None:
    paths = write_images(tmp_path / "images", 10)
    load_log = tmp_path / "loads.txt"
    spec = SegmenterSpec("fake", (("load_log", str(load_log)), ("seconds", 0.0)), factory=FakeSegmenter)

    async def main() -> tuple[Any, Any, Any, Any]:
        client = await connect(shared_cluster)
        try:
            before = await cluster_metrics(client, shared_cluster)
            for _ in range(2):  # two jobs with the same segmenter: still one load per worker
                results = await segment_references(client, paths, SegmentationRequest(segmenter=spec))
                assert all(r.outcome.ok for r in results)
            reports = await client.run(worker_report)
            status = await cluster_status(client, shared_cluster)
            after = await cluster_metrics(client, shared_cluster)
            return reports, status, before, after
        finally:
            await close_client(client)

    reports, status, before, after = asyncio.run(main())
    loads = load_log.read_text().split()
    assert len(loads) == 2 and len(set(loads)) == 2, "each worker loads the segmenter exactly once"
    assert sum(r["images_ok"] for r in reports.values()) >= 20
    assert all("cpu" in r["devices"] for r in reports.values())
    assert len(status.workers) == 2 and status.images_per_second > 0
    assert not after.errors, after.errors
    for name in ("spheroseg_worker_images_total", "spheroseg_worker_image_seconds_count"):
        assert after.total(name) - before.total(name) == 20
    assert all(after.worker_value(w, "spheroseg_worker_model_load_seconds") > 0 for w in after.workers)
    assert any(key.startswith("dask_scheduler_workers") for key in after.scheduler)


def test_the_classical_method_through_the_cluster_matches_the_in_process_pipeline(
    tmp_path: Path, shared_cluster: str
) -> None:
    paths = _scenes(tmp_path, 3)

    async def main() -> list[Any]:
        client = await connect(shared_cluster)
        try:
            request = SegmentationRequest(segmenter=SegmenterSpec.of("classical"))
            return await segment_references(client, paths, request)
        finally:
            await close_client(client)

    remote = [result.outcome for result in asyncio.run(main())]
    local = segment_sources(paths, make_segmenter("classical"))
    assert [o.name for o in remote] == [o.name for o in local] == [str(p) for p in paths]
    for theirs, ours in zip(remote, local, strict=True):
        assert theirs.segmentation is not None and ours.segmentation is not None
        assert len(theirs.segmentation.spheroids) == len(ours.segmentation.spheroids) > 0
        areas = [
            [s.metrics.area_px for s in seg.spheroids if s.metrics]
            for seg in (theirs.segmentation, ours.segmentation)
        ]
        np.testing.assert_allclose(areas[0], areas[1])
        assert theirs.segmentation.model_name == "classical"
