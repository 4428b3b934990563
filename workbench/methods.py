"""The segmentation methods a server offers, as the segment form shows them, and which field a refusal
names.

:func:`load_methods` reads the ``methods`` query: each method with its parameters (type, default, bounds,
description) and its models. A form built from them offers exactly what ``segmentImages`` accepts; when
the server still refuses (an exclusive bound the form cannot show, a combination), :func:`refused_field`
finds the parameter its message names, so the form shows the message at that field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.api import ApiError, LabClient

__all__ = ["Method", "Model", "Parameter", "load_methods", "refused_field"]


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str
    """integer, number, boolean or text."""
    default: Any
    description: str
    nullable: bool = False
    minimum: float | None = None
    """The smallest value allowed; an exclusive bound (``above``) is given here too, the server refuses it."""
    maximum: float | None = None
    above: bool = False
    """``minimum`` itself is not allowed (the value must be greater)."""
    below: bool = False
    choices: tuple[str, ...] = ()
    """The values it may take, when it names one of a few things (empty: any value of its kind)."""

    @property
    def label(self) -> str:
        """The name as a person reads it: "min_diameter_px" → "Min diameter px"."""
        words = self.name.replace("_", " ")
        return words[:1].upper() + words[1:]

    @property
    def bounds(self) -> str:
        """The allowed range in words ("0 < value < 1", "≥ 64 and ≤ 8192", ""); shown in the tooltip."""
        low = "" if self.minimum is None else f"{'>' if self.above else '≥'} {self.minimum:g}"
        high = "" if self.maximum is None else f"{'<' if self.below else '≤'} {self.maximum:g}"
        return " and ".join(part for part in (low, high) if part)

    @classmethod
    def of(cls, found: Mapping[str, Any]) -> Parameter:
        minimum, above = found.get("minimum"), False
        if minimum is None and found.get("exclusiveMinimum") is not None:
            minimum, above = found["exclusiveMinimum"], True
        maximum, below = found.get("maximum"), False
        if maximum is None and found.get("exclusiveMaximum") is not None:
            maximum, below = found["exclusiveMaximum"], True
        return cls(
            found["name"],
            found["type"],
            found["default"],
            found.get("description") or "",
            bool(found.get("nullable")),
            minimum,
            maximum,
            above,
            below,
            tuple(found.get("choices") or ()),
        )


@dataclass(frozen=True)
class Model:
    name: str
    version: str
    created: str | None = None
    notes: str = ""
    key: str | None = None
    """The value of the method's ``model`` parameter that chooses it (``None``: nothing to choose)."""


@dataclass(frozen=True)
class Method:
    name: str
    default: bool
    available: bool
    parameters: tuple[Parameter, ...]
    models: tuple[Model, ...]

    @property
    def model(self) -> Model | None:
        """The default model (the first listed)."""
        return self.models[0] if self.models else None

    def model_chosen(self, values: Mapping[str, Any]) -> Model | None:
        """The model a job with parameter ``values`` runs: the one its ``model`` names, else the default."""
        chosen = values.get("model")
        return next((model for model in self.models if model.key == chosen), self.model)

    def defaults(self) -> dict[str, Any]:
        return {parameter.name: parameter.default for parameter in self.parameters}


async def load_methods(client: LabClient) -> list[Method]:
    """The server's methods, the default first, then by name."""
    found = (await client.call("Methods"))["methods"]
    methods = [
        Method(
            item["name"],
            bool(item["default"]),
            bool(item["available"]),
            tuple(Parameter.of(parameter) for parameter in item["parameters"]),
            tuple(
                Model(
                    model["name"],
                    model["version"],
                    model.get("created"),
                    model.get("notes") or "",
                    model.get("key"),
                )
                for model in item["models"]
            ),
        )
        for item in found
    ]
    return sorted(methods, key=lambda method: (not method.default, method.name))


def refused_field(error: ApiError, parameters: Sequence[str]) -> str | None:
    """The form field a refusal of ``segmentImages`` is about: one of ``parameters`` when the message
    names it (the server's field is then ``parameters``), ``method`` for the method, else ``None``."""
    field = str(error.extensions.get("field", ""))
    if field == "parameters":
        message = str(error.extensions.get("message", error.message))  # "…method 'x': threshold must be…"
        named = [name for name in parameters if re.search(rf"\b{re.escape(name)}\b", message)]
        if named:
            return min(named, key=lambda name: message.find(name))
    if field == "method":
        return "method"
    return None
