"""Errors raised by the segmentation core.

Every error a user can cause carries a message that names the file or field and says what was wrong::

    SpherosegError
    ├── ImageReadError            an image file could not be turned into pixels (``.path`` names it)
    │   ├── UnsupportedFormatError    the bytes are no format we read (whatever the file name says)
    │   ├── CorruptImageError         the format is known but the data is damaged or truncated
    │   ├── EmptyImageError           zero bytes, or an image with no pixels
    │   ├── ImageTooLargeError        more pixels or decoded bytes than the limit; refused before decoding
    │   └── SourceUnavailableError    a reference (path, s3:// key, URL) could not be fetched
    ├── GeometryError             a ring or polygon is invalid and cannot be repaired
    ├── OutlinesFormatError       bytes that are no readable outlines file (truncated, corrupt, forged, newer)
    ├── MetricError               a metric cannot be computed for this shape
    ├── SegmentationError         a segmenter failed on an image
    ├── ExportError               results could not be written
    ├── AnnotationImportError     a COCO or GeoJSON file could not be read back
    └── ClusterError              a Dask cluster could not be launched, reached or used
        ├── ClusterSpecError          a cluster spec is invalid or needs a package that is missing
        ├── ClusterNotFoundError      no cluster is deployed, or its scheduler does not answer
        └── NoCapableWorkerError      tasks wait for resources no worker offers (GPU tasks, no GPU worker)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "AnnotationImportError",
    "ClusterError",
    "ClusterNotFoundError",
    "ClusterSpecError",
    "CorruptImageError",
    "EmptyImageError",
    "ExportError",
    "GeometryError",
    "ImageReadError",
    "ImageTooLargeError",
    "MetricError",
    "NoCapableWorkerError",
    "OutlinesFormatError",
    "SegmentationError",
    "SourceUnavailableError",
    "SpherosegError",
    "UnsupportedFormatError",
]


class SpherosegError(Exception):
    """Base class of every error the segmentation core raises on purpose."""


class ImageReadError(SpherosegError):
    """An image could not be read; ``path`` names the file (or the upload's name)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Two constructor arguments: pickle (Dask results, process pools) must be told how to rebuild it.
        return (type(self), (self.path, self.reason))


class UnsupportedFormatError(ImageReadError):
    """The bytes are not an image format we read."""


class CorruptImageError(ImageReadError):
    """The format is known, but the data is damaged or truncated."""


class EmptyImageError(ImageReadError):
    """The file holds no bytes, or the image has no pixels."""


class ImageTooLargeError(ImageReadError):
    """The image has more pixels, or one plane more decoded bytes, than allowed; refused before decoding."""


class GeometryError(SpherosegError):
    """A ring or polygon is invalid and cannot be repaired."""


class OutlinesFormatError(SpherosegError):
    """Bytes given to :func:`cluster.outlines.decode_outlines` are not a readable outlines file: truncated,
    corrupt, forged, or written in a newer format version."""


class MetricError(SpherosegError):
    """A metric cannot be computed for this shape."""


class SegmentationError(SpherosegError):
    """A segmenter failed on an image."""


class ExportError(SpherosegError):
    """Results could not be written."""


class AnnotationImportError(SpherosegError):
    """A COCO or GeoJSON annotation file could not be read back."""


class SourceUnavailableError(ImageReadError):
    """An image reference (local path, ``s3://`` key, HTTP(S) URL) could not be fetched.

    ``transient`` is true when trying again later may succeed (a timeout, a 503, a dropped connection).
    """

    def __init__(self, path: str | Path, reason: str, transient: bool = False) -> None:
        super().__init__(path, reason)
        self.transient = transient

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.reason, self.transient))


class ClusterError(SpherosegError):
    """A Dask cluster could not be launched, reached or used."""


class ClusterSpecError(ClusterError):
    """A cluster spec is invalid or incomplete, or its backend needs a package that is not installed."""


class ClusterNotFoundError(ClusterError):
    """No cluster is deployed (no state file, no ``--scheduler``), or its scheduler does not answer."""


class NoCapableWorkerError(ClusterError):
    """Tasks wait for resources that no worker in the cluster offers, e.g. GPU tasks and no GPU worker."""
