"""Segmentation methods by name: the registry behind ``--method`` and the worker plugin.

The ResUNet is imported only when asked for, so choosing the classical method never loads torch. The
default is the ResUNet wherever it can run (torch and the shipped weights present), else the classical.

A method's parameters are the fields of its parameters dataclass (:class:`~cluster.classical.ClassicalParams`,
:class:`~cluster.model.segmenter.ResUNetParams`). :func:`checked_parameters` checks a mapping of them
(names, types, ranges) before anything is built or sent to a worker, so the command line, the workers and
the server all refuse bad parameters with the same message::

    checked_parameters("resunet", {"threshold": 1})   # {"threshold": 1.0}
    checked_parameters("resunet", {"weights": "/etc/passwd"}, allowed=JOB_PARAMETERS["resunet"])  # error

:func:`describe_methods` tells a client the same thing before it asks: each method with the parameters a
job may set (type, default, range, description, read from the declarations that the check reads, see
:mod:`cluster.parameters`) and its models (from their model cards; no torch is imported).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import reprlib
import sys
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cluster.exceptions import SegmentationError
from cluster.parameters import choices_of, description_of, range_of
from cluster.segmenter import Segmenter

__all__ = [
    "DEFAULT_METHOD",
    "JOB_PARAMETERS",
    "METHODS",
    "MethodInfo",
    "ModelInfo",
    "ParameterInfo",
    "checked_parameters",
    "describe_methods",
    "make_segmenter",
]

log = logging.getLogger(__name__)


def _classical(**options: Any) -> Segmenter:
    from cluster.classical import ClassicalParams, ClassicalSegmenter

    return ClassicalSegmenter(ClassicalParams(**options))


def _resunet(**options: Any) -> Segmenter:
    if not _resunet_available():  # said now, not as each image fails for want of torch
        raise SegmentationError(
            "the ResUNet cannot run here: this install has no torch or no shipped weights (the lean "
            "desktop bundle, or pip without the 'model' extra). Use --method classical, send the job to "
            "a lab server or a cluster that has it, or install spheroseg-workbench[model]"
        )
    from cluster.model.segmenter import ResUNetParams, ResUNetSegmenter

    return ResUNetSegmenter(ResUNetParams(**options))


def _classical_parameters() -> type[Any]:
    from cluster.classical import ClassicalParams

    return ClassicalParams


def _resunet_parameters() -> type[Any]:
    # cluster.model.segmenter imports torch only when it loads the weights, so checking stays torch-free.
    from cluster.model.segmenter import ResUNetParams

    return ResUNetParams


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

_PARAMETER_CLASSES: dict[str, Callable[[], type[Any]]] = {
    "classical": _classical_parameters,
    "resunet": _resunet_parameters,
}

JOB_PARAMETERS: dict[str, frozenset[str]] = {
    "classical": frozenset(
        {
            "working_size",
            "background_degree",
            "smoothing_sigma",
            "threshold_z",
            "texture_z",
            "opening_radius",
            "closing_radius",
            "min_diameter_px",
            "min_contrast",
            "max_thinness",
            "min_lumen_fraction",
            "split_touching",
            "split_depth",
        }
    ),
    "resunet": frozenset({"model", "threshold", "min_diameter_px", "max_downscale"}),
}
"""The parameters a user may choose for one job on a server: how to segment, never where or with what.

The ResUNet's ``model`` names one of the shipped models (its choices), while its ``weights`` is a path on
the worker's machine (a user must not point it at files there); and
its ``device``, ``precision``, ``threads`` and ``batch_size`` fit the lab's hardware: those belong to the
workers' settings. Listed name by name rather than "all but these", so a new field of a parameters
dataclass stays out of users' reach until someone decides it is safe to offer."""


def make_segmenter(method: str = DEFAULT_METHOD, **options: Any) -> Segmenter:
    """Build the segmenter called ``method``; ``options`` are its parameters, checked by
    :func:`checked_parameters` (a :class:`~cluster.exceptions.SegmentationError` names a bad one)."""
    return _factory(method)(**checked_parameters(method, options))


