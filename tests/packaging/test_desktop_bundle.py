"""The lean desktop bundle built for real with PyInstaller and started as a biologist starts it.

What they would notice: the program opens its window under a display (Xvfb here), works offline on its
own server, segments the bundled samples and closes by itself (``--check``); it segments a folder from the
command line on worker processes of its own (Dask's, re-entering the frozen program) and reads the
LZW-compressed TIFFs microscopes write; it says plainly that the ResUNet is not in the lean bundle; and it
lands in the application menu with a valid entry. Nothing of the build machine's Python is used: the
bundle runs with a bare environment.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tifffile

from cluster.synthetic import generate_scene

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
PREBUILT = "SPHEROSEG_TEST_BUNDLE"
"""A lean bundle already built (its folder), to iterate on these tests without building each time."""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.environ.get(PREBUILT):
        yield Path(os.environ[PREBUILT])
        return
    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [
            sys.executable,
            str(ROOT / "packaging" / "desktop" / "build.py"),
            "--flavour=lean",
            f"--dist={dist}",
        ],
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    yield dist / "SpheroSeg"
    shutil.rmtree(dist, ignore_errors=True)


def _bare_environment(home: Path) -> dict[str, str]:
    """What a desktop session gives a program: no virtual environment, no PYTHONPATH, a home of its own."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": str(home)}


def _run(
    bundle: Path, home: Path, *arguments: str, display: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [str(bundle / "SpheroSeg"), *arguments]
    if display:
        command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", *command]
    return subprocess.run(
        command, env=_bare_environment(home), capture_output=True, text=True, timeout=600, cwd=home
    )


def test_the_lean_bundle_is_lean_and_says_what_it_is(bundle: Path) -> None:
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["flavour"] == "lean"
    assert not (bundle / "_internal" / "torch").exists()
    assert (bundle / "_internal" / "resources" / "samples").is_dir()


def test_every_library_in_the_bundle_finds_what_it_links_to(bundle: Path) -> None:
    """Left-out libraries (the GTK theme's) and stripped ones must not leave another unable to load. The
    bundle's folders are all on the search path, as the libraries loaded before one are at run time;
    Wayland's own libraries come with a Wayland session (Qt's Wayland plugins are used only there)."""
    folders = sorted({str(path.parent) for path in (bundle / "_internal").rglob("*.so*")})
    environment = {"LD_LIBRARY_PATH": ":".join(folders), "PATH": "/usr/bin:/bin"}
    unresolved = {}
    for library in (bundle / "_internal").rglob("*.so*"):
        if library.is_file() and not library.is_symlink() and library.read_bytes()[:4] == b"\x7fELF":
            linked = subprocess.run(["ldd", str(library)], capture_output=True, text=True, env=environment)
            missing = {
                line.split()[0]
                for line in linked.stdout.splitlines()
                if "not found" in line and not line.split()[0].startswith("libwayland-")
            }
            if missing:
                unresolved[library.name] = sorted(missing)
    assert unresolved == {}


def test_double_clicked_it_opens_the_window_offline_segments_the_samples_and_closes(
    bundle: Path, tmp_path: Path
) -> None:
    checked = _run(bundle, tmp_path / "home", "workbench", "--check", display=True)

    report = checked.stdout.splitlines()
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    assert report[0].startswith("Window shown ") and report[0].endswith(" s after the program started")
    assert "Segmented 6 of them with the classical method" in checked.stdout
    assert "resunet (not here)" in checked.stdout and "classical (yes)" in checked.stdout
    assert report[-1] == "Installation check passed"
    leftover = subprocess.run(["pgrep", "-f", str(bundle / "SpheroSeg")], capture_output=True, text=True)
    assert leftover.stdout == "", "the offline server or a worker outlived the window"


def test_it_segments_lzw_tiffs_on_worker_processes_from_the_command_line(
    bundle: Path, tmp_path: Path
) -> None:
    images = tmp_path / "plate"
    images.mkdir()
    for seed in range(3):
        scene = generate_scene(seed, shape=(320, 384))
        tifffile.imwrite(images / f"well{seed}.tif", scene.image, compression="lzw")
    out = tmp_path / "results"

    segmented = _run(
        bundle,
        tmp_path / "home",
        "segment",
        str(images),
        "--method",
        "classical",
        "--workers",
        "2",
        "--out",
        str(out),
        "--formats",
        "csv,geojson",
    )

    assert segmented.returncode == 0, segmented.stdout[-3000:] + segmented.stderr[-3000:]
    with (out / "metrics.csv").open() as table:
        rows = list(csv.DictReader(table))
    assert {Path(row["image"]).name for row in rows} == {f"well{seed}.tif" for seed in range(3)}
    assert sorted((out / "geojson").iterdir()) and all(float(row["area_px"]) > 0 for row in rows)


def test_the_resunet_is_refused_with_what_to_do_instead(bundle: Path, tmp_path: Path) -> None:
    refused = _run(
        bundle,
        tmp_path / "home",
        "segment",
        str(ROOT / "resources" / "samples" / "touching_pair.tif"),
        "--method",
        "resunet",
        "--out",
        str(tmp_path / "results"),
    )

    assert refused.returncode != 0
    assert "torch" in refused.stderr and "Traceback" not in refused.stderr


def test_the_menu_entry_installs_valid_and_points_at_the_bundle(bundle: Path, tmp_path: Path) -> None:
    data = tmp_path / "share"
    environment = {**_bare_environment(tmp_path / "home"), "XDG_DATA_HOME": str(data)}

    subprocess.run([str(bundle / "install-menu-entry.sh")], env=environment, check=True, capture_output=True)

    entry = data / "applications" / "spheroseg-workbench.desktop"
    validated = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
    assert validated.returncode == 0 and validated.stdout == "", validated.stdout
    assert f'Exec="{bundle}/SpheroSeg" workbench %F' in entry.read_text()
    assert (data / "icons" / "hicolor" / "512x512" / "apps" / "spheroseg-workbench.png").is_file()
