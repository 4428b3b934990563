"""Running the network on images of any size: resize, pad, batch, tile, infer, resize back.

For each image (a 2-D float32 array from :func:`cluster.imaging.normalize`):

1. **Resize.** Area-average so the long side is ``working_size`` (aspect ratio kept; never enlarged). An
   image larger than ``working_size * max_downscale`` is shrunk by ``max_downscale`` only, so small
   spheroids in huge images (stitched wells, slide scans) keep enough pixels; it is then run in tiles.
2. **Pad** (edge values) to a multiple of the network's stride, **batch** images of equal padded size:
   ``batch_size`` per call if given, else what :class:`~cluster.batching.DevicePolicy` allows (on CUDA
   from the free memory and the memory one image of that size was measured to take, once per size).
3. **Tiles** of ``working_size`` with ``tile_overlap`` working pixels of overlap, blended with weights that
   fall off linearly towards each tile's edge, for images larger than one tile.
4. **Infer** under the placement's autocast (bf16/fp16) and memory format (channels_last).
5. **Back to full size.** The foreground probability is resized bilinearly to the input's size on the
   device and thresholded there; the working-resolution maps go to :mod:`.decoding`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from numpy.typing import NDArray
from torch import Tensor

from cluster.batching import DevicePolicy
from cluster.model.devices import Placement
from cluster.model.exceptions import ModelError
from cluster.model.network import ResUNet

__all__ = ["Prediction", "Predictor"]

FloatArray = NDArray[np.float32]


@dataclass(frozen=True)
class Prediction:
    """The network's answer for one image."""

    foreground: FloatArray
    """Foreground probability at working resolution."""
    core: FloatArray
    """Core probability at working resolution."""
    foreground_full: NDArray[np.bool_]
    """Foreground at the input's full resolution (bilinear probability > threshold)."""
    scale: float
    """Working pixels per full-resolution pixel (<= 1)."""


