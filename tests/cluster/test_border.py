"""A spheroid cut by the image's edge says so from segmentation to export (issue 14, part 3), whichever
method found it; one in the middle of the field does not."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from cluster.classical import ClassicalSegmenter
from cluster.evaluation import array_image
from cluster.exports import write_exports
from cluster.metrics import touches_border
from cluster.pipeline import segment_images

HEIGHT, WIDTH = 320, 480


def _image() -> np.ndarray:
    """A granular disc cut in half by the left edge, and a whole one in the middle, 16-bit and noisy."""
    rng = np.random.default_rng(3)
    rows, cols = np.indices((HEIGHT, WIDTH))
    cut = np.hypot(rows - 160, cols - 0) < 60
    whole = np.hypot(rows - 160, cols - 300) < 70
    grain = ndi.gaussian_filter(rng.standard_normal((HEIGHT, WIDTH)), 1.5)
    transmission = np.where(cut | whole, 0.6 * (1 + 0.05 * grain / grain.std()), 1.0)
    counts = (
        30000 * ndi.gaussian_filter(transmission, 1.0) * (1 + 0.01 * rng.standard_normal((HEIGHT, WIDTH)))
    )
    return np.clip(counts, 0, 65535).astype(np.uint16)


def test_a_segmented_disc_cut_by_the_edge_touches_the_border_in_every_export(tmp_path: Path) -> None:
    (segmentation,) = segment_images([array_image("edge.tif", _image())], ClassicalSegmenter())
    centres = [s.metrics.centroid_x for s in segmentation.spheroids if s.metrics is not None]
    assert len(centres) == 2 and sorted(centres)[0] < 60 < 250 < sorted(centres)[1]
    expected = [bool(x < 60) for x in centres]  # the cut one, in whatever order the spheroids came
    assert [touches_border(s, WIDTH, HEIGHT) for s in segmentation.spheroids] == expected
    write_exports([segmentation], tmp_path, formats=["csv", "geojson"])
    with (tmp_path / "metrics.csv").open(newline="", encoding="utf-8") as handle:
        assert [row["touches_border"] for row in csv.DictReader(handle)] == [str(flag) for flag in expected]
    geojson = json.loads((tmp_path / "geojson" / "edge.geojson").read_text())
    assert [f["properties"]["touches_border"] for f in geojson["features"]] == expected
