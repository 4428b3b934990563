"""Build the desktop bundle: ``python packaging/desktop/build.py [--flavour lean|full]``.

The result is one folder, ``<dist>/SpheroSeg/``, holding the program ``SpheroSeg`` (double-click it, or
run ``SpheroSeg --help`` for the ``spheroseg`` commands), the menu entry and its installer, and a
``bundle.json`` saying what was built. Zip or tar that folder to hand it on. It needs the project
installed with the extras the flavour carries (``desktop,server,cluster``, plus ``model`` for full) and
PyInstaller (``pip install pyinstaller``). A bundle runs only on the operating system it was built on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NAME = "SpheroSeg"
MENU_FILES = ("spheroseg-workbench.desktop", "install-menu-entry.sh")
AUDITWHEEL_GRAFTED = re.compile(r"-[0-9a-f]{8}(-[0-9a-f]{8})?\.so")


def folder_size(folder: Path) -> int:
    """Bytes on disk that the bundle's files take (what a download unpacks to)."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def build(flavour: str, dist: Path, work: Path) -> Path:
    """Run PyInstaller on the spec; the bundle's folder."""
    _platform_icon(work)
    started = time.monotonic()
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level=WARN",
        f"--distpath={dist}",
        f"--workpath={work}",
        str(HERE / "spheroseg.spec"),
        "--",
        f"--flavour={flavour}",
    ]
    subprocess.run(command, check=True, cwd=ROOT)
    bundle = dist / NAME
    if sys.platform.startswith("linux"):
        strip_debug_info(bundle)
    for name in MENU_FILES:
        shutil.copy2(HERE / name, bundle / name)
    shutil.copy2(ROOT / "resources" / "spheroseg.png", bundle / "spheroseg-workbench.png")
    manifest = {
        "flavour": flavour,
        "version": version("spheroseg-workbench"),
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "bytes": folder_size(bundle),
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (bundle / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return bundle


def strip_debug_info(bundle: Path) -> None:
    """Drop the debugging information some libraries carry (libpython and its modules: a third of their
    size). Not from a library auditwheel grafted into a wheel (named ``<name>-<hash>.so``): patchelf
    rewrote those, and stripping one breaks it (numpy's gfortran would not load). PyInstaller's own strip
    would do every file."""
    for path in bundle.rglob("*.so*"):
        if path.is_symlink() or not path.is_file() or AUDITWHEEL_GRAFTED.search(path.name):
            continue
        if b".debug_info" in path.read_bytes():
            subprocess.run(["strip", "--strip-debug", str(path)], check=True)


def _platform_icon(work: Path) -> None:
    """Windows and macOS want their own icon formats: made from the PNG (the spec looks in build/)."""
    formats = {"win32": "spheroseg.ico", "darwin": "spheroseg.icns"}
    if sys.platform not in formats:
        return
    from PIL import Image

    target = HERE / "build" / formats[sys.platform]
    target.parent.mkdir(exist_ok=True)
    Image.open(ROOT / "resources" / "spheroseg.png").save(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--flavour",
        choices=("lean", "full"),
        default="lean",
        help="lean: no torch, segments with the classical method here and with the ResUNet on a lab server "
        "or cluster; full: torch and the shipped weights, the ResUNet on this computer (default: lean)",
    )
    parser.add_argument(
        "--dist", type=Path, default=ROOT / "build" / "desktop", help="where the bundle's folder goes"
    )
    parser.add_argument("--work", type=Path, default=None, help="PyInstaller's work folder")
    options = parser.parse_args(argv)
    work = options.work or options.dist.parent / f"pyinstaller-{options.flavour}"
    os.environ.setdefault("PYTHONHASHSEED", "0")  # the same sources give the same archive
    bundle = build(options.flavour, options.dist.resolve(), work.resolve())
    manifest = json.loads((bundle / "bundle.json").read_text())
    print(
        f"{bundle}: {manifest['bytes'] / 1e6:.0f} MB ({options.flavour}) in {manifest['build_seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
