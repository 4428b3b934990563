"""The segmentation core: everything that runs on a Dask worker, and how workers are launched.

Image reading (:mod:`cluster.imaging`), segmenters behind one protocol (:mod:`cluster.segmenter`),
masks to polygons with holes (:mod:`cluster.polygons`), morphology metrics (:mod:`cluster.metrics`),
exports (:mod:`cluster.exports`) and the binary outlines format clients load (:mod:`cluster.outlines`).
This package imports neither ``server`` nor ``workbench``, and no Qt, GraphQL or SQL.

**The public face.** ``server`` and ``workbench`` use only the names below, imported from ``cluster``
itself (an import-linter contract keeps them out of the modules behind it), so the modules can move and
change while these names keep their meaning. The names load on first use: ``import cluster`` costs
nothing, and nothing here imports torch or Dask until a name that needs it is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cluster.client import SegmentationJob, SegmentationRequest, submit_images
    from cluster.exceptions import (
        AnnotationImportError,
        GeometryError,
        ImageReadError,
        ImageTooLargeError,
        MetricError,
        NoCapableWorkerError,
        OutlinesFormatError,
        SegmentationError,
    )
    from cluster.exports import ALL_FORMATS, read_coco, read_geojson, write_exports
    from cluster.imaging import DEFAULT_MAX_DECODED_BYTES, ImageInfo, check_image, read_image
    from cluster.launch import ClusterSpec
    from cluster.launch import launch as launch_cluster
    from cluster.launch.control import resolve_target
    from cluster.launch.deployment import Deployment, close_client
    from cluster.launch.deployment import connect as connect_client
    from cluster.methods import (
        DEFAULT_METHOD,
        JOB_PARAMETERS,
        METHODS,
        MethodInfo,
        ModelInfo,
        ParameterInfo,
        checked_parameters,
        describe_methods,
    )
    from cluster.metrics import CONFIDENCE_NOTE, SpheroidMetrics, measure, touches_border
    from cluster.model.card import SHIPPED_MODELS
    from cluster.monitor import ClusterStatus, WorkerStatus, cluster_status
    from cluster.outlines import MEDIA_TYPE as OUTLINES_MEDIA_TYPE
    from cluster.outlines import Outlines, decode_outlines, encode_outlines
    from cluster.pipeline import ImageOutcome
    from cluster.polygons import repair_spheroid
    from cluster.segmentation import Segmentation, Spheroid, as_ring
    from cluster.watch import WorkerChange, WorkerChangeKind, WorkerWatch
    from cluster.worker import ReadSettings, SegmenterSpec, segment_pixels

_PUBLIC: dict[str, tuple[str, str]] = {
    "ALL_FORMATS": ("cluster.exports", "ALL_FORMATS"),
    "AnnotationImportError": ("cluster.exceptions", "AnnotationImportError"),
    "as_ring": ("cluster.segmentation", "as_ring"),
    "ReadSettings": ("cluster.worker", "ReadSettings"),
    "check_image": ("cluster.imaging", "check_image"),
    "checked_parameters": ("cluster.methods", "checked_parameters"),
    "close_client": ("cluster.launch.deployment", "close_client"),
    "cluster_status": ("cluster.monitor", "cluster_status"),
    "decode_outlines": ("cluster.outlines", "decode_outlines"),
    "encode_outlines": ("cluster.outlines", "encode_outlines"),
    "ClusterSpec": ("cluster.launch", "ClusterSpec"),
    "ClusterStatus": ("cluster.monitor", "ClusterStatus"),
    "connect_client": ("cluster.launch.deployment", "connect"),
    "DEFAULT_MAX_DECODED_BYTES": ("cluster.imaging", "DEFAULT_MAX_DECODED_BYTES"),
    "DEFAULT_METHOD": ("cluster.methods", "DEFAULT_METHOD"),
    "Deployment": ("cluster.launch.deployment", "Deployment"),
    "describe_methods": ("cluster.methods", "describe_methods"),
    "GeometryError": ("cluster.exceptions", "GeometryError"),
    "ImageInfo": ("cluster.imaging", "ImageInfo"),
    "ImageOutcome": ("cluster.pipeline", "ImageOutcome"),
    "ImageReadError": ("cluster.exceptions", "ImageReadError"),
    "ImageTooLargeError": ("cluster.exceptions", "ImageTooLargeError"),
    "JOB_PARAMETERS": ("cluster.methods", "JOB_PARAMETERS"),
    "launch_cluster": ("cluster.launch", "launch"),
    "measure": ("cluster.metrics", "measure"),
    "METHODS": ("cluster.methods", "METHODS"),
    "MetricError": ("cluster.exceptions", "MetricError"),
    "MethodInfo": ("cluster.methods", "MethodInfo"),
    "ModelInfo": ("cluster.methods", "ModelInfo"),
    "NoCapableWorkerError": ("cluster.exceptions", "NoCapableWorkerError"),
    "ParameterInfo": ("cluster.methods", "ParameterInfo"),
    "Outlines": ("cluster.outlines", "Outlines"),
    "OUTLINES_MEDIA_TYPE": ("cluster.outlines", "MEDIA_TYPE"),
    "OutlinesFormatError": ("cluster.exceptions", "OutlinesFormatError"),
    "read_coco": ("cluster.exports", "read_coco"),
    "read_geojson": ("cluster.exports", "read_geojson"),
    "read_image": ("cluster.imaging", "read_image"),
    "repair_spheroid": ("cluster.polygons", "repair_spheroid"),
    "resolve_target": ("cluster.launch.control", "resolve_target"),
    "Segmentation": ("cluster.segmentation", "Segmentation"),
    "SHIPPED_MODELS": ("cluster.model.card", "SHIPPED_MODELS"),
    "SegmentationError": ("cluster.exceptions", "SegmentationError"),
    "SegmentationJob": ("cluster.client", "SegmentationJob"),
    "SegmentationRequest": ("cluster.client", "SegmentationRequest"),
    "SegmenterSpec": ("cluster.worker", "SegmenterSpec"),
    "segment_pixels": ("cluster.worker", "segment_pixels"),
    "Spheroid": ("cluster.segmentation", "Spheroid"),
    "SpheroidMetrics": ("cluster.metrics", "SpheroidMetrics"),
    "CONFIDENCE_NOTE": ("cluster.metrics", "CONFIDENCE_NOTE"),
    "submit_images": ("cluster.client", "submit_images"),
    "touches_border": ("cluster.metrics", "touches_border"),
    "WorkerChange": ("cluster.watch", "WorkerChange"),
    "WorkerChangeKind": ("cluster.watch", "WorkerChangeKind"),
    "WorkerStatus": ("cluster.monitor", "WorkerStatus"),
    "WorkerWatch": ("cluster.watch", "WorkerWatch"),
    "write_exports": ("cluster.exports", "write_exports"),
}
"""Public name -> (module, name there)."""

__all__ = [
    "ALL_FORMATS",
    "CONFIDENCE_NOTE",
    "DEFAULT_MAX_DECODED_BYTES",
    "DEFAULT_METHOD",
    "JOB_PARAMETERS",
    "METHODS",
    "OUTLINES_MEDIA_TYPE",
    "SHIPPED_MODELS",
    "AnnotationImportError",
    "ClusterSpec",
    "ClusterStatus",
    "Deployment",
    "GeometryError",
    "ImageInfo",
    "ImageOutcome",
    "ImageReadError",
    "ImageTooLargeError",
    "MethodInfo",
    "MetricError",
    "ModelInfo",
    "NoCapableWorkerError",
    "Outlines",
    "OutlinesFormatError",
    "ParameterInfo",
    "ReadSettings",
    "Segmentation",
    "SegmentationError",
    "SegmentationJob",
    "SegmentationRequest",
    "SegmenterSpec",
    "Spheroid",
    "SpheroidMetrics",
    "WorkerChange",
    "WorkerChangeKind",
    "WorkerStatus",
    "WorkerWatch",
    "as_ring",
    "check_image",
    "checked_parameters",
    "close_client",
    "cluster_status",
    "connect_client",
    "decode_outlines",
    "describe_methods",
    "encode_outlines",
    "launch_cluster",
    "measure",
    "read_coco",
    "read_geojson",
    "read_image",
    "repair_spheroid",
    "resolve_target",
    "segment_pixels",
    "submit_images",
    "touches_border",
    "write_exports",
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'cluster' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
