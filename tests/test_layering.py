"""The layering of DESIGN.md holds: import-linter's contracts (pyproject.toml) all pass."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is not installed in this environment"
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_part_of_the_workbench_but_its_windows_is_held_free_of_qt() -> None:
    """The Qt-free contract names its modules one by one (import-linter cannot say "all but qt"), so a new
    module left off the list would escape it unnoticed; this keeps the list whole."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (qt_free,) = [contract for contract in contracts if contract["name"].startswith("Qt lives only in")]
    package = ROOT / "workbench"
    parts = {path.stem for path in package.glob("*.py")} | {
        path.name for path in package.iterdir() if path.is_dir() and (path / "__init__.py").exists()
    }
    windows = {"__init__", "qt", "cli"}  # cli opens the window: it imports workbench.qt when asked to
    assert {f"workbench.{name}" for name in parts - windows} == set(qt_free["source_modules"])


def test_no_benchmark_hides_a_library_the_benchmarks_import() -> None:
    """A benchmark runs with benchmarks/ first on its path, so a script named like a library (a
    ``packaging.py``) would be imported in its place by every benchmark that needs the library."""
    import importlib.util

    scripts = {path.stem for path in (ROOT / "benchmarks").glob("*.py")}
    hidden = sorted(name for name in scripts if importlib.util.find_spec(name) is not None)
    assert hidden == [], f"benchmarks named like installed modules: {hidden}"
