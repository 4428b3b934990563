"""Images drawn for the network's tests: dark granular objects on a bright medium, as a microscope shows
spheroids, where the test knows exactly which pixel is which object."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi


def drawn_image(masks: list[tuple[NDArray[np.bool_], float]], shape: tuple[int, int]) -> NDArray[np.uint16]:
    """Granular dark objects of the given optical densities on a bright medium, blurred and noisy."""
    rng = np.random.default_rng(0)
    density = np.zeros(shape)
    for mask, value in masks:
        density += mask * value
    grain = ndi.gaussian_filter(rng.standard_normal(shape), 1.5)
    transmission = ndi.gaussian_filter(np.exp(-density * (1 + 0.1 * grain / grain.std())), 1.0)
    counts = 30000 * transmission * (1 + 0.01 * rng.standard_normal(shape))
    return np.clip(counts, 0, 65535).astype(np.uint16)
