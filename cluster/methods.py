"""Segmentation methods by name: the registry behind ``--method`` and the worker plugin.

The ResUNet is imported only when asked for, so choosing the classical method never loads torch. The
default is the ResUNet wherever it can run (torch and the shipped weights present), else the classical.
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


def _resunet(**options: Any) -> Segmenter:
    from cluster.model.segmenter import ResUNetParams, ResUNetSegmenter

    return ResUNetSegmenter(ResUNetParams(**options))


def _resunet_available() -> bool:
    """torch is installed (the ``model`` extra) and the shipped weights are in place; imports nothing."""
    from importlib.util import find_spec

    from cluster.model.card import shipped_card_path

    installed = find_spec("torch") is not None and find_spec("safetensors") is not None
    return installed and shipped_card_path().is_file()


METHODS: dict[str, Callable[..., Segmenter]] = {"classical": _classical, "resunet": _resunet}
DEFAULT_METHOD = "resunet" if _resunet_available() else "classical"
"""The ResUNet beats the classical baseline on the held-out synthetic set (see resources/models/*.card.json);
installs without the ``model`` extra fall back to the classical method."""


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
