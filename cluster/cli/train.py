"""``spheroseg train``: train the ResUNet from scratch, or fine-tune it on a lab's reviewed images."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cluster.exceptions import SpherosegError

__all__ = ["train"]

log = logging.getLogger(__name__)


@click.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Weights file to write (.safetensors); its model card is written next to it.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Optimiser steps [recipe: 4000; 3000 when training further; 300 when fine-tuning].",
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=None, help="Images per step [8; 4 when fine-tuning]."
)
@click.option(
    "--learning-rate", type=click.FloatRange(min=0, min_open=True), default=None, help="Peak learning rate."
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed of scenes, augmentation and initial weights [recipe: 0; 2 when training further].",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of real images to mix in (with --masks or --annotations).",
)
@click.option(
    "--masks",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of masks (binary or label images) named by the images' stems.",
)
@click.option(
    "--annotations",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="A COCO .json or GeoJSON export (file or folder) of reviewed segmentations of --images.",
)
@click.option(
    "--real-fraction",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of each batch drawn from the real images [0.5 with real data; 0.75 when fine-tuning].",
)
@click.option(
    "--from-weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Start from these weights (a .safetensors with its card) instead of from scratch: fine-tuning "
    "with --images, else training further on synthetic scenes.",
)
@click.option("--fine-tune", "fine", is_flag=True, help="Fine-tune the shipped weights on --images.")
@click.option(
    "--scenes",
    # cluster.synthetic.TRAINING_SCENES, not imported for --help's sake
    type=click.Choice(["v1", "v2", "v2.1", "v2.2"]),
    default="v2",
    show_default=True,
    help="Ranges of the synthetic scenes: v1 (what version 1 learnt from), v2 (wider: small, blurred and "
    "border-cut spheroids, fibres), v2.1 (v2 with cells up to 20 um and deeper touching) or v2.2 (v2.1 "
    "down to 80 photons a pixel and defocused by up to 4 px).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch.")
@click.option("--no-resume", is_flag=True, help="Start over even if a checkpoint of the same run exists.")
@click.option(
    "--shipped", is_flag=True, hidden=True, help="Allow writing into resources/models (maintainers)."
)
def train(
    out: Path,
    steps: int | None,
    batch_size: int | None,
    learning_rate: float | None,
    seed: int | None,
    images: Path | None,
    masks: Path | None,
    annotations: Path | None,
    real_fraction: float | None,
    from_weights: Path | None,
    fine: bool,
    scenes: str,
    device: str,
    threads: int | None,
    no_resume: bool,
    shipped: bool,
) -> None:
    """Train the ResUNet on synthetic scenes (optionally mixed with real data), or fine-tune it.

    From scratch, the defaults are the recipe of version 1 on the wider v2 scenes (--scenes v1 repeats
    version 1 exactly; about 20 minutes on 2 AVX-512 CPU cores, older CPUs take a few times longer). With
    --from-weights and no real images, those weights are trained further on synthetic scenes; its defaults
    are the recipe of each of the two stages that made version 2.0 from version 1 (20 minutes each); 2.1
    is 2.0 trained with --scenes v2.1 --steps 2000 --learning-rate 1e-3 --seed 4 (15 minutes) and 2.2 is
    2.1 trained with --scenes v2.2 --steps 3000 --learning-rate 1e-3 --seed 5 (half an hour). With
    --fine-tune (or --from-weights and --images), the model is adapted to real images (--images with
    --masks or --annotations) in a few minutes on a GPU. The shipped weights are never overwritten. Training
    writes a checkpoint next to --out every 100 steps and continues from it when run again with the same
    options.

    \b
    Examples:
      spheroseg train --out runs/resunet.safetensors
      spheroseg train --from-weights resources/models/resunet-v1.safetensors --out runs/resunet-v2.safetensors
      spheroseg train --fine-tune --images reviewed/ --annotations reviewed/annotations.coco.json \\
          --out lab/resunet-lab.safetensors
    """
    from cluster.model.card import read_card, shipped_card_path
    from cluster.model.data import load_export, load_pairs
    from cluster.model.training import FURTHER_TRAINING, TrainConfig, fine_tune, train_further
    from cluster.model.training import train as run_training

    console = Console(stderr=True)
    tuning = fine or (from_weights is not None and images is not None)
    try:
        # Real images are prepared at the working size of the model they will train.
        base = read_card(from_weights or shipped_card_path()) if tuning else None
        size = base.working_size if base is not None else TrainConfig().working_size
        real = []
        if images is not None:
            if annotations is not None:
                real = load_export(annotations, images, size)
            elif masks is not None:
                real = load_pairs(images, masks, size)
            else:
                raise click.UsageError("--images needs --masks or --annotations")
        elif masks is not None or annotations is not None:
            raise click.UsageError("--masks and --annotations need --images")
        progress = _progress(console)
        with progress:
            task = progress.add_task("training", total=steps or 1)

            def report(step: int, total: int, loss: float) -> None:
                progress.update(task, completed=step, total=total, description=f"training (loss {loss:.3f})")

            if tuning:
                if not real:
                    raise click.UsageError("fine-tuning needs --images with --masks or --annotations")
                result = fine_tune(
                    real,
                    out,
                    from_weights=from_weights,
                    steps=steps or 300,
                    batch_size=batch_size or 4,
                    learning_rate=learning_rate or 5e-4,
                    synthetic_fraction=1.0 - (0.75 if real_fraction is None else real_fraction),
                    seed=seed or 0,
                    device=device,
                    progress=report,
                )
            else:
                recipe = FURTHER_TRAINING if from_weights is not None else TrainConfig()
                config = replace(
                    recipe,
                    seed=seed if seed is not None else recipe.seed,
                    scenes=scenes,
                    device=device,
                    threads=threads,
                    steps=steps or recipe.steps,
                    batch_size=batch_size or recipe.batch_size,
                    learning_rate=learning_rate or recipe.learning_rate,
                    real_fraction=(0.5 if real_fraction is None else real_fraction) if real else 0.0,
                )
                resume = not no_resume
                if from_weights is not None:  # without images: trained further on synthetic scenes
                    result = train_further(
                        config,
                        out,
                        from_weights=from_weights,
                        resume=resume,
                        allow_shipped=shipped,
                        progress=report,
                    )
                else:
                    result = run_training(
                        config, out, real=real, resume=resume, allow_shipped=shipped, progress=report
                    )
    except (SpherosegError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    Console().print(
        f"wrote {result.weights} ({result.card.parameters:,} parameters, sha256 {result.card.sha256[:12]}…) "
        f"after {result.steps} steps in {result.seconds / 60:.1f} min; final loss {result.final_loss:.4f}"
    )


def _progress(console: Console) -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console, transient=True)
