"""``spheroseg workbench``: declared where ``spheroseg`` finds its subcommands, and its help reads well."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from click.testing import CliRunner

from workbench.cli import workbench

ROOT = Path(__file__).resolve().parents[2]


def test_the_command_is_one_of_spheroseg_s_subcommands() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    commands = project["project"]["entry-points"]["spheroseg.commands"]
    assert commands["workbench"] == "workbench.cli:workbench"


def test_help_says_how_to_start_offline_or_on_a_lab_server() -> None:
    result = CliRunner().invoke(workbench, ["--help"], prog_name="spheroseg workbench")
    assert result.exit_code == 0, result.output
    for option in ("--offline", "--server URL", "--data-dir", "--sample-project"):
        assert option in result.output
    assert "Usage: spheroseg workbench [OPTIONS]" in result.output
    assert "spheroseg workbench --server https://seg.your-lab.example" in result.output


def test_contradicting_options_are_refused_before_any_window_opens() -> None:
    result = CliRunner().invoke(workbench, ["--offline", "--server", "https://x.example"])
    assert result.exit_code == 2 and "choose --offline or --server, not both" in result.output


def test_help_does_not_import_qt() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from workbench.cli import workbench; "
        "CliRunner().invoke(workbench, ['--help']); print('PySide6' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert found.stdout.strip() == "False"
