"""The stand-in segmenter behaves like a real one through the whole worker path."""

from __future__ import annotations

from pathlib import Path

from cluster.segmenter import Segmenter
from cluster.testing import StandInSegmenter
from cluster.worker import SegmenterSpec, segment_batch
from tests.cluster.cluster_fakes import write_disc


def test_the_stand_in_finds_the_dark_disc_as_one_spheroid(tmp_path: Path) -> None:
    assert isinstance(StandInSegmenter(), Segmenter)
    image = write_disc(tmp_path / "disc.png", size=48, radius=12)
    spec = SegmenterSpec("stand-in", (("seconds", 0.0),), factory=StandInSegmenter)
    ((_, result),) = segment_batch([(0, str(image), "disc.png")], spec)
    assert result.segmentation is not None and result.segmentation.model_name == "stand-in"
    (spheroid,) = result.segmentation.spheroids
    assert spheroid.metrics is not None and abs(spheroid.metrics.area_px - 452) < 45  # π 12²
