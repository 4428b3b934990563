"""Training the ResUNet from scratch on synthetic scenes, training it further, and fine-tuning it on a
lab's reviewed images.

The recipe (:class:`TrainConfig` defaults) is the one that made version 1 from scratch (then on the ``v1``
scenes); version 2.0 is version 1 trained further, in two stages (:func:`train_further`,
:data:`FURTHER_TRAINING`), on the wider ``v2`` scenes, 2.1 is 2.0 trained a third, shorter stage at a
lower rate on the ``v2.1`` scenes, and 2.2 is 2.1 trained a fourth stage at that rate on the ``v2.2``
scenes (the options its card's stages name):

- **Data.** A pool of ``pool_size`` synthetic samples (:func:`cluster.model.data.synthetic_sample`, the
  ranges named by ``scenes``, scene seeds ``seed * 1_000_000 + i``), ``fresh_per_step`` new scenes
  replacing the oldest at every step; optionally real samples, drawn with probability ``real_fraction``
  per batch element. Every batch element is augmented (:func:`cluster.model.data.augment`).
- **Loss.** For each output channel, binary cross-entropy (soft targets) plus soft Dice, over the valid
  (unpadded) pixels.
- **Optimiser.** AdamW, linear warm-up then cosine decay to 2 % of the peak rate; fp16/bf16 autocast on GPUs.
- **Reproducible.** The samples and augmentations of step ``t`` depend only on ``(seed, t)``, and the pool
  at step ``t`` is rebuilt from scene indices when a run resumes from a checkpoint, so a resumed run sees
  what an uninterrupted one would.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from cluster.model.card import ModelCard
from cluster.model.data import Sample, augment, batch_arrays, random_crop, synthetic_sample
from cluster.model.devices import Placement, choose_placement, torch_threads
from cluster.model.exceptions import TrainingDataError, WeightsError
from cluster.model.network import OUTPUT_CHANNELS, ResUNet, ResUNetConfig
from cluster.model.weights import is_shipped, load_model, save_model
from cluster.synthetic import SceneConfig

__all__ = ["FURTHER_TRAINING", "TrainConfig", "TrainResult", "fine_tune", "train", "train_further"]

log = logging.getLogger(__name__)

SEEDS_PER_RUN = 1_000_000
"""Scene seeds of a run with seed ``s`` are ``s * SEEDS_PER_RUN + i``; held-out sets use seeds far above."""

ProgressCallback = Callable[[int, int, float], None]
"""Called as ``progress(step, steps, loss)`` after every step."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run; stored in the model card."""

    steps: int = 4000
    batch_size: int = 8
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 80
    working_size: int = 256
    crop_size: int = 192
    """Training windows are random crops of this size (a third of the compute of whole 256 images)."""
    seed: int = 0
    pool_size: int = 160
    fresh_per_step: int = 1
    size_range: tuple[float, float] = (1.0, 3.0)
    scenes: str = "v2"
    """The ranges synthetic scenes are drawn from, by name (:data:`cluster.synthetic.TRAINING_SCENES`)."""
    real_fraction: float = 0.0
    architecture: ResUNetConfig = field(default_factory=ResUNetConfig)
    checkpoint_every: int = 100
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be at least 1")
        for name in ("working_size", "crop_size"):
            if getattr(self, name) % self.architecture.multiple:
                raise ValueError(f"{name} must be a multiple of {self.architecture.multiple}")
        if not 0.0 <= self.real_fraction <= 1.0:
            raise ValueError("real_fraction must be within 0..1")
        SceneConfig.for_training(self.scenes)  # an unknown name is refused here, not at the first step

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["architecture"] = self.architecture.to_dict()
        data["size_range"] = list(self.size_range)
        return data


@dataclass(frozen=True)
class TrainResult:
    """What a run produced."""

    weights: Path
    card: ModelCard
    steps: int
    seconds: float
    final_loss: float


def loss_terms(logits: Tensor, targets: Tensor, valid: Tensor) -> Tensor:
    """Per-channel BCE + soft Dice over valid pixels; returns a tensor of one loss per channel."""
    logits = logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    bce = (bce * valid).sum(dim=(0, 2, 3)) / valid.sum().clamp_min(1.0)
    probabilities = torch.sigmoid(logits) * valid
    overlap = (probabilities * targets).sum(dim=(0, 2, 3))
    total = probabilities.sum(dim=(0, 2, 3)) + (targets * valid).sum(dim=(0, 2, 3))
    dice = 1.0 - (2.0 * overlap + 1.0) / (total + 1.0)
    return bce + dice


