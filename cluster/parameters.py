"""A segmentation method's parameters, each declared once: its default, its range and what it means.

A parameters dataclass (:class:`~cluster.classical.ClassicalParams`,
:class:`~cluster.model.segmenter.ResUNetParams`) declares each field with :func:`parameter`. The same
declaration is read by the dataclass's range check (:func:`check_ranges`, from ``__post_init__``), by
:func:`cluster.methods.checked_parameters` (names and types) and by :func:`cluster.methods.describe_methods`,
the schema a client builds its method form from. So what a form offers and what a job accepts cannot drift::

    @dataclass(frozen=True)
    class Params:
        threshold: float = parameter(0.5, "Probability above which a pixel is foreground.", above=0, below=1)

        def __post_init__(self) -> None:
            check_ranges(self)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cluster.exceptions import SegmentationError

__all__ = ["Range", "check_ranges", "choices_of", "description_of", "parameter", "range_of"]

_CHOICES = "choices"
_DESCRIPTION = "description"
_RANGE = "range"
_UNSET = "unset"


@dataclass(frozen=True)
class Range:
    """The values a number may take: ``minimum``/``maximum`` inclusive, ``above``/``below`` exclusive."""

    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None

    def __contains__(self, value: float) -> bool:
        return not (
            (self.minimum is not None and value < self.minimum)
            or (self.maximum is not None and value > self.maximum)
            or (self.above is not None and value <= self.above)
            or (self.below is not None and value >= self.below)
        )

    def __str__(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"within {self.minimum:g}..{self.maximum:g}"
        if self.above is not None and self.below is not None:
            return f"between {self.above:g} and {self.below:g}"
        parts = [
            f"{self.minimum:g} or more" if self.minimum is not None else "",
            f"more than {self.above:g}" if self.above is not None else "",
            f"{self.maximum:g} or less" if self.maximum is not None else "",
            f"less than {self.below:g}" if self.below is not None else "",
        ]
        return " and ".join(part for part in parts if part)


def parameter(
    default: Any,
    description: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    unset: str = "",
    choices: Sequence[str] = (),
) -> Any:
    """A dataclass field with its ``default``, ``description`` and range (or, for a name, its ``choices``);
    ``unset`` says what leaving a parameter that may be ``None`` unset means (it ends the refusal
    message)."""
    limits = Range(minimum, maximum, above, below)
    metadata: dict[str, Any] = {_DESCRIPTION: description, _UNSET: unset}
    if limits != Range():
        metadata[_RANGE] = limits
    if choices:
        metadata[_CHOICES] = tuple(choices)
    return dataclasses.field(default=default, metadata=metadata)


def description_of(field: dataclasses.Field[Any]) -> str:
    return str(field.metadata.get(_DESCRIPTION, ""))


def range_of(field: dataclasses.Field[Any]) -> Range | None:
    found = field.metadata.get(_RANGE)
    return found if isinstance(found, Range) else None


def choices_of(field: dataclasses.Field[Any]) -> tuple[str, ...]:
    """The values a parameter that names one of a few things may take (empty: any of its type)."""
    return tuple(field.metadata.get(_CHOICES, ()))


def check_ranges(params: object) -> None:
    """Raise :class:`SegmentationError` naming the first field of ``params`` outside its range or
    choices."""
    for field in dataclasses.fields(params):  # type: ignore[arg-type]
        limits, value = range_of(field), getattr(params, field.name)
        choices = choices_of(field)
        if choices and value not in choices:
            raise SegmentationError(f"{field.name} must be one of {', '.join(choices)}, not {value!r}")
        if limits is None or value is None or value in limits:
            continue
        unset = field.metadata.get(_UNSET)
        alternative = f", or {unset}" if unset else ""
        raise SegmentationError(f"{field.name} must be {limits}{alternative}, not {value}")
