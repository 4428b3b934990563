"""Helpers of the lab's tests: packaging/lab/local.py imported as a module (a script in a folder that is
not a package), and a command line checked by the parser of the program it runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import click
from distributed.cli import dask_scheduler, dask_worker

from cluster.cli.main import cli

LOCAL = Path(__file__).resolve().parents[2] / "packaging" / "lab" / "local.py"


def local_module() -> ModuleType:
    name = "spheroseg_lab_local"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, LOCAL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def check_command(argv: list[str]) -> None:
    """Parse ``argv`` with the program's own parser; an unknown command or option raises UsageError."""
    program = Path(argv[0]).name
    if program == "spheroseg":
        _parse(cli, argv[1:], "spheroseg")
    elif program == "dask":
        commands = {"scheduler": dask_scheduler.main, "worker": dask_worker.main}
        assert argv[1] in commands, f"dask {argv[1]} is not a command the lab uses"
        _parse(commands[argv[1]], argv[2:], f"dask {argv[1]}")
    else:
        raise AssertionError(f"{argv}: not a command of the lab (spheroseg, dask)")


def _parse(command: click.Command, args: list[str], name: str) -> None:
    with command.make_context(name, list(args)) as context:
        if isinstance(command, click.Group):
            rest = [*context.protected_args, *context.args]
            sub_name, sub, sub_args = command.resolve_command(context, rest)
            assert sub is not None and sub_name is not None
            _parse(sub, sub_args, f"{name} {sub_name}")
