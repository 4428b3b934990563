"""One image's spheroid measurements as the review page shows them, without Qt: a row per spheroid, in µm
when the image's pixel size is known (else in pixels), kept right while the outlines are edited, and
copied as tab-separated text that a spreadsheet pastes as a table.

The stored metrics come with the outlines (``geometryUrl`` carries every metric as a column), so opening
an image of 5,000 spheroids measures nothing: only the spheroids edited since are measured again here, by
the core (``ImageOutlines.metrics``, the same ``cluster.measure`` the server uses). An edited outline has
no ``confidence``: the segmenter's certainty was about the outline it drew (:mod:`cluster.metrics`).
Values in µm are derived from the px ones and the pixel size *now* (``SpheroidMetrics.at_pixel_size``), as
the server derives them, so a pixel size set here changes every row at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cluster import Outlines, SpheroidMetrics, touches_border
from workbench.editing import ImageOutlines

__all__ = ["COLUMNS", "Column", "ImageMeasurements", "MeasuredSpheroid", "stored_metrics"]


@dataclass(frozen=True)
class Column:
    """A column of the table: ``metric`` (a ``SpheroidMetrics`` field, without its unit suffix for a length
    or an area) with its unit in px and in µm (empty: a ratio or a count)."""

    title: str
    metric: str
    px_unit: str = ""
    um_unit: str = ""
    decimals: int = 2

    def field(self, in_um: bool) -> str:
        if not self.px_unit:
            return self.metric
        return f"{self.metric}_{'um2' if self.px_unit == 'px²' else 'um'}" if in_um else f"{self.metric}_px"

    def heading(self, in_um: bool) -> str:
        unit = self.um_unit if in_um else self.px_unit
        return f"{self.title} ({unit})" if unit else self.title


COLUMNS = (
    Column("Area", "area", "px²", "µm²", 1),
    Column("Diameter", "equivalent_diameter", "px", "µm"),
    Column("Perimeter", "perimeter", "px", "µm"),
    Column("Feret max", "feret_max", "px", "µm"),
    Column("Feret min", "feret_min", "px", "µm"),
    Column("Circularity", "circularity", decimals=3),
    Column("Solidity", "solidity", decimals=3),
    Column("Aspect ratio", "aspect_ratio", decimals=2),
    Column("Holes", "hole_count", decimals=0),
    Column("Confidence", "confidence", decimals=2),
)
"""The metrics shown, in order (every metric is in the exports; these are what a reviewer compares)."""


@dataclass(frozen=True)
class MeasuredSpheroid:
    key: int
    """The editor's key (the server's id once saved; < 0 for one drawn and not saved yet)."""
    spheroid_id: int | None
    metrics: SpheroidMetrics
    touches_border: bool


def stored_metrics(outlines: Outlines) -> dict[int, SpheroidMetrics]:
    """The metrics ``geometryUrl`` carries, by spheroid id (those stored without metrics left out)."""
    return {
        spheroid.id: spheroid.metrics
        for spheroid in outlines.spheroids()
        if spheroid.id is not None and spheroid.metrics is not None
    }


class ImageMeasurements:
    """The rows of one image: stored metrics where the outline is still the one loaded, measured here
    where it was edited."""

    def __init__(
        self,
        outlines: ImageOutlines,
        stored: Mapping[int, SpheroidMetrics],
        pixel_size_um: float | None,
    ) -> None:
        self._outlines = outlines
        self._stored = dict(stored)
        self._loaded = {key: outline for key, outline in outlines.items()}
        self.pixel_size_um = pixel_size_um
        self.rows: list[MeasuredSpheroid] = []
        self._row_of: dict[int, int] = {}
        self._measure_all()

    @property
    def in_um(self) -> bool:
        return self.pixel_size_um is not None

    def row_of(self, key: int) -> int | None:
        return self._row_of.get(key)

    def update(self, keys: Iterable[int]) -> tuple[list[int], bool]:
        """Measure these spheroids again (edited, added or deleted): the rows changed, and whether rows
        came or went (then every row index may have moved)."""
        changed: list[int] = []
        for key in keys:
            row = self._row_of.get(key)
            if (row is None) != (key not in self._outlines):
                self._measure_all()
                return list(range(len(self.rows))), True
            if row is not None:
                self.rows[row] = self._measured(key)
                changed.append(row)
        return changed, False

    def set_pixel_size(self, pixel_size_um: float | None) -> None:
        self.pixel_size_um = pixel_size_um
        self._measure_all()

    def headings(self) -> list[str]:
        return ["Spheroid", *(column.heading(self.in_um) for column in COLUMNS), "Touches border"]

    def values(self, row: MeasuredSpheroid) -> list[float | int | str | None]:
        """The row's cells: the id, each column's value (``None``: unknown), "yes"/"no"."""
        metrics = row.metrics.as_dict()
        shown: list[float | int | str | None] = [row.spheroid_id if row.spheroid_id is not None else "new"]
        shown.extend(metrics[column.field(self.in_um)] for column in COLUMNS)
        shown.append("yes" if row.touches_border else "no")
        return shown

    def text(self, row: MeasuredSpheroid) -> list[str]:
        """The row's cells as the table shows them (rounded; "–" for unknown)."""
        cells = self.values(row)
        shown = [str(cells[0])]
        for column, value in zip(COLUMNS, cells[1:-1], strict=True):
            shown.append("–" if value is None else f"{value:,.{column.decimals}f}")
        shown.append(str(cells[-1]))
        return shown

    def tsv(self, rows: Sequence[MeasuredSpheroid]) -> str:
        """Tab-separated, with the header row: full precision (6 significant digits), no thousands
        separators, an empty cell for unknown, one line per spheroid."""
        lines = ["\t".join(self.headings())]
        for row in rows:
            cells = self.values(row)
            lines.append("\t".join(_tsv_cell(cell) for cell in cells))
        return "\n".join(lines) + "\n"

    def _measure_all(self) -> None:
        self.rows = [self._measured(key) for key in self._outlines]
        self._row_of = {row.key: index for index, row in enumerate(self.rows)}

    def _measured(self, key: int) -> MeasuredSpheroid:
        outline = self._outlines[key]
        stored = self._stored.get(key) if self._loaded.get(key) is outline else None
        metrics = stored if stored is not None else self._outlines.metrics(key)
        outlines = self._outlines
        return MeasuredSpheroid(
            key,
            outlines.server_id(key),
            metrics.at_pixel_size(self.pixel_size_um),
            touches_border(outline.spheroid(), outlines.width, outlines.height),
        )


def _tsv_cell(cell: float | int | str | None) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float):
        return f"{cell:.6g}"
    return str(cell)
