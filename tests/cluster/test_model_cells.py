"""Single cells are no spheroids, even where they are as large as the smallest ones (issue 14).

At 0.5-0.8 um a pixel a cell 16-20 um across is 20-40 px wide, as wide as a spheroid 10-20 px in radius.
ResUNet 1.1 and 2.0 had seen cells only up to 16 um and called crowds of such cells spheroids (in 12 such
scenes, drawn as the generator draws cells since 2.2: 214 false spheroids for 1.1, 189 for 2.0); 2.1 learnt
from cells up to 20 um (102), and 2.2, trained on darker and more blurred scenes too, gave part of that
back (121; on the six scenes here 50 against 1.1's 89, where 2.1 made 42). Scenes of the generator: one or
two spheroids in a dense scatter of large cells, sharp and well lit, from seeds no training or held-out set
uses.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cluster.synthetic import SceneConfig, generate_scene

CROWDED = replace(
    SceneConfig.held_out(),
    spheroid_count=(1, 2),
    diameter_um=(150.0, 400.0),
    cell_diameter_um=(16.0, 20.0),
    cell_density=(250.0, 300.0),
    pixel_size_um=(0.5, 0.8),
    p_phase_contrast=0.0,
    p_well_edge=0.0,
    psf_sigma_px=(0.5, 1.5),
    p_defocus=0.0,
    photons=(1000.0, 8000.0),
)
SEEDS = range(600_000_000, 600_000_006)


def _count(model: str) -> tuple[int, int, int]:
    """(false spheroids, spheroids found, spheroids there) over the crowded scenes."""
    from cluster.imaging import normalize
    from cluster.methods import make_segmenter

    segmenter = make_segmenter("resunet", device="cpu", model=model)
    false = found = there = 0
    for seed in SEEDS:
        scene = generate_scene(seed, (512, 512), CROWDED)
        (labels,) = segmenter.segment([normalize(scene.image)])
        for label in np.unique(labels[labels > 0]):
            spheroid = labels == label
            false += int((spheroid & (scene.labels > 0)).sum() < 0.2 * spheroid.sum())
        for label in np.unique(scene.labels[scene.labels > 0]):
            reference = scene.labels == label
            owners = np.bincount(labels[reference], minlength=int(labels.max()) + 1)
            owners[0] = 0
            best = labels == owners.argmax()
            found += int(owners.any() and (best & reference).sum() / (best | reference).sum() > 0.5)
            there += 1
    return false, found, there


def test_crowds_of_large_single_cells_are_mostly_not_taken_for_spheroids() -> None:
    pytest.importorskip("torch")
    newest_false, newest_found, there = _count("resunet-v2")
    first_false, _found, _there = _count("resunet-v1")
    assert newest_false <= 0.6 * first_false, (newest_false, first_false)
    assert newest_found >= there - 1, (newest_found, there)
