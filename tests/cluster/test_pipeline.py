"""The pipeline's mechanism alone: images read in threads while the segmenter works, one outcome each."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from cluster.exceptions import SegmentationError
from cluster.imaging import LoadedImage, read_image
from cluster.pipeline import Reader, segment_readers
from cluster.segmenter import FloatImage, LabelImage
from tests.cluster.cluster_fakes import FakeSegmenter, write_images

WAIT = 20.0
"""Seconds to wait for what happens at once when the code is right (a failure, never a pace)."""


class WaitsForAReader(FakeSegmenter):
    """Its first call waits until a later image has been read: it fails unless reading goes on meanwhile."""

    def __init__(self, later_read: threading.Event) -> None:
        super().__init__()
        self.later_read = later_read

    def segment(self, images: Sequence[FloatImage]) -> list[LabelImage]:
        if not self.later_read.wait(WAIT):
            raise SegmentationError("the later image was not read while this one was segmented")
        return super().segment(images)


def _reader(path: Path, name: str, then: threading.Event | None = None) -> Reader:
    def read() -> LoadedImage:
        image = read_image(path, name=name)
        if then is not None:
            then.set()
        return image

    return read


def test_later_images_are_read_while_the_segmenter_works_on_earlier_ones(tmp_path: Path) -> None:
    paths = write_images(tmp_path, 4)
    third_read = threading.Event()
    named = [
        (f"{i}.png", _reader(p, f"{i}.png", third_read if i == 2 else None)) for i, p in enumerate(paths)
    ]
    outcomes = segment_readers(named, WaitsForAReader(third_read), threads=3)
    assert [o.error for o in outcomes] == [None] * 4
    assert [o.segmentation.image_name for o in outcomes if o.segmentation] == [
        "0.png",
        "1.png",
        "2.png",
        "3.png",
    ]


def test_a_reader_that_fails_costs_its_own_image_only(tmp_path: Path) -> None:
    (path,) = write_images(tmp_path, 1)

    def broken() -> LoadedImage:
        raise OSError("the share went away")

    named = [("a.png", _reader(path, "a.png")), ("b.png", broken), ("c.png", _reader(path, "c.png"))]
    outcomes = segment_readers(named, FakeSegmenter(), threads=2)
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].error == "b.png: unexpected error (OSError: the share went away)"
