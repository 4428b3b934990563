"""``spheroseg workbench``: the desktop window (the ``desktop`` extra). Qt is imported only once the
command runs, so ``spheroseg --help`` stays fast and works where Qt is not installed."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import click

__all__ = ["workbench"]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--offline",
    "offline",
    is_flag=True,
    help="Work offline at once: start (or reuse) your own server on this computer, without the start "
    "screen. Without --offline or --server the start screen asks, with working offline as its default.",
)
@click.option(
    "--server",
    "server_url",
    metavar="URL",
    default=None,
    help="A lab server to connect to, e.g. https://seg.your-lab.example: filled in on the start screen, "
    "and its saved session resumed without asking for the password.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The offline server's data folder (projects, images, results).  [default: SPHEROSEG_DATA_DIR, "
    "else your user data folder]",
)
@click.option(
    "--sample-project",
    is_flag=True,
    help='Work offline on the project "Samples": the bundled sample images, imported and segmented on '
    "the first start, opened as they are on later ones (what `make run` does).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Check this installation, then close: open the window offline on a new temporary data folder "
    "(or --data-dir), import the sample images, segment them with the classical method and print what "
    "happened. Exit status 0 when it all worked.",
)
def workbench(
    offline: bool, server_url: str | None, data_dir: Path | None, sample_project: bool, check: bool
) -> None:
    """Open the desktop workbench: projects, a gallery of images, import, segmentation with live
    progress, export and the compute cluster, offline on this computer or on a lab's shared server.

    \b
    Offline (the default): your own server runs on this computer
    (127.0.0.1), on your data folder, with a local Dask cluster; it stops
    when you close the window.
    Lab server: sign in with your user name and password; the session is
    kept (in the OS keyring where there is one) and renewed, so the next
    start needs no password.

    \b
    Examples:
      spheroseg workbench
      spheroseg workbench --offline --data-dir ~/spheroids
      spheroseg workbench --server https://seg.your-lab.example
      spheroseg workbench --check
    """
    if offline and server_url:
        raise click.UsageError("choose --offline or --server, not both")
    if (sample_project or check) and server_url:
        raise click.UsageError("--sample-project and --check work offline; leave out --server")
    if sample_project and check:
        raise click.UsageError("choose --sample-project or --check, not both")
    try:
        from workbench.qt.app import main
    except ImportError as missing:
        raise click.ClickException(
            f"the workbench needs the desktop extra ({missing.name or missing}): "
            "pip install 'spheroseg-workbench[desktop]'"
        ) from None
    from workbench.startup import StartOptions

    with contextlib.ExitStack() as cleanup:
        if check and data_dir is None:
            data_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="spheroseg-check-")))
        options = StartOptions(
            offline=offline,
            server_url=server_url,
            data_dir=data_dir,
            sample_project=sample_project,
            check=check,
        )
        status = main(None, options)
    raise SystemExit(status)
