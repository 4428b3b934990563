"""The camera: photo-electrons, shot and read noise, the dark offset, and 8- or 16-bit numbers.

Intensity 1 (unobstructed light) yields ``photons`` electrons. Shot noise (Poisson) is drawn in its
Gaussian limit, variance equal to the signal, together with read noise in one normal draw. Electrons
become counts with a gain that puts intensity 1 at ``background_level`` of the range above the offset.

- **8-bit**: counts 0..255, offset 0; some images are exported with an auto-contrast stretch
  (0.1th to 99.9th percentile onto 0..255), as acquisition software often does.
- **16-bit**: a ``bits``-bit camera (10 to 16 bits) with a dark offset, stored in uint16, so only part of
  the range is used (12-bit data never exceed 4095); some cameras shift the data to the top bits
  (``msb_aligned``: 12-bit counts times 16).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cluster.synthetic.config import SceneConfig
from cluster.synthetic.fields import FloatArray, chance, log_uniform, normal_field, uniform

__all__ = ["Camera", "expose", "sample_camera"]


@dataclass(frozen=True)
class Camera:
    """How one scene's camera turns light into numbers (see the module docstring)."""

    bits: int
    photons: float
    read_noise: float
    offset: int
    background_level: float
    msb_aligned: bool
    auto_contrast: bool

    @property
    def dtype(self) -> type[np.uint8] | type[np.uint16]:
        """The array dtype the image is stored in."""
        return np.uint8 if self.bits == 8 else np.uint16


def sample_camera(rng: np.random.Generator, config: SceneConfig) -> Camera:
    """A camera drawn from ``config``'s ranges."""
    sixteen = chance(rng, config.p_16bit)
    bits = int(rng.choice(config.camera_bits)) if sixteen else 8
    offset = int(uniform(rng, config.camera_offset_fraction) * (2**bits - 1)) if sixteen else 0
    msb_aligned = chance(rng, config.p_msb_aligned) and sixteen and bits < 16
    auto_contrast = chance(rng, config.p_auto_contrast) and not sixteen
    return Camera(
        bits=bits,
        photons=log_uniform(rng, config.photons),
        read_noise=uniform(rng, config.read_noise_e),
        offset=offset,
        background_level=uniform(rng, config.background_level),
        msb_aligned=msb_aligned,
        auto_contrast=auto_contrast,
    )


def expose(
    rng: np.random.Generator, intensity: FloatArray, camera: Camera
) -> NDArray[np.uint8] | NDArray[np.uint16]:
    """Digitise ``intensity`` (1 = unobstructed light); consumes ``intensity``."""
    electrons = intensity
    electrons *= np.float32(camera.photons)
    np.maximum(electrons, 0, out=electrons)
    sigma = np.sqrt(electrons + np.float32(camera.read_noise**2))
    sigma *= normal_field(rng, intensity.shape)
    electrons += sigma
    top = 2**camera.bits - 1
    gain = camera.background_level * (top - camera.offset) / camera.photons
    counts = electrons
    counts *= np.float32(gain)
    counts += np.float32(camera.offset)
    if camera.auto_contrast:
        low, high = np.percentile(counts[::4, ::4], [0.1, 99.9])
        counts -= np.float32(low)
        counts *= np.float32(top / max(high - low, 1e-3))
    np.rint(counts, out=counts)
    np.clip(counts, 0, top, out=counts)
    if camera.bits == 8:
        return counts.astype(np.uint8)
    image = counts.astype(np.uint16)
    if camera.msb_aligned:
        image <<= np.uint16(16 - camera.bits)
    return image
