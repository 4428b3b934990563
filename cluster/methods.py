"""Segmentation methods by name: the registry behind ``--method`` and the worker plugin.

The ResUNet is imported only when asked for, so choosing the classical method never loads torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cluster.exceptions import SegmentationError
from cluster.segmenter import Segmenter

__all__ = ["DEFAULT_METHOD", "METHODS", "make_segmenter"]


def _classical(**options: Any) -> Segmenter:
    from cluster.classical import ClassicalParams, ClassicalSegmenter

    return ClassicalSegmenter(ClassicalParams(**options))


METHODS: dict[str, Callable[..., Segmenter]] = {"classical": _classical}
DEFAULT_METHOD = "classical"


def make_segmenter(method: str = DEFAULT_METHOD, **options: Any) -> Segmenter:
    """Build the segmenter called ``method``; ``options`` are its parameters."""
    try:
        factory = METHODS[method]
    except KeyError:
        known = ", ".join(sorted(METHODS))
        raise SegmentationError(f"unknown segmentation method {method!r}; choose one of: {known}") from None
    try:
        return factory(**options)
    except TypeError as exc:
        raise SegmentationError(f"bad parameters for method {method!r}: {exc}") from exc
