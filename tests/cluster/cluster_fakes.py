"""Stand-in segmenters and small images for the cluster tests.

Dask pickles them by reference: the worker processes the tests start import this module (they inherit
the test process's ``sys.path``). Each segmenter is :class:`cluster.testing.StandInSegmenter` (label
images the size of the input, a fixed time per image) with one trait a test needs: a process that dies
on a marked image, a record of every load, a load that fails.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cluster.exceptions import SegmentationError
from cluster.segmenter import FloatImage, LabelImage
from cluster.testing import StandInSegmenter

POISON_SHAPE = (13, 17)
"""An image of this shape kills the worker process that segments it (rows, columns)."""


class FakeSegmenter(StandInSegmenter):
    """The stand-in segmenter that also records each load in a file and dies on poison images."""

    def __init__(self, seconds: float = 0.0, load_log: str | None = None, poison: bool = False) -> None:
        super().__init__(seconds)
        self.poison = poison
        if load_log is not None:
            with Path(load_log).open("a") as log:
                log.write(f"{os.getpid()}\n")

    def segment(self, images: Sequence[FloatImage]) -> list[LabelImage]:
        if self.poison and any(image.shape == POISON_SHAPE for image in images):
            time.sleep(0.3)  # like running out of memory: some way into the work
            os.kill(os.getpid(), signal.SIGKILL)
        return super().segment(images)


class BatchingFake(FakeSegmenter):
    """A segmenter that batches (images of equal shape, up to ``limit`` a call) and records each call's
    size; a call holding a blank 48² image fails as a whole, as a batch with one bad input fails on a GPU
    (blank images of other sizes, like the warm-up's, are fine)."""

    def __init__(self, limit: int = 8) -> None:
        super().__init__()
        self.limit = limit
        self.calls: list[int] = []

    def batch_key(self, shape: tuple[int, int]) -> Hashable:
        return shape

    def batch_limit(self, shape: tuple[int, int]) -> int:
        return self.limit

    def segment(self, images: Sequence[FloatImage]) -> list[LabelImage]:
        self.calls.append(len(images))
        if any(image.shape == (48, 48) and not image.any() for image in images):
            raise SegmentationError("a blank image has nothing to segment")
        return super().segment(images)


def write_disc(path: Path, size: int = 48, radius: int = 12) -> Path:
    """A bright 8-bit PNG with one dark disc in the middle."""
    rows, cols = np.mgrid[:size, :size]
    disc = (rows - size / 2) ** 2 + (cols - size / 2) ** 2 < radius**2
    pixels = np.where(disc, 40, 220).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def write_images(folder: Path, count: int, poison: Sequence[int] = ()) -> list[Path]:
    """``count`` disc images; those at ``poison`` indices have :data:`POISON_SHAPE`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"img{index:03d}.png"
        if index in poison:
            Image.fromarray(np.full(POISON_SHAPE, 128, dtype=np.uint8)).save(path)
        else:
            write_disc(path)
        paths.append(path)
    return paths


class FlakyLoad(FakeSegmenter):
    """Fails to load (RuntimeError, as a busy GPU would) the first ``failures`` times, counted in a file."""

    def __init__(self, counter: str, failures: int) -> None:
        with Path(counter).open("a") as log:  # appends are atomic: workers may load at the same time
            log.write("x\n")
        tries = len(Path(counter).read_text().splitlines())
        if tries <= failures:
            raise RuntimeError(f"device busy (load {tries})")
        super().__init__()


def env_var(name: str) -> str | None:
    """An environment variable of the process this runs in (for ``Client.run`` on workers)."""
    return os.environ.get(name)


@pytest.fixture(scope="module")
def shared_cluster() -> Iterator[str]:
    """The scheduler address of two worker processes shared by a module's tests that harm no worker."""
    from distributed import LocalCluster

    from cluster.launch.tuning import apply_worker_config

    apply_worker_config()
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit="1GB",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        worker_dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"allowed_failures": 2},
    ) as cluster:
        yield cluster.scheduler_address
