"""The ResUNet's plumbing on tiny inputs and a tiny network: shapes, bit depths, tiling, weights, devices.

Accuracy of the shipped weights is in test_model_shipped.py; training and fine-tuning in
test_model_training.py.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from cluster.batching import DevicePolicy  # noqa: E402
from cluster.exceptions import SegmentationError  # noqa: E402
from cluster.imaging import normalize  # noqa: E402
from cluster.model.card import file_sha256, read_card  # noqa: E402
from cluster.model.decoding import (  # noqa: E402
    bilinear_resize,
    instances_at_working_resolution,
    labels_to_full_resolution,
    labels_with_sources,
)
from cluster.model.devices import choose_placement  # noqa: E402
from cluster.model.exceptions import DeviceError, WeightsError  # noqa: E402
from cluster.model.network import ResUNet, ResUNetConfig  # noqa: E402
from cluster.model.segmenter import ResUNetParams, ResUNetSegmenter  # noqa: E402
from cluster.model.targets import area_resize, core_target  # noqa: E402
from cluster.model.weights import load_model, save_model  # noqa: E402

TINY = ResUNetConfig(widths=(8, 16, 16), groups=4)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_model(ResUNet(TINY), path, {"name": "resunet", "version": "test", "working_size": 64})
    return path


def _segmenter(weights: Path, **options: object) -> ResUNetSegmenter:
    return ResUNetSegmenter(ResUNetParams(weights=str(weights), device="cpu", **options))  # type: ignore[arg-type]


def _disc_image(
    shape: tuple[int, int], dtype: type, centre: tuple[float, float], radius: float
) -> np.ndarray:
    rows, cols = np.indices(shape)
    inside = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < radius**2
    top = np.iinfo(dtype).max
    return np.where(inside, top // 4, top - top // 8).astype(dtype)


def test_network_shapes_and_size() -> None:
    model = ResUNet(TINY).eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 1, 32, 48))
    assert out.shape == (2, 2, 32, 48) and out.dtype == torch.float32
    assert 1_000_000 < ResUNet().parameter_count() < 5_000_000  # "a few million"
    gated = ResUNet(ResUNetConfig(widths=(8, 16), groups=4, attention=True)).eval()
    with torch.no_grad():
        assert gated(torch.zeros(1, 1, 16, 16)).shape == (1, 2, 16, 16)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shape", [(70, 130), (257, 64)])
def test_labels_have_the_input_shape_and_int32(
    tiny_weights: Path, dtype: type, shape: tuple[int, int]
) -> None:
    image = _disc_image(shape, dtype, (shape[0] / 2, shape[1] / 2), min(shape) / 3)
    (labels,) = _segmenter(tiny_weights).segment([normalize(image)])
    assert labels.shape == shape and labels.dtype == np.int32 and labels.min() >= 0


def test_very_large_images_are_tiled_and_keep_their_shape(tiny_weights: Path) -> None:
    segmenter = _segmenter(tiny_weights, max_downscale=2.0)
    image = normalize(_disc_image((180, 700), np.uint8, (90, 300), 50))
    shape, scale = segmenter.predictor.working_shape(image.shape)
    assert max(shape) > 64 and scale == 0.5  # bigger than one 64-pixel tile: tiled
    (labels,) = segmenter.segment([image])
    assert labels.shape == (180, 700)


def test_several_images_per_call_match_one_at_a_time(tiny_weights: Path) -> None:
    images = [normalize(_disc_image(s, np.uint8, (30, 30), 20)) for s in [(64, 64), (64, 64), (80, 50)]]
    segmenter = _segmenter(tiny_weights, batch_size=4)
    together = segmenter.segment(images)
    alone = [segmenter.segment([image])[0] for image in images]
    # Batched kernels sum in another order (AVX-512 most of all), so probabilities agree to rounding only,
    # and a pixel whose probability is that close to the threshold may flip.
    probabilities = segmenter.predictor.predict(images)
    for image, a, b, p in zip(images, together, alone, probabilities, strict=True):
        (single,) = segmenter.predictor.predict([image])
        assert np.allclose(p.foreground, single.foreground, atol=1e-3)
        assert np.allclose(p.core, single.core, atol=1e-3)
        assert a.max() == b.max() and np.mean((a > 0) == (b > 0)) > 0.999


def test_images_of_one_working_size_batch_together_as_many_as_the_device_takes(tiny_weights: Path) -> None:
    segmenter = _segmenter(tiny_weights)  # working size 64
    assert segmenter.batch_key((64, 64)) == segmenter.batch_key((128, 128)) != segmenter.batch_key((80, 50))
    assert segmenter.batch_limit((128, 128)) == DevicePolicy().cpu  # no batch_size given: the CPU's count
    assert segmenter.batch_limit((180, 700)) == 1  # bigger than one tile: its tiles are its batch
    assert _segmenter(tiny_weights, batch_size=2).batch_limit((64, 64)) == 2
    with pytest.raises(SegmentationError, match="batch_size must be 1 or more, or left out"):
        ResUNetParams(batch_size=0)


def test_inference_is_deterministic_and_survives_pickling(tiny_weights: Path) -> None:
    image = normalize(_disc_image((96, 96), np.uint16, (40, 50), 25))
    segmenter = _segmenter(tiny_weights)
    first = segmenter.segment([image])[0]
    clone = pickle.loads(pickle.dumps(segmenter))
    assert clone._predictor is None  # the model travels as parameters and loads on first use
    assert np.array_equal(first, clone.segment([image])[0])
    assert clone.parameters["weights_sha256"] == read_card(tiny_weights).sha256


def test_weights_round_trip_with_checksum(tiny_weights: Path) -> None:
    card = read_card(tiny_weights)
    assert card.sha256 == file_sha256(tiny_weights) and card.parameters == ResUNet(TINY).parameter_count()
    model, loaded_card = load_model(tiny_weights)
    assert loaded_card == card and model.config == TINY


def test_corrupt_weights_are_refused_with_a_clear_error(tiny_weights: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.safetensors"
    data = bytearray(tiny_weights.read_bytes())
    data[-10] ^= 0xFF
    copy.write_bytes(bytes(data))
    (tmp_path / "copy.card.json").write_text(
        tiny_weights.with_name("tiny.card.json")
        .read_text()
        .replace('"tiny.safetensors"', '"copy.safetensors"')
    )
    with pytest.raises(WeightsError, match="checksum"):
        load_model(copy)
    # A truncated file whose card was "fixed" to match is still refused, as unreadable.
    copy.write_bytes(tiny_weights.read_bytes()[:100])
    card_file = tmp_path / "copy.card.json"
    text = card_file.read_text().replace(read_card(tiny_weights).sha256, file_sha256(copy))
    card_file.write_text(text)
    with pytest.raises(WeightsError, match="safetensors"):
        load_model(copy)
    card_file.unlink()
    with pytest.raises(WeightsError, match="model card not found"):
        load_model(copy)


def test_weights_are_never_written_into_the_shipped_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPHEROSEG_MODEL_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match="shipped"):
        save_model(
            ResUNet(TINY), tmp_path / "mine.safetensors", {"name": "x", "version": "1", "working_size": 64}
        )


def test_cpu_is_chosen_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    placement = choose_placement("auto", "auto")
    assert placement.device.type == "cpu" and placement.channels_last
    assert choose_placement("cpu", "fp32").autocast_dtype is None
    with pytest.raises(DeviceError, match="CUDA is not available"):
        choose_placement("cuda")
    with pytest.raises(DeviceError):
        choose_placement("cpu", "fp16")


def test_bf16_autocast_runs_on_the_cpu(tiny_weights: Path) -> None:
    image = normalize(_disc_image((64, 64), np.uint8, (32, 32), 20))
    (labels,) = _segmenter(tiny_weights, precision="bf16").segment([image])
    assert labels.shape == (64, 64) and labels.dtype == np.int32


def test_touching_spheroids_are_split_by_their_cores() -> None:
    rows, cols = np.indices((60, 100))
    labels = np.zeros((60, 100), dtype=np.int32)
    labels[(rows - 30) ** 2 + (cols - 30) ** 2 < 22**2] = 1
    labels[((rows - 30) ** 2 + (cols - 70) ** 2 < 20**2) & (labels == 0)] = 2
    core = core_target(labels)
    assert int(core.sum()) > 0 and len(np.unique(labels[core])) == 2
    from scipy import ndimage as ndi

    assert ndi.label(core)[1] == 2  # the cores do not touch
    found = instances_at_working_resolution((labels > 0).astype(np.float32), core.astype(np.float32))
    assert found.max() == 2


def test_outlines_are_refined_bilinearly_at_full_resolution() -> None:
    small = np.zeros((16, 16), dtype=np.float32)
    small[4:12, 4:12] = 1.0
    full = bilinear_resize(small, (64, 64)) > 0.5
    labels = labels_to_full_resolution((small > 0.5).astype(np.int32), full)
    assert labels.shape == (64, 64) and labels.max() == 1
    assert abs(int(full.sum()) - 32 * 32) <= 64  # the square keeps its area
    assert np.isclose(area_resize(np.ones((30, 45), dtype=np.float32), (7, 11)), 1.0).all()


def test_specks_the_finer_threshold_leaves_beside_a_spheroid_are_no_spheroids() -> None:
    """Where the probability hovers about the threshold, the full-resolution foreground of one instance
    breaks into its body and specks of a pixel or two; each would be traced as a spheroid of its own."""
    small = np.zeros((16, 16), dtype=np.int32)
    small[4:12, 4:12] = 1
    full = np.zeros((64, 64), dtype=bool)
    full[18:46, 18:46] = True
    full[14, 14] = full[47, 30] = full[30, 48:50] = True  # within the grown label, apart from the body
    assert labels_with_sources(small, full)[0][14, 14] == 1  # without a size: kept, as before
    labels, sources = labels_with_sources(small, full, min_area=50.0)
    assert labels.max() == 1 and int((labels > 0).sum()) == 28 * 28 and list(sources) == [0, 1]
    tiny_instance = labels_with_sources(small, full & (np.indices(full.shape).sum(axis=0) < 40), 400.0)[0]
    assert tiny_instance.max() == 0  # a label that is only small pieces goes whole


def test_auto_precision_takes_bf16_on_the_cpu_only_with_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from cluster.model import devices

    monkeypatch.setattr(devices, "cpu_supports_bf16", lambda: True)
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: False)  # AVX-512 BF16 alone: no faster than fp32
    assert devices.choose_placement("cpu").autocast_dtype is None
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: True)
    assert devices.choose_placement("cpu").autocast_dtype is torch.bfloat16
    assert devices.choose_placement("cpu", "fp32").autocast_dtype is None
