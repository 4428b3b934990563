"""Label masks: the labels of spheroids_to_labels, 8-bit or 16-bit PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cluster.exceptions import ExportError
from cluster.exports import write_exports
from cluster.exports.masks import label_png
from cluster.polygons import spheroids_to_labels
from cluster.segmentation import Segmentation, Spheroid
from tests.cluster.test_exports import HEIGHT, WIDTH, make_segmentation, square


def png_bit_depth(path: Path) -> int:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return data[24]


def test_mask_is_the_label_image_in_8_bit(tmp_path: Path) -> None:
    segmentation = make_segmentation()
    (path,) = write_exports([segmentation], tmp_path, formats=["masks"])["masks"]
    assert png_bit_depth(path) == 8
    labels = np.asarray(Image.open(path))
    assert labels.dtype == np.uint8 and labels.shape == (HEIGHT, WIDTH)
    np.testing.assert_array_equal(labels, spheroids_to_labels(segmentation.spheroids, (HEIGHT, WIDTH)))
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4}


def test_300_spheroids_give_a_16_bit_mask(tmp_path: Path) -> None:
    spheroids = [
        Spheroid(square(4 * column + 1, 4 * row + 1, 4 * column + 3, 4 * row + 3))
        for row in range(15)
        for column in range(20)
    ]
    segmentation = Segmentation(image_name="many.tif", width=80, height=60, spheroids=spheroids)
    (path,) = write_exports([segmentation], tmp_path, formats=["masks"])["masks"]
    assert png_bit_depth(path) == 16
    with Image.open(path) as image:
        assert image.mode in ("I;16", "I")
        labels = np.asarray(image)
    assert labels.max() == 300 and labels[1, 1] == 1 and labels[57, 77] == 300
    np.testing.assert_array_equal(labels, spheroids_to_labels(spheroids, (60, 80)))


def test_too_many_labels_for_png() -> None:
    with pytest.raises(ValueError, match="65,535"):
        label_png(np.zeros((2, 2), dtype=np.int32), 70_000)


def test_unwritable_folder_is_an_export_error(tmp_path: Path) -> None:
    (tmp_path / "masks").write_text("a file where the folder should be")
    with pytest.raises(ExportError, match="masks"):
        write_exports([make_segmentation()], tmp_path, formats=["masks"])