class _Pool:
    """The ring of synthetic samples; slot ``i % size`` holds scene index ``i``."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.scene_config = SceneConfig.for_training(config.scenes)
        self.samples: list[Sample | None] = [None] * config.pool_size

    def scene(self, index: int) -> Sample:
        if index >= SEEDS_PER_RUN:
            raise TrainingDataError("this run would need more synthetic scenes than its seed range holds")
        seed = self.config.seed * SEEDS_PER_RUN + index
        return synthetic_sample(
            seed, self.config.working_size, self.scene_config, size_range=self.config.size_range
        )

    def fill(self, step: int) -> None:
        """Make the pool what it is just before ``step`` (for a fresh start or a resume)."""
        first = step * self.config.fresh_per_step
        for index in range(first, first + self.config.pool_size):
            self.samples[index % self.config.pool_size] = self.scene(index)

    def advance(self, step: int) -> None:
        """Replace the oldest samples with the fresh scenes of ``step``."""
        first = self.config.pool_size + step * self.config.fresh_per_step
        for index in range(first, first + self.config.fresh_per_step):
            self.samples[index % self.config.pool_size] = self.scene(index)

    def get(self, slot: int) -> Sample:
        sample = self.samples[slot]
        assert sample is not None
        return sample


def _batch(
    step: int, config: TrainConfig, pool: _Pool | None, real: Sequence[Sample], placement: Placement
) -> tuple[Tensor, Tensor, Tensor]:
    rng = np.random.default_rng([config.seed, step, 0xBA7C])
    chosen: list[Sample] = []
    for _ in range(config.batch_size):
        use_real = bool(real) and (pool is None or rng.random() < config.real_fraction)
        if use_real:
            sample = real[int(rng.integers(len(real)))]
        else:
            assert pool is not None
            sample = pool.get(int(rng.integers(config.pool_size)))
        if config.crop_size < config.working_size:
            sample = random_crop(sample, config.crop_size, rng)
        chosen.append(augment(sample, rng))
    images, targets, valid = batch_arrays(chosen, min(config.crop_size, config.working_size))
    memory = torch.channels_last if placement.channels_last else torch.contiguous_format
    return (
        torch.from_numpy(images).to(placement.device).contiguous(memory_format=memory),
        torch.from_numpy(targets).to(placement.device),
        torch.from_numpy(valid).to(placement.device),
    )


def _schedule(config: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    torch.save(state, temporary)
    Path(temporary).replace(path)


def _load_checkpoint(path: Path, config: TrainConfig) -> dict[str, Any]:
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise WeightsError(f"{path}: cannot resume from this checkpoint ({exc})") from exc
    if state.get("config") != json.dumps(config.to_dict(), sort_keys=True):
        raise WeightsError(
            f"{path}: the checkpoint was made with other settings; use the same ones to resume"
        )
    return state


def train(
    config: TrainConfig,
    out: Path,
    *,
    real: Sequence[Sample] = (),
    initial: ResUNet | None = None,
    card_fields: dict[str, Any] | None = None,
    resume: bool = True,
    allow_shipped: bool = False,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train and write ``out`` (``.safetensors``) and its card; checkpoints go to ``out`` + ``.ckpt``.

    ``initial`` starts from given weights (fine-tuning); ``real`` adds real samples (all of the data
    when ``real_fraction`` is 1). With ``resume``, an existing checkpoint of the same settings is continued.
    """
    if config.real_fraction > 0 and not real:
        raise TrainingDataError("real_fraction is above 0 but no real samples were given")
    torch.manual_seed(config.seed)
    placement = choose_placement(config.device, config.precision)
    if placement.device.type == "cpu" and config.precision == "auto":
        placement = replace(placement, autocast_dtype=None)  # fp32 on CPUs: same numbers on every CPU
    model = initial if initial is not None else ResUNet(config.architecture)
    model = model.place(placement.device, placement.channels_last).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    scaler = torch.amp.GradScaler(enabled=placement.autocast_dtype == torch.float16)
    checkpoint = out.with_name(out.name + ".ckpt")
    out.parent.mkdir(parents=True, exist_ok=True)
    start, elapsed, losses = 0, 0.0, [0.0]
    config_text = json.dumps(config.to_dict(), sort_keys=True)
    if resume and checkpoint.exists():
        state = _load_checkpoint(checkpoint, config)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, elapsed = int(state["step"]), float(state["seconds"])
        log.info("resuming %s at step %d", checkpoint, start)
    pool = _Pool(config) if config.real_fraction < 1.0 else None
    with torch_threads(config.threads):
        if pool is not None:
            pool.fill(start)
        started = time.perf_counter() - elapsed
        for step in range(start, config.steps):
            if pool is not None and step > start:
                pool.advance(step - 1)
            images, targets, valid = _batch(step, config, pool, real, placement)
            with placement.autocast():
                logits = model(images)
            terms = loss_terms(logits, targets, valid)
            loss = terms.sum()
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step + 1, config.steps, losses[-1])
            if (step + 1) % 50 == 0:
                recent = losses[-50:]
                log.info(
                    "step %d/%d loss %.4f (%s) lr %.2e %.2f s/step",
                    step + 1,
                    config.steps,
                    sum(recent) / len(recent),
                    ", ".join(
                        f"{n} {float(t):.3f}" for n, t in zip(OUTPUT_CHANNELS, terms.detach(), strict=True)
                    ),
                    scheduler.get_last_lr()[0],
                    (time.perf_counter() - started) / (step + 1 - start or 1),
                )
            if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
                _save_checkpoint(
                    checkpoint,
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "step": step + 1,
                        "seconds": time.perf_counter() - started,
                        "config": config_text,
                    },
                )
        seconds = time.perf_counter() - started
    model = model.place(torch.device("cpu"), channels_last=False).eval()
    fields = _card_fields(config, seconds, placement, card_fields or {})
    card = save_model(model, out, fields, allow_shipped=allow_shipped)
    checkpoint.unlink(missing_ok=True)
    recent = losses[-50:]
    return TrainResult(out, card, config.steps, seconds, sum(recent) / len(recent))


