"""One image's measurements without a window: the stored metrics (confidence included) for outlines as
loaded, the core's measurement for edited ones, µm following the pixel size, and TSV a spreadsheet reads."""

from __future__ import annotations

import dataclasses

import numpy as np

from cluster import Outlines, Segmentation, Spheroid, decode_outlines, encode_outlines, measure
from workbench.editing import Editor, ImageOutlines
from workbench.measurements import ImageMeasurements, stored_metrics


def _square(x: float, y: float, size: float) -> np.ndarray:
    return np.array([[x, y], [x + size, y], [x + size, y + size], [x, y + size]], dtype=np.float64)


def _decoded() -> Outlines:
    """An outlines file as geometryUrl serves it: two squares measured by a segmenter sure of them."""
    spheroids = []
    for spheroid_id, ring in ((1, _square(20, 20, 30)), (2, _square(0, 60, 10))):
        plain = Spheroid(ring, (), None, spheroid_id)
        metrics = dataclasses.replace(measure(plain), confidence=0.875)
        spheroids.append(Spheroid(ring, (), metrics, spheroid_id))
    return decode_outlines(encode_outlines(Outlines.of(Segmentation("well.png", 100, 100, spheroids))))


def test_rows_keep_the_stored_metrics_until_an_outline_is_edited() -> None:
    decoded = _decoded()
    outlines = ImageOutlines.of(decoded)
    measurements = ImageMeasurements(outlines, stored_metrics(decoded), None)
    first, second = measurements.rows
    assert (first.metrics.area_px, first.metrics.confidence) == (900.0, 0.875)
    assert (first.touches_border, second.touches_border) == (False, True)  # x = 0 is the image's edge

    change = Editor(outlines).reshape(1, _square(20, 20, 40))
    rows, moved = measurements.update(change.after)
    assert rows == [0] and not moved
    assert measurements.rows[0].metrics.area_px == 1600.0
    assert measurements.rows[0].metrics.confidence is None  # drawn by a person now

    change = Editor(outlines).delete([2])
    assert measurements.update(change.after) == ([0], True)  # rows went: every index may have moved
    assert [row.key for row in measurements.rows] == [1]


def test_tsv_has_a_header_row_units_and_empty_cells_for_unknown_values() -> None:
    decoded = _decoded()
    outlines = ImageOutlines.of(decoded)
    measurements = ImageMeasurements(outlines, stored_metrics(decoded), None)
    lines = measurements.tsv(measurements.rows).splitlines()
    header = lines[0].split("\t")
    assert header[:3] == ["Spheroid", "Area (px²)", "Diameter (px)"] and header[-1] == "Touches border"
    cells = lines[2].split("\t")
    assert len(cells) == len(header)
    assert cells[0] == "2" and cells[1] == "100" and cells[-1] == "yes"
    assert cells[header.index("Confidence")] == "0.875"

    measurements.set_pixel_size(0.5)
    header = measurements.tsv([]).splitlines()[0].split("\t")
    assert header[1:3] == ["Area (µm²)", "Diameter (µm)"]
    assert measurements.rows[0].metrics.area_um2 == 225.0
    assert measurements.text(measurements.rows[0])[1] == "225.0"
    unmeasured = ImageMeasurements(outlines, {}, None)  # no stored metrics: measured here, no confidence
    assert unmeasured.tsv(unmeasured.rows).splitlines()[1].split("\t")[header.index("Confidence")] == ""
