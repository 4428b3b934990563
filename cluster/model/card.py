"""Model cards: what a weights file is, how it was made, how well it does, and its checksum.

Every weights file ``<stem>.safetensors`` has a card ``<stem>.card.json`` next to it. Loading reads the card
first, checks the weights' sha256 against it and rebuilds the network from the card's architecture, so a
corrupt, truncated or swapped weights file is refused with a clear error instead of segmenting badly.

No torch here: the server can show cards without loading the model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cluster.model.exceptions import WeightsError

__all__ = [
    "CARD_SUFFIX",
    "SHIPPED_MODELS",
    "SHIPPED_STEM",
    "WEIGHTS_SUFFIX",
    "ModelCard",
    "card_path",
    "file_sha256",
    "read_card",
    "shipped_card_path",
    "shipped_model_dir",
    "weights_path",
    "write_card",
]

WEIGHTS_SUFFIX = ".safetensors"
CARD_SUFFIX = ".card.json"
SHIPPED_STEM = "resunet-v2"
"""File stem of the default weights shipped in ``resources/models/``."""
SHIPPED_MODELS = {
    "resunet-v2": "ResUNet 2, the newest: better on small, blurred and border-cut spheroids",
    "resunet-v1": "ResUNet 1, the first: to repeat or compare earlier results",
}
"""Stem and a line on each shipped model, the default first: older versions stay, so a lab can repeat and
compare results made with them (``ResUNetParams.model``, the napari widget's Method list)."""

MODEL_DIR_ENV = "SPHEROSEG_MODEL_DIR"


@dataclass(frozen=True)
class ModelCard:
    """The facts stored with a weights file (see the module docstring)."""

    name: str
    version: str
    weights_file: str
    sha256: str
    architecture: dict[str, Any]
    parameters: int
    working_size: int
    created: str
    outputs: tuple[str, ...] = ("foreground", "core")
    input: str = (
        "one grayscale plane, normalised with cluster.imaging.normalize (0.5-99.5 percentiles to 0..1), "
        "area-averaged so the long side is at most working_size pixels, edge-padded to a multiple of 32"
    )
    training: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    base_model: dict[str, Any] | None = None
    license: str = "MIT"
    notes: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        data["outputs"] = list(self.outputs)
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "model card") -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WeightsError(f"{source}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise WeightsError(f"{source}: expected a JSON object")
        known = set(cls.__dataclass_fields__)
        missing = {"name", "version", "weights_file", "sha256", "architecture", "parameters", "working_size"}
        missing -= set(data)
        if missing:
            raise WeightsError(f"{source}: missing field(s) {', '.join(sorted(missing))}")
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("created", "")
        values["outputs"] = tuple(values.get("outputs", ("foreground", "core")))
        try:
            return cls(**values)
        except TypeError as exc:
            raise WeightsError(f"{source}: {exc}") from exc

    def with_validation(self, validation: dict[str, Any]) -> ModelCard:
        return replace(self, validation=validation)

    @staticmethod
    def today() -> str:
        return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_path(path: Path) -> Path:
    """The card of a weights file (or the card itself when given one)."""
    if path.name.endswith(CARD_SUFFIX):
        return path
    return path.with_name(path.name.removesuffix(WEIGHTS_SUFFIX) + CARD_SUFFIX)


def weights_path(card: ModelCard, card_file: Path) -> Path:
    return card_file.parent / card.weights_file


def read_card(path: Path) -> ModelCard:
    """The card of ``path`` (a weights file or a card), or a :class:`WeightsError` saying what is wrong."""
    card_file = card_path(path)
    try:
        text = card_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WeightsError(
            f"{card_file}: model card not found; every weights file needs its card next to it"
        ) from None
    except OSError as exc:
        raise WeightsError(f"{card_file}: cannot read the model card ({exc})") from exc
    return ModelCard.from_json(text, str(card_file))


def write_card(card: ModelCard, path: Path) -> Path:
    """Write ``card`` for weights file ``path`` atomically; returns the card's path."""
    target = card_path(path)
    _atomic_write(target, card.to_json().encode())
    return target


def _atomic_write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        Path(temporary).chmod(0o644)  # mkstemp makes 0600; weights and cards are meant to be shared
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def shipped_model_dir() -> Path:
    """Where the shipped weights are: ``$SPHEROSEG_MODEL_DIR``, else ``resources/models`` in the source."""
    configured = os.environ.get(MODEL_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "resources" / "models"


def shipped_card_path(stem: str = SHIPPED_STEM) -> Path:
    """The card of shipped model ``stem`` (one of :data:`SHIPPED_MODELS`; the default one if not given)."""
    return shipped_model_dir() / f"{stem}{CARD_SUFFIX}"