def _card_fields(
    config: TrainConfig, seconds: float, placement: Placement, extra: dict[str, Any]
) -> dict[str, Any]:
    training = {
        "recipe": config.to_dict(),
        "data": "synthetic brightfield/phase-contrast scenes (cluster.synthetic, "
        f"SceneConfig.for_training({config.scenes!r})), "
        f"scene seeds {config.seed * SEEDS_PER_RUN}..; long side {config.size_range[0]:g}-"
        f"{config.size_range[1]:g} x working size, aspect up to 1.6",
        "loss": "BCE + soft Dice on foreground and core",
        "optimizer": "AdamW, linear warm-up, cosine decay",
        "seconds": round(seconds, 1),
        "machine": f"{platform.machine()} {placement.describe()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
    }
    fields: dict[str, Any] = {
        "name": "resunet",
        "version": MODEL_VERSION,
        "working_size": config.working_size,
        "training": training,
    }
    for key, value in extra.items():
        if key == "training":
            fields["training"] = {**training, **value}
        else:
            fields[key] = value
    return fields


FURTHER_TRAINING = TrainConfig(steps=3000, learning_rate=1.5e-3, warmup_steps=50, seed=2)
"""The recipe of :func:`train_further` (``spheroseg train --from-weights`` without real images), on scenes
of its own seeds: version 2 is version 1 trained with it twice (the ``v2`` scenes as first written, then as
they are; the card's ``training.stages`` says why)."""


def train_further(
    config: TrainConfig,
    out: Path,
    *,
    from_weights: Path,
    resume: bool = True,
    allow_shipped: bool = False,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Go on training the weights ``from_weights`` on synthetic scenes, with ``config``'s recipe (its
    architecture and working size are the base model's): how version 2 was made from version 1. The card
    names the base model. The base is never implied: "the shipped model" changes meaning the moment a new
    default ships, which once made version 2 start from its own first stage."""
    model, base = load_model(from_weights)
    config = replace(
        config,
        architecture=ResUNetConfig.from_dict(base.architecture),
        working_size=base.working_size,
        real_fraction=0.0,
    )
    extra = {
        "base_model": {"name": base.name, "version": base.version, "sha256": base.sha256},
        "notes": f"trained further from {base.name} {base.version} on synthetic scenes",
    }
    return train(
        config,
        out,
        initial=model,
        card_fields=extra,
        resume=resume,
        allow_shipped=allow_shipped,
        progress=progress,
    )


def fine_tune(
    samples: Sequence[Sample],
    out: Path,
    *,
    from_weights: Path | None = None,
    steps: int = 300,
    batch_size: int = 4,
    learning_rate: float = 5e-4,
    synthetic_fraction: float = 0.25,
    seed: int = 0,
    device: str = "auto",
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Adapt trained weights (the shipped ones by default) to a lab's reviewed ``samples``.

    A quarter of each batch stays synthetic by default so the model does not forget what it knew. Writes
    ``out`` and its card (with the base model's name, version and checksum); never the shipped weights.
    """
    if not samples:
        raise TrainingDataError("fine-tuning needs at least one reviewed image with its mask")
    if is_shipped(out):
        raise WeightsError(f"{out}: fine-tuned weights never go into the shipped models folder")
    model, base = load_model(from_weights)
    config = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=min(20, steps),
        working_size=base.working_size,
        seed=seed,
        pool_size=max(16, 8 * batch_size) if synthetic_fraction > 0 else 1,
        fresh_per_step=1,
        real_fraction=1.0 - synthetic_fraction,
        architecture=ResUNetConfig.from_dict(base.architecture),
        device=device,
    )
    stem = out.name.removesuffix(".safetensors")
    extra = {
        "name": "resunet",
        "version": f"{base.version}+ft.{stem}",
        "base_model": {"name": base.name, "version": base.version, "sha256": base.sha256},
        "training": {"fine_tuned_on": f"{len(samples)} reviewed images"},
        "notes": f"fine-tuned from {base.name} {base.version}",
    }
    return train(config, out, real=samples, initial=model, card_fields=extra, progress=progress)


MODEL_VERSION = "2.2"
"""Version in the card of weights this module trains on synthetic scenes (1.1: 4000 steps from scratch,
uneven-light augmentation; 2.0: 1.1 trained further on the wider ``v2`` scenes, in two stages; 2.1: 2.0
trained further on the ``v2.1`` scenes; 2.2: 2.1 trained further on the ``v2.2`` scenes)."""
