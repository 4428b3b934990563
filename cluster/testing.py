"""A stand-in segmenter: the cost and shape of a real one, without a model, weights or an accelerator.

A public testing aid, as ``distributed.utils_test`` is Dask's: for checking that a cluster a lab deployed
(SSH, SLURM) moves images through every step, for timing the Dask layer apart from the model, and for the
tests of code written against :class:`cluster.segmenter.Segmenter`. It lives in the installed package,
not in a test folder, because the worker processes a deployed cluster starts, on other machines too, can
import ``cluster`` but neither the tests nor a benchmark script; Dask then pickles it by reference.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cluster.segmenter import FloatImage, LabelImage

__all__ = ["StandInSegmenter"]


class StandInSegmenter:
    """Waits ``seconds`` per image, as a worker waits on its GPU, then labels the dark pixels one spheroid.

    "Dark" is below 0.5 of the normalised image: a bright image with a dark disc gives that disc. Its
    ``device`` is ``cuda:0`` on a worker pinned to a GPU (``CUDA_VISIBLE_DEVICES`` set), as a real
    model's would be, else ``cpu``.
    """

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.device = "cuda:0" if os.environ.get("CUDA_VISIBLE_DEVICES") else "cpu"

    @property
    def name(self) -> str:
        return "stand-in"

    @property
    def version(self) -> str:
        return "1"

    @property
    def parameters(self) -> Mapping[str, Any]:
        return {"seconds": self.seconds}

    def segment(self, images: Sequence[FloatImage]) -> list[LabelImage]:
        labels = []
        for image in images:
            if self.seconds:
                time.sleep(self.seconds)
            labels.append((image < 0.5).astype(np.int32))
        return labels