def checked_parameters(
    method: str, parameters: object, *, allowed: Collection[str] | None = None
) -> dict[str, Any]:
    """``parameters`` of ``method``, checked against its parameters dataclass; whole numbers given for
    decimal parameters come back as floats. Only the given names come back (the rest keep their defaults).

    ``allowed`` narrows the names a caller may set (e.g. :data:`JOB_PARAMETERS` on a server).
    :class:`~cluster.exceptions.SegmentationError` names the first bad parameter: one the method does not
    have or ``allowed`` leaves out, a value of the wrong type (``True`` is no number; ``None`` only where
    the parameter may be unset), or a value out of range.
    """
    _factory(method)  # an unknown method is told as such, not as bad parameters
    params_class = _PARAMETER_CLASSES[method]()
    if not isinstance(parameters, Mapping):
        raise _bad(method, f"give a mapping of parameter names to values, not {type(parameters).__name__}")
    names = sorted(field.name for field in dataclasses.fields(params_class) if field.init)
    choosable = names if allowed is None else [name for name in names if name in allowed]
    hints = typing.get_type_hints(params_class)
    checked: dict[str, Any] = {}
    for name in sorted(parameters, key=str):
        if name not in choosable:
            raise _bad(method, _not_choosable(name, names, choosable))
        checked[name] = _checked_value(method, name, hints[name], parameters[name])
    try:
        params_class(**checked)  # the dataclass's own range checks
    except SegmentationError as error:
        raise _bad(method, str(error)) from error
    return checked


def _factory(method: str) -> Callable[..., Segmenter]:
    try:
        return METHODS[method]
    except KeyError:
        known = ", ".join(sorted(METHODS))
        raise SegmentationError(f"unknown segmentation method {method!r}; choose one of: {known}") from None


def _bad(method: str, detail: str) -> SegmentationError:
    return SegmentationError(f"bad parameters for method {method!r}: {detail}")


def _not_choosable(name: object, names: Collection[str], choosable: Collection[str]) -> str:
    listed = ", ".join(choosable) or "none"
    if name in names:
        return f"{name} cannot be set here (it is a setting of the workers); choose from: {listed}"
    return f"unknown parameter {reprlib.repr(name)}; known parameters: {listed}"


def _checked_value(method: str, name: str, hint: Any, value: Any) -> Any:
    if not _accepts(hint, value):
        raise _bad(method, f"{name} must be {_describe(hint)}, not {reprlib.repr(value)}")
    if isinstance(value, int) and not isinstance(value, bool) and not _accepts_exactly(hint, int):
        return float(value)  # the dataclass promises a float; 1 from JSON means 1.0
    return value


