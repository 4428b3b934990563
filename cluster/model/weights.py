"""Saving and loading ResUNet weights as safetensors (never pickles), checked against their model card.

::

    model, card = load_model()                        # the shipped weights (resources/models)
    model, card = load_model(Path("lab/resunet-ft.safetensors"))
    save_model(model, Path("out/resunet.safetensors"), card_fields)   # writes weights + card
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cluster.model.card import (
    WEIGHTS_SUFFIX,
    ModelCard,
    _atomic_write,
    card_path,
    file_sha256,
    read_card,
    shipped_card_path,
    shipped_model_dir,
    weights_path,
    write_card,
)
from cluster.model.exceptions import WeightsError
from cluster.model.network import ResUNet, ResUNetConfig

__all__ = ["is_shipped", "load_model", "save_model"]


def load_model(path: Path | None = None) -> tuple[ResUNet, ModelCard]:
    """Load weights (a ``.safetensors`` file or its ``.card.json``; the shipped ones when ``None``).

    Raises :class:`WeightsError` when the card or the weights are missing, the checksum does not match
    the card, the file is not valid safetensors, or its tensors do not fit the card's architecture.
    """
    card_file = card_path(path) if path is not None else shipped_card_path()
    card = read_card(card_file)
    weights = weights_path(card, card_file)
    if not weights.is_file():
        raise WeightsError(f"{weights}: weights file not found (named by {card_file})")
    actual = file_sha256(weights)
    if actual != card.sha256:
        raise WeightsError(
            f"{weights}: checksum {actual[:12]}… does not match its model card ({card.sha256[:12]}…); "
            "the file is corrupt or was replaced. Reinstall it or point to weights with a matching card."
        )
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{weights}: not a readable safetensors file ({exc})") from exc
    try:
        model = ResUNet(ResUNetConfig.from_dict(card.architecture))
        model.load_state_dict(state, strict=True)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise WeightsError(f"{weights}: tensors do not fit the architecture in its card ({exc})") from exc
    model.eval()
    return model, card


def is_shipped(path: Path) -> bool:
    """Whether ``path`` lies in the folder of the shipped weights (which fine-tuning never writes)."""
    try:
        return path.resolve().parent == shipped_model_dir().resolve()
    except OSError:
        return False


def save_model(
    model: ResUNet, path: Path, card_fields: dict[str, Any], *, allow_shipped: bool = False
) -> ModelCard:
    """Write ``model`` to ``path`` (safetensors) and its card next to it; returns the card.

    ``card_fields`` fills the card (``name``, ``version``, ``working_size``, ``training``, …); the checksum,
    architecture and parameter count are filled in here. Refuses to write into the shipped models folder
    unless ``allow_shipped`` (only the command that makes the shipped weights sets it).
    """
    if not path.name.endswith(WEIGHTS_SUFFIX):
        raise WeightsError(f"{path}: weights files must end in {WEIGHTS_SUFFIX}")
    if is_shipped(path) and not allow_shipped:
        raise WeightsError(
            f"{path}: refusing to write into the shipped models folder; choose another output folder"
        )
    state = {
        name: tensor.detach().to("cpu", torch.float32).contiguous()
        for name, tensor in model.state_dict().items()
    }
    # One metadata entry: safetensors writes several in no fixed order, which would change the checksum.
    metadata = {"spheroseg": json.dumps({"format": "resunet", "architecture": model.config.to_dict()})}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    save_file(state, str(temporary), metadata=metadata)
    _atomic_write(path, temporary.read_bytes())
    temporary.unlink()
    fields = dict(card_fields)
    fields.update(
        weights_file=path.name,
        sha256=file_sha256(path),
        architecture=model.config.to_dict(),
        parameters=model.parameter_count(),
    )
    fields.setdefault("created", ModelCard.today())
    card = ModelCard(**fields)
    write_card(card, path)
    return card
