"""The worker side: the segmenter loaded once per worker, per-image failures, Prometheus metrics, devices,
and the real classical method end to end through the cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from cluster.client import SegmentationRequest, segment_references
from cluster.imaging import read_image
from cluster.launch import connect
from cluster.launch.deployment import close_client
from cluster.methods import make_segmenter
from cluster.monitor import cluster_metrics, cluster_status
from cluster.pipeline import segment_sources
from cluster.synthetic import generate_scene
from cluster.worker import SegmenterSpec, load_segmenter, segment_batch, segment_pixels, worker_report
from tests.cluster.cluster_fakes import BatchingFake, FakeSegmenter, write_images
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


def test_a_task_hands_a_batching_segmenter_its_images_together_and_a_bad_one_still_fails_alone(
    tmp_path: Path,
) -> None:
    """Good, corrupt, missing and blank images in one task: the good ones share calls; the blank one
    breaks the call it is in, so that call is redone one image at a time and only the blank one fails."""
    paths = write_images(tmp_path, 5)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(paths[0].read_bytes()[:60])
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((48, 48), 90, dtype=np.uint8)).save(blank)
    names = ["a.png", "corrupt.png", "b.png", "missing.png", "c.png", "blank.png", "d.png", "e.png"]
    files = [paths[0], corrupt, paths[1], tmp_path / "nowhere.png", paths[2], blank, paths[3], paths[4]]
    spec = SegmenterSpec("batching-fake", (("limit", 8),), factory=BatchingFake)
    results = segment_batch([(i, str(f), n) for i, (f, n) in enumerate(zip(files, names, strict=True))], spec)
    outcomes = [outcome for _, outcome in results]
    assert [index for index, _ in results] == list(range(8))
    assert [o.ok for o in outcomes] == [True, False, True, False, True, False, True, True]
    named = [o.segmentation.image_name for o in outcomes if o.segmentation]
    assert named == ["a.png", "b.png", "c.png", "d.png", "e.png"]
    assert outcomes[1].error is not None and outcomes[1].error.startswith("corrupt.png: ")
    assert outcomes[3].error == "missing.png: no such file"
    assert outcomes[5].error == "blank.png: a blank image has nothing to segment"
    segmenter = load_segmenter(spec).segmenter
    assert isinstance(segmenter, BatchingFake)
    assert segmenter.calls[-7:] == [6, 1, 1, 1, 1, 1, 1], "one call of 6, then each alone"


def test_a_batching_segmenter_gets_batches_up_to_its_limit(tmp_path: Path) -> None:
    paths = write_images(tmp_path, 7)
    spec = SegmenterSpec("batching-fake", (("limit", 3),), factory=BatchingFake)
    results = segment_batch([(i, str(path), path.name) for i, path in enumerate(paths)], spec)
    assert all(outcome.ok for _, outcome in results)
    segmenter = load_segmenter(spec).segmenter
    assert isinstance(segmenter, BatchingFake) and segmenter.calls[-3:] == [3, 3, 1]


def test_the_resunet_in_batches_finds_what_it_finds_one_image_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped ResUNet through the worker path, network batches of 1 against batches of 4 (what a GPU
    would get; CPUs get 1), in a task that also holds a corrupt, a missing and a too small image."""
    from cluster.model.inference import Predictor

    scenes = _scenes(tmp_path / "scenes", 5)
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(scenes[0].read_bytes()[:300])
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.full((6, 6), 90, dtype=np.uint8)).save(tiny)
    files = [scenes[0], corrupt, scenes[1], tmp_path / "gone.tif", scenes[2], tiny, scenes[3], scenes[4]]
    batch = [(i, str(f), f.name) for i, f in enumerate(files)]
    network_calls: list[int] = []
    run = Predictor._run
    monkeypatch.setattr(Predictor, "_run", lambda self, x: network_calls.append(len(x)) or run(self, x))

    def outcomes(batch_size: int) -> list[Any]:
        spec = SegmenterSpec.of("resunet", device="cpu", precision="fp32", batch_size=batch_size)
        load_segmenter(spec)  # warm-up call outside the record
        network_calls.clear()
        return [outcome for _, outcome in segment_batch(batch, spec)]

    alone = outcomes(1)
    assert network_calls == [1] * 5
    together = outcomes(4)
    assert network_calls == [4, 1], "five 192² scenes: a call of four, then one"
    assert (
        [o.ok for o in together]
        == [o.ok for o in alone]
        == [True, False, True, False, True, False, True, True]
    )
    assert together[3].error == alone[3].error == "gone.tif: no such file"
    assert together[5].error == alone[5].error
    assert (together[5].error or "").startswith(
        "tiny.png: the image is only 6 x 6 pixels, too small to segment"
    )
    for ours, theirs in zip(together, alone, strict=True):
        if ours.segmentation is None or theirs.segmentation is None:
            continue
        assert ours.segmentation.image_name == theirs.segmentation.image_name
        # As in test_model.py: batched kernels sum in another order, so a pixel at the threshold may flip.
        areas = [
            [s.metrics.area_px for s in seg.spheroids if s.metrics]
            for seg in (ours.segmentation, theirs.segmentation)
        ]
        assert len(areas[0]) == len(areas[1]) > 0
        np.testing.assert_allclose(sorted(areas[0]), sorted(areas[1]), atol=0.001 * 192 * 192)


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


def test_segment_pixels_outlines_an_rgb_array_as_a_file_would_be() -> None:
    image = read_image(Path(__file__).resolve().parents[2] / "resources" / "samples" / "hollow_spheroid.png")
    spec = SegmenterSpec.of("classical")
    gray = segment_pixels(image.pixels, "hollow", spec)
    rgb = segment_pixels(np.repeat(image.pixels[:, :, None], 3, axis=2), "hollow", spec, pixel_size_um=0.5)
    assert gray.ok and rgb.ok and gray.segmentation is not None and rgb.segmentation is not None
    assert len(rgb.segmentation.spheroids) == len(gray.segmentation.spheroids) >= 1
    assert rgb.segmentation.spheroids[0].metrics.area_um2 is not None  # type: ignore[union-attr]
    assert (rgb.segmentation.width, rgb.segmentation.height) == image.pixels.shape[::-1]


def test_segment_pixels_answers_a_bad_array_with_a_reason() -> None:
    outcome = segment_pixels(np.zeros((4, 5, 6, 7)), "stack", SegmenterSpec.of("classical"))
    assert not outcome.ok and "stack: not one 2-D image" in (outcome.error or "")