def _accepts(hint: Any, value: Any) -> bool:
    if _is_union(hint):
        return any(_accepts(member, value) for member in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # True is an int to Python, but no number to someone setting a threshold
    if hint is int:
        return isinstance(value, int)
    if hint is float:
        if isinstance(value, int):
            return abs(value) <= sys.float_info.max
        return isinstance(value, float) and math.isfinite(value)
    return isinstance(hint, type) and isinstance(value, hint)


def _accepts_exactly(hint: Any, kind: type) -> bool:
    """Whether ``kind`` itself is ``hint`` or one of its union's members."""
    return hint is kind or (_is_union(hint) and kind in typing.get_args(hint))


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


_KIND_NAMES: dict[Any, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
    type(None): "none",
}


def _describe(hint: Any) -> str:
    if _is_union(hint):
        return " or ".join(_describe(member) for member in typing.get_args(hint))
    return _KIND_NAMES.get(hint, getattr(hint, "__name__", str(hint)))


@dataclass(frozen=True)
class ParameterInfo:
    """One parameter a job may set, as its declaration says (:mod:`cluster.parameters`)."""

    name: str
    kind: str
    """``integer``, ``number``, ``boolean`` or ``text``."""
    nullable: bool
    default: Any
    minimum: float | None
    maximum: float | None
    above: float | None
    """Exclusive lower bound."""
    below: float | None
    """Exclusive upper bound."""
    description: str
    choices: tuple[str, ...] = ()
    """The values a parameter naming one of a few things may take; empty: any value of its kind."""


@dataclass(frozen=True)
class ModelInfo:
    """What a method's model is and how well it did, from its model card (the classical method has none,
    so its version comes from the code and its scores from the card that compared it with the ResUNet)."""

    name: str
    version: str
    created: str | None
    training_data: str | None
    held_out_set: str | None
    scores: dict[str, dict[str, float]]
    """Metric -> ``{"median": …, "mean": …, "worst5": …}`` on the held-out set."""
    sha256: str | None = None
    license: str | None = None
    notes: str = ""
    key: str | None = None
    """The value of the method's ``model`` parameter that chooses it; ``None`` where there is no choice."""


@dataclass(frozen=True)
class MethodInfo:
    name: str
    default: bool
    available: bool
    """Whether this install can run it (the ResUNet needs torch and its weights)."""
    parameters: tuple[ParameterInfo, ...]
    models: tuple[ModelInfo, ...]


_KINDS = {bool: "boolean", int: "integer", float: "number", str: "text"}


def describe_methods() -> list[MethodInfo]:
    """Every method by name, which one is the default, what a job may set (:data:`JOB_PARAMETERS`, with
    the declared types, defaults and ranges :func:`checked_parameters` checks against) and its models."""
    cards = _shipped_cards()
    return [
        MethodInfo(
            name=method,
            default=method == DEFAULT_METHOD,
            available=method != "resunet" or _resunet_available(),
            parameters=parameter_schema(method),
            models=_models(method, cards),
        )
        for method in sorted(METHODS)
    ]


def parameter_schema(method: str) -> tuple[ParameterInfo, ...]:
    """The parameters of ``method`` a job may set, in their declaration order."""
    _factory(method)  # an unknown method is told as such
    params_class = _PARAMETER_CLASSES[method]()
    hints = typing.get_type_hints(params_class)
    found = []
    for field in dataclasses.fields(params_class):
        if field.name not in JOB_PARAMETERS[method]:
            continue
        hint = hints[field.name]
        members = typing.get_args(hint) if _is_union(hint) else (hint,)
        kinds = [member for member in members if member is not type(None)]
        limits = range_of(field)
        found.append(
            ParameterInfo(
                name=field.name,
                kind=_KINDS.get(kinds[0], "text") if len(kinds) == 1 else "text",
                nullable=type(None) in members,
                default=field.default,
                minimum=limits.minimum if limits else None,
                maximum=limits.maximum if limits else None,
                above=limits.above if limits else None,
                below=limits.below if limits else None,
                description=description_of(field),
                choices=choices_of(field),
            )
        )
    return tuple(found)


def _shipped_cards() -> dict[str, Any]:
    """The shipped models' cards by stem, the default first; none for an install without the weights."""
    from cluster.model.card import SHIPPED_MODELS, read_card, shipped_card_path
    from cluster.model.exceptions import WeightsError

    cards = {}
    for stem in SHIPPED_MODELS:
        try:
            cards[stem] = read_card(shipped_card_path(stem))
        except WeightsError as error:  # an install without the weights: the ResUNet has no model to show
            log.info("no model card: %s", error)
    return cards


def _models(method: str, cards: dict[str, Any]) -> tuple[ModelInfo, ...]:
    if method == "classical":
        from cluster.classical import ClassicalSegmenter
        from cluster.model.card import SHIPPED_STEM

        # Its scores come from the default model's card, which compared the two on one held-out set.
        scores, held_out_set = _scores(cards.get(SHIPPED_STEM), method)
        data = "none: a fixed image-processing pipeline with no training"
        return (ModelInfo("classical", ClassicalSegmenter.version, None, data, held_out_set, scores),)
    if method != "resunet":
        return ()
    models = []
    for stem, card in cards.items():
        scores, held_out_set = _scores(card, method)
        training = card.training.get("data") if isinstance(card.training, dict) else None
        models.append(
            ModelInfo(
                card.name,
                card.version,
                card.created or None,
                training,
                held_out_set,
                scores,
                sha256=card.sha256,
                license=card.license,
                notes=card.notes,
                key=stem,
            )
        )
    return tuple(models)


def _scores(card: Any, method: str) -> tuple[dict[str, dict[str, float]], str | None]:
    """``method``'s held-out scores in ``card``, and the set they come from (nothing without scores)."""
    validation: dict[str, Any] = dict(card.validation) if card is not None else {}
    found = validation.get(method)
    scores: dict[str, dict[str, float]] = dict(found) if isinstance(found, dict) else {}
    return scores, validation.get("set") if scores else None
