"""``spheroseg segment``: outline and measure spheroids in image files and write the exports."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Iterable, Sequence
from importlib.util import find_spec
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cluster.cli.options import scheduler_option, tls_files, tls_options
from cluster.exceptions import SpherosegError
from cluster.exports import ALL_FORMATS, write_exports
from cluster.imaging import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES
from cluster.launch.spec import TlsFiles
from cluster.methods import DEFAULT_METHOD, METHODS, make_segmenter
from cluster.model.card import SHIPPED_MODELS, SHIPPED_STEM
from cluster.pipeline import ImageOutcome, segment_sources
from cluster.segmenter import Segmenter

__all__ = ["collect_inputs", "segment"]

MIN_IMAGES_FOR_CLUSTER = 8
"""Without --workers, fewer images than this are segmented in-process: a local cluster takes a few seconds
to start, about what a worker saves on this many images."""


def collect_inputs(inputs: Iterable[Path], recursive: bool = False) -> list[Path]:
    """Expand folders into their image files (sorted), keep files as given, drop repeats."""
    found: list[Path] = []
    for item in inputs:
        if item.is_dir():
            pattern = "**/*" if recursive else "*"
            found.extend(
                sorted(
                    path
                    for path in item.glob(pattern)
                    if path.is_file()
                    and path.suffix.lower() in IMAGE_SUFFIXES
                    and not path.name.startswith(".")
                )
            )
        else:
            found.append(item)
    return list(dict.fromkeys(found))


def _parse_formats(value: str) -> list[str]:
    formats = [part.strip().lower() for part in value.split(",") if part.strip()]
    unknown = sorted(set(formats) - set(ALL_FORMATS))
    if unknown or not formats:
        raise click.BadParameter(
            f"unknown format(s) {', '.join(unknown) or '(none)'}; choose from {','.join(ALL_FORMATS)}"
        )
    return formats


def _summary_table(outcomes: Sequence[ImageOutcome]) -> Table:
    table = Table(title="Spheroids found", title_justify="left")
    table.add_column("image", no_wrap=True)
    for heading in ("spheroids", "mean area", "mean diameter"):
        table.add_column(heading, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for outcome in outcomes:
        seg = outcome.segmentation
        if seg is None:
            table.add_row(Path(outcome.name).name, "-", "-", "-", "[red]failed[/red]")
            continue
        metrics = [s.metrics for s in seg.spheroids if s.metrics is not None]
        area, diameter = "-", "-"
        if metrics and seg.pixel_size_um is not None:
            area = f"{statistics.fmean(m.area_um2 or 0.0 for m in metrics):,.0f} µm²"
            diameter = f"{statistics.fmean(m.equivalent_diameter_um or 0.0 for m in metrics):,.1f} µm"
        elif metrics:
            area = f"{statistics.fmean(m.area_px for m in metrics):,.0f} px²"
            diameter = f"{statistics.fmean(m.equivalent_diameter_px for m in metrics):,.1f} px"
        table.add_row(Path(outcome.name).name, str(len(seg.spheroids)), area, diameter, "ok")
    return table


def _progress_columns() -> tuple[TextColumn, BarColumn, MofNCompleteColumn, TimeRemainingColumn]:
    return (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())


def _run(
    paths: Sequence[Path], segmenter: Segmenter, pixel_size: float | None, max_pixels: int, console: Console
) -> list[ImageOutcome]:
    outcomes: list[ImageOutcome] = []
    with Progress(*_progress_columns(), console=console, transient=True) as progress:
        task = progress.add_task("segmenting", total=len(paths))
        for path in paths:
            progress.update(task, description=f"segmenting {path.name}")
            outcomes.extend(
                segment_sources([path], segmenter, pixel_size_um=pixel_size, max_pixels=max_pixels)
            )
            progress.advance(task)
    return outcomes


def _cluster_available() -> bool:
    return find_spec("distributed") is not None


def _in_process(paths: Sequence[Path], workers: int | None, scheduler: str | None, gpus: bool) -> bool:
    """Whether this process is the quickest place: no scheduler or GPUs asked for, and either ``--workers
    1``, Dask not installed, or (without ``--workers``) too few images or cores for a local cluster's
    start-up to pay off."""
    if scheduler or gpus:
        return False
    if not _cluster_available():
        return True
    if workers is not None:
        return workers <= 1
    from cluster.launch.local import local_cores

    return len(paths) < MIN_IMAGES_FOR_CLUSTER or local_cores() <= 1


def _run_on_cluster(
    paths: Sequence[Path],
    method: str,
    options: dict[str, str],
    console: Console,
    *,
    pixel_size: float | None,
    max_pixels: int,
    scheduler: str | None,
    workers: int | None,
    gpus: bool,
    batch_size: int | None,
    tls: TlsFiles | None,
) -> list[ImageOutcome]:
    # Imported here: without the cluster extra (no Dask), the command still runs in-process.
    from cluster.client import JobProgress, SegmentationRequest
    from cluster.runner import JobPlace, run_job
    from cluster.worker import ReadSettings, SegmenterSpec

    request = SegmentationRequest(
        segmenter=SegmenterSpec.of(method, **options),
        settings=ReadSettings(pixel_size_um=pixel_size, max_pixels=max_pixels),
        gpu=gpus,
        batch_size=batch_size,
    )
    with Progress(*_progress_columns(), console=console, transient=True) as progress:
        task = progress.add_task(f"segmenting on {scheduler or 'a local cluster'}", total=len(paths))

        def advance(state: JobProgress) -> None:
            progress.update(task, completed=state.done)

        return run_job(paths, request, JobPlace(scheduler, workers, tls), advance)


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the exports (created if missing).",
)
@click.option(
    "--method",
    type=click.Choice(sorted(METHODS)),
    default=DEFAULT_METHOD,
    show_default=True,
    help="Segmentation method.",
)
@click.option(
    "--model",
    type=click.Choice(tuple(SHIPPED_MODELS)),
    default=None,
    help=f"Which shipped model the resunet method runs [default: {SHIPPED_STEM}]. "
    + "; ".join(f"{stem}: {line}" for stem, line in SHIPPED_MODELS.items()),
)
@click.option(
    "--pixel-size",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="UM",
    help="Pixel size in micrometres; overrides what the files say. Without it, files that carry no "
    "pixel size get metrics in pixels only.",
)
@click.option(
    "--formats",
    default=",".join(ALL_FORMATS),
    show_default=True,
    callback=lambda _c, _p, v: _parse_formats(v),
    help="Comma-separated exports to write.",
)
@click.option("--recursive", is_flag=True, help="Also look for images in sub-folders of folder inputs.")
@click.option(
    "--max-megapixels",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_MAX_PIXELS / 1e6,
    show_default=True,
    help="Refuse images with more pixels than this, before decoding them.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes of the local cluster started for this run [default: one per core, at most one "
    "per image; one per GPU for the resunet on a GPU machine; in this process for fewer than "
    f"{MIN_IMAGES_FOR_CLUSTER} images or one core, where a cluster would not pay for its start]. With 1 "
    "the images are segmented in this process.",
)
@scheduler_option(
    "Run on an existing Dask scheduler (tcp://host:8786; tls://… with --tls-ca-file, --tls-cert and "
    "--tls-key), or 'deployed' for the cluster started by 'spheroseg cluster deploy'."
)
@click.option(
    "--gpus", is_flag=True, help="Run only on GPU workers (those offering GPU=1); fails fast if none."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Images per task [default: chosen from the workers' devices and the number of images].",
)
@tls_options
def segment(
    inputs: tuple[Path, ...],
    out_dir: Path,
    method: str,
    model: str | None,
    pixel_size: float | None,
    formats: list[str],
    recursive: bool,
    max_megapixels: float,
    workers: int | None,
    scheduler: str | None,
    gpus: bool,
    batch_size: int | None,
    tls_ca_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Find, outline and measure spheroids in INPUTS (image files or folders of them).

    Reads TIFF (8/16-bit, float, RGB, multi-page, OME-TIFF), PNG, JPEG and BMP, recognised from their
    contents. Writes to --out: annotations.coco.json, metrics.csv, metrics.xlsx, masks/<image>.png and
    geojson/<image>.geojson (QuPath). A file that cannot be read is reported and skipped; the exit status is
    1 when any file failed.

    Several images are segmented in parallel on a Dask cluster: a local one started for the run (see
    --workers), an existing scheduler, or the cluster of 'spheroseg cluster deploy' (--scheduler).

    \b
    Examples:
      spheroseg segment plate1/ extra.tif --out results/ --pixel-size 0.65
      spheroseg segment plate1/ --out results/ --workers 4
      spheroseg segment plate1/ --out results/ --scheduler deployed --gpus
    """
    console = Console(stderr=True)
    paths = collect_inputs(inputs, recursive=recursive)
    if not paths:
        raise click.UsageError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) found in the inputs")
    if model is not None and method != "resunet":
        raise click.UsageError("--model chooses a model of the resunet method; add --method resunet")
    options = {"model": model} if model is not None else {}
    max_pixels = int(max_megapixels * 1e6)
    tls = tls_files(tls_ca_file, tls_cert, tls_key)
    if _in_process(paths, workers, scheduler, gpus):
        try:
            segmenter = make_segmenter(method, **options)
        except SpherosegError as exc:
            raise click.ClickException(str(exc)) from exc
        outcomes = _run(paths, segmenter, pixel_size, max_pixels, console)
    else:
        try:
            outcomes = _run_on_cluster(
                paths,
                method,
                options,
                console,
                pixel_size=pixel_size,
                max_pixels=max_pixels,
                scheduler=scheduler,
                workers=workers,
                gpus=gpus,
                batch_size=batch_size,
                tls=tls,
            )
        except SpherosegError as exc:
            raise click.ClickException(str(exc)) from exc
    segmentations = [o.segmentation for o in outcomes if o.segmentation is not None]
    try:
        written = write_exports(segmentations, out_dir, formats)
    except (SpherosegError, OSError) as exc:
        raise click.ClickException(f"could not write the exports to {out_dir}: {exc}") from exc
    out = Console() if sys.stdout.isatty() else Console(width=120)  # a log file has no terminal width
    out.print(_summary_table(outcomes))
    failed = len(outcomes) - len(segmentations)
    spheroids = sum(len(s.spheroids) for s in segmentations)
    out.print(
        f"{len(segmentations)} of {len(outcomes)} images segmented, {spheroids} spheroids; "
        f"{sum(len(v) for v in written.values())} files written to {out_dir}"
    )
    if failed:
        console.print(f"[red]{failed} image(s) failed:[/red]")
        for outcome in outcomes:
            if outcome.error is not None:
                console.print(f"  {outcome.error}", markup=False, highlight=False)
        sys.exit(1)
