"""The ``spheroseg`` command: a click group whose subcommands each package contributes.

Subcommands are declared as entry points in the ``spheroseg.commands`` group (see pyproject.toml) and
imported only when used, so ``spheroseg --help`` stays fast and ``cluster`` never imports ``server`` or
``workbench``. A subcommand whose package is not installed (a worker node without the server extra, say)
is listed with a note instead of breaking the whole command.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points

import click

__all__ = ["cli", "main"]

COMMAND_GROUP = "spheroseg.commands"


def _command_entry_points() -> dict[str, EntryPoint]:
    return {entry.name: entry for entry in entry_points(group=COMMAND_GROUP)}


class _PluginGroup(click.Group):
    """A group that loads each subcommand from its entry point on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_command_entry_points())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _command_entry_points().get(cmd_name)
        if entry is None:
            return None
        try:
            command = entry.load()
        except ImportError as exc:
            return _unavailable_command(cmd_name, exc)
        if not isinstance(command, click.Command):
            raise click.ClickException(f"entry point {entry.value!r} is not a click command")
        return command


def _unavailable_command(name: str, exc: ImportError) -> click.Command:
    missing = exc.name or str(exc)

    @click.command(name=name, help=f"(unavailable: needs the '{missing}' package)", add_help_option=False)
    def unavailable() -> None:
        raise click.ClickException(
            f"'spheroseg {name}' needs the '{missing}' package, which is not installed here. "
            "Install the matching extra, e.g. pip install 'spheroseg-workbench[model,cluster]'."
        )

    return unavailable


@click.group(cls=_PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="spheroseg-workbench", prog_name="spheroseg")
def cli(verbose: int) -> None:
    """SpheroSeg: outline, measure, review and export tumour spheroids in microscope images.

    Start with `spheroseg segment IMAGES... --out DIR`; each subcommand has its own --help.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    cli(prog_name="spheroseg")
