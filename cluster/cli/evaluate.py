"""``spheroseg evaluate``: accuracy of segmentation methods against reference masks, side by side."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cluster.exceptions import SpherosegError
from cluster.model.card import SHIPPED_MODELS, SHIPPED_STEM, card_path, shipped_card_path

__all__ = ["evaluate"]

_LABELS = {
    "iou": "IoU",
    "dice": "Dice",
    "boundary_f1": "boundary F1 (2 px)",
    "instance_f1": "instance F1 (IoU 0.5)",
    "count_error": "|count error|",
    "area_error_pct": "|area error| %",
    "small_iou": "IoU of those found",
    "small_found": "share found",
    "seconds": "seconds per image",
}


def _number(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def comparison_table(reports: Sequence[object]) -> Table:
    """Metrics as rows; for each method its median, mean and the mean of its five worst images; the small
    spheroids' figures in a section of their own."""
    from cluster.evaluation import METRICS, SMALL_METRICS, SMALL_RADII, MethodReport

    table = Table(title="Accuracy against the reference masks", title_justify="left")
    table.add_column("metric")
    summaries = []
    for report in reports:
        assert isinstance(report, MethodReport)
        summaries.append(report.summary())
        for column in ("median", "mean", "worst 5"):
            table.add_column(f"{report.method}\n{column}", justify="right")
    for metric in (*METRICS, "seconds", None, *SMALL_METRICS):
        if metric is None:
            low, high = SMALL_RADII
            table.add_section()
            table.add_row(f"spheroids {low:g}-{high:g} px in radius:")
            continue
        row = [_LABELS[metric]]
        for summary in summaries:
            values = summary[metric]
            row += [_number(values["median"]), _number(values["mean"]), _number(values["worst5"])]
        table.add_row(*row)
    table.caption = "instance F1 over all spheroids of the set together: " + ", ".join(
        f"{report.method} {_number(summary['instance_f1']['all'])}"
        for report, summary in zip(reports, summaries, strict=True)
        if isinstance(report, MethodReport)
    )
    table.caption_justify = "left"
    return table


@click.command()
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of images.",
)
@click.option(
    "--masks",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of reference masks (binary or label images) named by the images' stems.",
)
@click.option(
    "--synthetic",
    type=click.IntRange(min=1),
    default=None,
    help="Instead of folders, N scenes of the held-out synthetic set (never used in training).",
)
@click.option(
    "--method",
    "methods",
    multiple=True,
    help="Method to evaluate; repeat for a side-by-side comparison [default: resunet and classical].",
)
@click.option(
    "--weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Weights for the resunet method (default: the shipped model --model names).",
)
@click.option(
    "--model",
    type=click.Choice(tuple(SHIPPED_MODELS)),
    default=SHIPPED_STEM,
    show_default=True,
    help="Which shipped model the resunet method runs. "
    + "; ".join(f"{stem}: {line}" for stem, line in SHIPPED_MODELS.items()),
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write all scores.",
)
@click.option("--per-image", is_flag=True, help="Also print every image's scores.")
@click.option(
    "--record-in-card",
    is_flag=True,
    hidden=True,
    help="Write the held-out scores into the model card of the evaluated weights (maintainers).",
)
def evaluate(
    images: Path | None,
    masks: Path | None,
    synthetic: int | None,
    methods: tuple[str, ...],
    weights: Path | None,
    model: str,
    json_path: Path | None,
    per_image: bool,
    record_in_card: bool,
) -> None:
    """Score segmentation methods against reference masks: IoU, Dice, boundary F1 at 2 px, instance F1
    at IoU 0.5, count error and area error, per image and summarised (median, mean, worst 5); and apart,
    for small spheroids (10-20 px in radius), the IoU of those found and the share found.

    Masks are binary (each connected piece one spheroid) or label images named like the image (same stem,
    any supported format). Outlines are scored as users get them: through polygons.

    \b
    Examples:
      spheroseg evaluate --images val/images --masks val/masks --method resunet --method classical
      spheroseg evaluate --synthetic 150 --json heldout.json
    """
    from cluster.evaluation import compare, held_out_cases, load_cases
    from cluster.evaluation import evaluate as run_evaluation
    from cluster.methods import METHODS, make_segmenter

    if synthetic is None and (images is None or masks is None):
        raise click.UsageError("give --images and --masks, or --synthetic N")
    if record_in_card and synthetic is None:
        raise click.UsageError("--record-in-card records the held-out set's scores: give --synthetic N")
    chosen = list(dict.fromkeys(methods or ("resunet", "classical")))
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise click.UsageError(
            f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(sorted(METHODS))}"
        )
    if "resunet" in chosen and find_spec("torch") is None:
        raise click.ClickException("the resunet method needs torch: pip install 'spheroseg-workbench[model]'")
    console = Console(stderr=True)
    try:
        cases = held_out_cases(synthetic) if synthetic else list(load_cases(images, masks))  # type: ignore[arg-type]
        reports = []
        for method in chosen:
            resunet = {"weights": str(weights)} if weights is not None else {"model": model}
            options = resunet if method == "resunet" else {}
            with console.status(f"evaluating {method} on {len(cases)} images"):
                reports.append(run_evaluation(cases, make_segmenter(method, **options)))
    except SpherosegError as exc:
        raise click.ClickException(str(exc)) from exc
    out = Console()
    if per_image:
        for report in reports:
            out.print(_per_image_table(report))
    out.print(comparison_table(reports))
    for report in reports:
        out.print(f"{report.method} {report.version}: worst images {', '.join(report.worst_images())}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(compare(reports), indent=1) + "\n", encoding="utf-8")
        out.print(f"scores written to {json_path}")
    if record_in_card:
        assert synthetic is not None
        card_file = card_path(weights) if weights is not None else shipped_card_path(model)
        out.print(f"validation recorded in {_record_in_card(card_file, synthetic, reports)}")


def _record_in_card(card_file: Path, scenes: int, reports: list[Any]) -> Path:
    """Put the held-out summary of every method into model card ``card_file``."""
    from cluster.evaluation import HELD_OUT_SEED
    from cluster.model.card import read_card, write_card

    validation: dict[str, Any] = {
        "set": f"{scenes} held-out synthetic scenes, 512x512, SceneConfig.held_out() (shapes, crowding, "
        f"cameras and halos beyond the training ranges), seeds {HELD_OUT_SEED}.., scored through polygons "
        f"(spheroseg evaluate --synthetic {scenes})",
        **{report.method: _known(report.summary()) for report in reports},
    }
    return write_card(read_card(card_file).with_validation(validation), card_file)


def _known(summary: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The metrics of ``summary`` that have values (a set with no small spheroids has no small_iou): a
    card holds plain JSON numbers, never NaN."""
    return {name: values for name, values in summary.items() if not any(map(math.isnan, values.values()))}


def _per_image_table(report: object) -> Table:
    from cluster.evaluation import METRICS, SMALL_METRICS, MethodReport

    assert isinstance(report, MethodReport)
    table = Table(title=f"{report.method}: per image", title_justify="left")
    table.add_column("image", overflow="fold")
    for metric in (*METRICS, *SMALL_METRICS):
        label = _LABELS[metric]
        table.add_column(f"small spheroids: {label}" if metric in SMALL_METRICS else label, justify="right")
    for scores in report.images:
        values = [getattr(scores, metric) for metric in (*METRICS, *SMALL_METRICS)]
        table.add_row(scores.name, *("-" if v is None else _number(float(v)) for v in values))
    return table