class Predictor:
    """Runs a loaded :class:`ResUNet` on batches of images (see the module docstring)."""

    def __init__(
        self,
        model: ResUNet,
        placement: Placement,
        working_size: int,
        *,
        batch_size: int | None = None,
        max_downscale: float = 8.0,
        tile_overlap: int = 32,
        threshold: float = 0.5,
        policy: DevicePolicy | None = None,
    ) -> None:
        self.placement = placement
        self.model = model.place(placement.device, placement.channels_last).eval()
        self.memory_format = torch.channels_last if placement.channels_last else torch.contiguous_format
        self.multiple = model.config.multiple
        if working_size % self.multiple:
            raise ModelError(f"working_size {working_size} is not a multiple of {self.multiple}")
        self.working_size = working_size
        self.batch_size = batch_size
        """Images per network call; ``None``: from ``policy`` (see :meth:`images_per_call`)."""
        self.policy = policy or DevicePolicy()
        self._bytes_per_image: dict[tuple[int, int], int] = {}
        self.max_downscale = max_downscale
        self.tile_overlap = tile_overlap
        self.threshold = threshold

    def working_shape(self, shape: tuple[int, int]) -> tuple[tuple[int, int], float]:
        """Working ``(height, width)`` of an image of ``shape``, and the scale used."""
        scale = min(1.0, max(self.working_size / max(shape), 1.0 / self.max_downscale))
        return (max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))), scale

    def batch_key(self, shape: tuple[int, int]) -> Hashable:
        """Images of ``shape`` with equal keys run in one network call (tiled images run alone)."""
        working, _scale = self.working_shape(shape)
        if max(working) > self.working_size:
            return ("tiled", working)
        return self._padded(working)

    def batch_limit(self, shape: tuple[int, int]) -> int:
        """Images of ``shape`` one network call should get now."""
        working, _scale = self.working_shape(shape)
        if max(working) > self.working_size:
            return 1
        return self.images_per_call(self._padded(working))

    def images_per_call(self, padded: tuple[int, int]) -> int:
        """``batch_size`` if given, else the policy's choice for inputs of ``padded`` size on this device."""
        if self.batch_size is not None:
            return self.batch_size
        device = self.placement.device
        if device.type != "cuda":
            return self.policy.images_per_call(str(device), None, None)
        return self.policy.images_per_call(str(device), _cuda_free_bytes(device), self._cuda_bytes(padded))

    @torch.inference_mode()
    def _cuda_bytes(self, padded: tuple[int, int]) -> int:
        """Peak CUDA memory one image of ``padded`` size takes, measured by running one (once per size).

        Batch 1 includes the fixed workspace of the convolutions, so this overestimates the memory each
        further image adds: batches err on the small side.
        """
        if padded not in self._bytes_per_image:
            device = self.placement.device
            torch.cuda.synchronize(device)
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            self._run(torch.zeros((1, 1, *padded), device=device))
            torch.cuda.synchronize(device)
            self._bytes_per_image[padded] = max(1, torch.cuda.max_memory_allocated(device) - before)
        return self._bytes_per_image[padded]

    @torch.inference_mode()
    def predict(self, images: Sequence[FloatArray]) -> list[Prediction]:
        """One :class:`Prediction` per image, in order."""
        prepared: list[tuple[Tensor, tuple[int, int], float]] = []
        for image in images:
            if image.ndim != 2 or min(image.shape) < 2:
                raise ModelError(f"expected a 2-D image of at least 2x2 pixels, got shape {image.shape}")
            shape, scale = self.working_shape((image.shape[0], image.shape[1]))
            tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
            small = F.interpolate(tensor.to(self.placement.device), size=shape, mode="area")
            prepared.append((small, shape, scale))
        outputs: list[Tensor | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, (_small, shape, _scale) in enumerate(prepared):
            if max(shape) > self.working_size:
                outputs[index] = self._tiled(prepared[index][0])
            else:
                groups[self._padded(shape)].append(index)
        for padded, indices in groups.items():
            step = self.images_per_call(padded)
            for start in range(0, len(indices), step):
                chunk = indices[start : start + step]
                batch = torch.cat([self._pad(prepared[i][0], padded) for i in chunk])
                probabilities = self._run(batch)
                for row, i in enumerate(chunk):
                    h, w = prepared[i][1]
                    outputs[i] = probabilities[row : row + 1, :, :h, :w]
        results = []
        for output, image, (_small, _shape, scale) in zip(outputs, images, prepared, strict=True):
            assert output is not None  # every index is either tiled or in a group
            results.append(self._finish(output, image.shape, scale))
        return results

    def _padded(self, shape: tuple[int, int]) -> tuple[int, int]:
        m = self.multiple
        return (math.ceil(shape[0] / m) * m, math.ceil(shape[1] / m) * m)

    def _pad(self, small: Tensor, padded: tuple[int, int]) -> Tensor:
        h, w = small.shape[-2:]
        if (h, w) == padded:
            return small
        return F.pad(small, (0, padded[1] - w, 0, padded[0] - h), mode="replicate")

    def _run(self, batch: Tensor) -> Tensor:
        batch = batch.contiguous(memory_format=self.memory_format)
        with self.placement.autocast():
            logits = self.model(batch)
        return torch.sigmoid(logits.float())

    def _tiled(self, small: Tensor) -> Tensor:
        """Probabilities of an image larger than one tile, from overlapping tiles blended linearly."""
        height, width = small.shape[-2:]
        tile, overlap = self.working_size, self.tile_overlap
        total = torch.zeros((1, 2, height, width), device=small.device)
        weights = torch.zeros((1, 1, height, width), device=small.device)
        ramp = _ramp(tile, overlap, small.device)
        tiles: list[tuple[int, int]] = [
            (top, left) for top in _starts(height, tile, overlap) for left in _starts(width, tile, overlap)
        ]
        padded = self._padded((min(tile, height), min(tile, width)))
        step = self.images_per_call(padded)
        for start in range(0, len(tiles), step):
            chunk = tiles[start : start + step]
            crops = [small[..., t : t + tile, left : left + tile] for t, left in chunk]
            probabilities = self._run(torch.cat([self._pad(c, padded) for c in crops]))
            for row, (top, left) in enumerate(chunk):
                h, w = crops[row].shape[-2:]
                weight = ramp[:h, :w]
                total[..., top : top + h, left : left + w] += probabilities[row, :, :h, :w] * weight
                weights[..., top : top + h, left : left + w] += weight
        return total / weights.clamp_min(1e-6)

    def _finish(self, probabilities: Tensor, shape: tuple[int, ...], scale: float) -> Prediction:
        full = F.interpolate(
            probabilities[:, :1], size=(shape[0], shape[1]), mode="bilinear", align_corners=False
        )
        foreground_full = (full[0, 0] > self.threshold).cpu().numpy()
        maps = probabilities[0].float().cpu().numpy()
        return Prediction(maps[0], maps[1], foreground_full, scale)


def _cuda_free_bytes(device: torch.device) -> int:
    """Free memory on ``device``: the driver's figure plus what torch holds cached but unused."""
    free, _total = torch.cuda.mem_get_info(device)
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return int(free + cached)


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(tile: int, overlap: int, device: torch.device) -> Tensor:
    """Blending weights of one tile: 1 in the middle, falling linearly to near 0 over ``overlap`` pixels."""
    position = torch.arange(tile, dtype=torch.float32, device=device)
    edge = torch.minimum(position + 1, tile - position) / max(overlap, 1)
    line = edge.clamp(max=1.0)
    return line[:, None] * line[None, :]
