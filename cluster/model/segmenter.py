"""The ``"resunet"`` segmentation method: the shipped (or given) ResUNet behind the Segmenter protocol.

The segmenter is cheap to build and to pickle: the weights are loaded on first use (and again after
unpickling on a Dask worker), once per process, and kept. torch is imported only then, so listing
methods or reading the model card never loads it::

    segmenter = make_segmenter("resunet")                 # shipped weights, best device and precision
    labels = segmenter.segment([normalize(pixels)])       # int32 labels, full resolution
    ((labels, confidence),) = segmenter.segment_scored([normalize(pixels)])  # and each label's 0..1

Each spheroid's confidence is :func:`cluster.model.confidence.instance_confidence`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.model.card import SHIPPED_MODELS, SHIPPED_STEM, ModelCard, read_card, shipped_card_path
from cluster.model.confidence import instance_confidence
from cluster.model.decoding import (
    MAX_THINNESS,
    instances_at_working_resolution,
    labels_with_sources,
    min_working_area,
)
from cluster.model.refinement import (
    CANDIDATE_SHARE,
    Window,
    crop_input,
    drop_under,
    refinement_windows,
    replace_outline,
)
from cluster.parameters import check_ranges, parameter
from cluster.segmenter import FloatImage, LabelImage, Scored, check_segmentable

if TYPE_CHECKING:
    from cluster.model.inference import Predictor

__all__ = ["ResUNetParams", "ResUNetSegmenter"]


@dataclass(frozen=True)
class ResUNetParams:
    """Parameters of the ResUNet segmenter."""

    model: str = parameter(
        SHIPPED_STEM,
        "Which shipped model segments: "
        + "; ".join(f"{stem} ({line})" for stem, line in SHIPPED_MODELS.items())
        + ".",
        choices=tuple(SHIPPED_MODELS),
    )
    weights: str | None = parameter(
        None, "A .safetensors file with its card on the worker's machine; unset for the shipped model."
    )
    device: str = parameter("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")
    precision: str = parameter("auto", "auto, fp32, bf16 or fp16 (see cluster.model.devices).")
    threads: int | None = parameter(
        None, "CPU threads torch may use in this process; unset leaves torch's default."
    )
    batch_size: int | None = parameter(
        None,
        "Images per network call; unset: from the device (and on CUDA its free memory), see "
        "cluster.batching.DevicePolicy.",
        minimum=1,
        unset="left out to size batches by the device",
    )
    threshold: float = parameter(
        0.5, "Probability above which a pixel is foreground (and core).", above=0, below=1
    )
    min_diameter_px: float = parameter(
        16.0,
        "Instances with a smaller equivalent diameter (full-resolution pixels) are dropped.",
        minimum=0,
    )
    max_downscale: float = parameter(
        8.0, "Largest shrink factor; bigger images are run in tiles.", minimum=1, maximum=64
    )
    max_thinness: float = parameter(
        MAX_THINNESS,
        "Most an instance's area (holes filled) may exceed that of the largest disc inside it: drops well "
        "walls, fibres and scratches.",
        minimum=1,
        maximum=1e6,
    )
    refine_small: bool = parameter(
        True,
        "Outline small spheroids again with the network on crops around them, at a finer scale "
        "(see cluster.model.refinement).",
    )

    def __post_init__(self) -> None:
        check_ranges(self)


class ResUNetSegmenter:
    """Implements :class:`cluster.segmenter.BatchingSegmenter` and
    :class:`~cluster.segmenter.ConfidentSegmenter` with the ResUNet."""

    name = "resunet"

    def __init__(self, params: ResUNetParams | None = None) -> None:
        self.params = params or ResUNetParams()
        self._card: ModelCard | None = None
        self._predictor: Predictor | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"params": self.params}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["params"])  # type: ignore[misc]

    @property
    def card(self) -> ModelCard:
        """The model card of the weights in use (read without loading torch)."""
        if self._card is None:
            self._card = read_card(self._weights_path())
        return self._card

    @property
    def version(self) -> str:
        return f"{self.card.version} ({self.card.sha256[:12]})"

    @property
    def parameters(self) -> Mapping[str, Any]:
        values = asdict(self.params)
        values["weights_sha256"] = self.card.sha256
        values["working_size"] = self.card.working_size
        return values

    def _weights_path(self) -> Path:
        return Path(self.params.weights) if self.params.weights else shipped_card_path(self.params.model)

    @property
    def predictor(self) -> Predictor:
        """The loaded network, ready to run (loaded on first use)."""
        if self._predictor is None:
            self._predictor = self._load()
        return self._predictor

    def _load(self) -> Predictor:
        import torch

        from cluster.model.devices import choose_placement
        from cluster.model.inference import Predictor
        from cluster.model.weights import load_model

        if self.params.threads is not None:
            torch.set_num_threads(self.params.threads)
        model, card = load_model(self._weights_path())
        self._card = card
        return Predictor(
            model,
            choose_placement(self.params.device, self.params.precision),
            card.working_size,
            batch_size=self.params.batch_size,
            max_downscale=self.params.max_downscale,
            threshold=self.params.threshold,
        )

    def batch_key(self, shape: tuple[int, int]) -> Hashable:
        """Images with equal keys run through the network together (see
        :class:`cluster.segmenter.BatchingSegmenter`)."""
        return self.predictor.batch_key(shape)

    def batch_limit(self, shape: tuple[int, int]) -> int:
        return self.predictor.batch_limit(shape)

    def segment(self, images: Sequence[FloatImage]) -> list[LabelImage]:
        return [labels for labels, _confidence in self.segment_scored(images)]

    def segment_scored(self, images: Sequence[FloatImage]) -> list[Scored]:
        for image in images:
            check_segmentable(image)
        predictions = self.predictor.predict(images)
        # With the second look, instances down to a fraction of the smallest diameter are kept as
        # candidates: a faint spheroid the first pass drew too small gets its outline at a finer scale.
        smallest = self.params.min_diameter_px * (CANDIDATE_SHARE if self.params.refine_small else 1.0)
        labelled: list[tuple[LabelImage, dict[int, float]]] = []
        for prediction in predictions:
            small = instances_at_working_resolution(
                prediction.foreground,
                prediction.core,
                threshold=self.params.threshold,
                min_area=min_working_area(smallest, prediction.scale),
                max_thinness=self.params.max_thinness,
            )
            labels, sources = labels_with_sources(
                small, prediction.foreground_full, min_working_area(smallest, 1.0)
            )
            confidence = instance_confidence(prediction.foreground, small)
            by_label = {label: float(confidence[source]) for label, source in enumerate(sources) if label}
            labelled.append((labels, by_label))
        if self.params.refine_small:
            self._refine(labelled, images, [p.scale for p in predictions])
            for refined, scores in labelled:
                drop_under(refined, scores, min_working_area(self.params.min_diameter_px, 1.0))
        return list(labelled)

    def _refine(
        self,
        labelled: list[tuple[LabelImage, dict[int, float]]],
        images: Sequence[FloatImage],
        scales: Sequence[float],
    ) -> None:
        """Outline the small instances of every image's labels again, in place, from the network's second
        look at crops around them (:mod:`cluster.model.refinement`), all crops in one call; a spheroid split
        off a merged pair gets the confidence of the outline it came from."""
        crops: list[tuple[int, Window]] = []
        for index, ((labels, _), scale) in enumerate(zip(labelled, scales, strict=True)):
            crops += [(index, window) for window in refinement_windows(labels, scale)]
        if not crops:
            return
        inputs = [crop_input(images[index], window) for index, window in crops]
        for (index, window), prediction in zip(crops, self.predictor.predict(inputs), strict=True):
            labels, confidence = labelled[index]
            drawn = replace_outline(
                labels,
                window,
                prediction.foreground,
                prediction.core,
                threshold=self.params.threshold,
                min_diameter_px=self.params.min_diameter_px,
            )
            for label in drawn[1:]:
                confidence[label] = confidence[window.label]
