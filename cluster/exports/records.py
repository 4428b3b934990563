"""What every export format shares: images numbered once, unique file stems, metrics measured once.

Numbering is the same in every format: image ``i`` of the input (1-based) is COCO image ``i``;
spheroid ``k`` of an image (1-based, in the order of ``Segmentation.spheroids``) is ``spheroid_id`` ``k``
in the tables, label ``k`` in the mask, the ``k``-th annotation of that image in COCO and the ``k``-th
feature of its GeoJSON file.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from cluster.exceptions import ExportError, GeometryError, MetricError
from cluster.exports.files import unique_stems
from cluster.metrics import SpheroidMetrics, measure, touches_border
from cluster.segmentation import Segmentation, Spheroid

__all__ = ["ExportImage", "clean_number", "metrics_of", "prepare_images", "provenance"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportImage:
    """One image as every exporter sees it."""

    image_id: int
    """1-based position in the export."""
    stem: str
    """File-name stem, unique in this export (see :func:`cluster.exports.files.unique_stems`)."""
    segmentation: Segmentation
    metrics: tuple[SpheroidMetrics | None, ...]
    """One entry per spheroid; ``None`` where the metrics could not be computed."""

    def metric_values(self, index: int) -> dict[str, float | int | None]:
        """Metrics of spheroid ``index`` (0-based) by field name; unknown or non-finite ones ``None``."""
        metrics = self.metrics[index]
        if metrics is None:
            return dict.fromkeys(SpheroidMetrics.names())
        return {name: clean_number(value) for name, value in metrics.as_dict().items()}

    def touches_border(self, index: int) -> bool:
        """Whether spheroid ``index`` (0-based) may be cut by the image's edge (see
        :func:`cluster.metrics.touches_border`)."""
        segmentation = self.segmentation
        return touches_border(segmentation.spheroids[index], segmentation.width, segmentation.height)


def provenance(segmentation: Segmentation) -> dict[str, Any]:
    """What an export says of an image besides its spheroids: size, pixel size and what made them."""
    return {
        "width": segmentation.width,
        "height": segmentation.height,
        "pixel_size_um": segmentation.pixel_size_um,
        "model_name": segmentation.model_name,
        "model_version": segmentation.model_version,
        "parameters": segmentation.parameters,
        "segmentation_version": segmentation.version,
    }


def clean_number(value: object) -> float | int | None:
    """``value`` as a plain ``int`` or finite ``float``; ``None`` for None, NaN, infinities, non-numbers."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def metrics_of(spheroid: Spheroid, pixel_size_um: float | None, place: str) -> SpheroidMetrics | None:
    """The spheroid's stored metrics, else freshly measured ones, else ``None`` (with a logged warning)."""
    if spheroid.metrics is not None:
        return spheroid.metrics
    try:
        return measure(spheroid, pixel_size_um)
    except (MetricError, GeometryError) as error:
        logger.warning("%s: metrics left empty: %s", place, error)
        return None


def prepare_images(segmentations: Sequence[Segmentation]) -> list[ExportImage]:
    """Number the images, give each a unique stem and the metrics of each spheroid.

    Raises :class:`ExportError` for an image without a positive width and height or with a pixel size that
    is not a positive number, before anything is written.
    """
    for segmentation in segmentations:
        if not (_positive_int(segmentation.width) and _positive_int(segmentation.height)):
            raise ExportError(
                f"{segmentation.image_name}: width and height must be positive whole numbers of pixels, "
                f"not {segmentation.width!r} x {segmentation.height!r}"
            )
        size = segmentation.pixel_size_um
        if size is not None and not (isinstance(size, Real) and math.isfinite(size) and size > 0):
            raise ExportError(
                f"{segmentation.image_name}: pixel_size_um must be a positive number of micrometres "
                f"or None, not {size!r}"
            )
    stems = unique_stems([segmentation.stem for segmentation in segmentations])
    images: list[ExportImage] = []
    for image_id, (segmentation, stem) in enumerate(zip(segmentations, stems, strict=True), start=1):
        metrics = tuple(
            metrics_of(spheroid, segmentation.pixel_size_um, f"{segmentation.image_name}: spheroid {number}")
            for number, spheroid in enumerate(segmentation.spheroids, start=1)
        )
        images.append(ExportImage(image_id=image_id, stem=stem, segmentation=segmentation, metrics=metrics))
    return images


def _positive_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and int(value) > 0
