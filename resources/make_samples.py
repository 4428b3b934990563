"""Write the bundled sample images in resources/samples/ (deterministic; run from the repository root).

Each sample is a synthetic scene (``cluster.synthetic``, fixed seed) saved in a format labs actually use,
chosen to show one thing the tool handles. The true label masks go to resources/samples/truth/ so a user
can check the results (``spheroseg evaluate``). Usage: ``python resources/make_samples.py``
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from cluster.synthetic import generate_scene

SAMPLES = Path(__file__).resolve().parent / "samples"
SHAPE = (384, 512)

# name: (seed, format, what it shows)
CATALOGUE: dict[str, tuple[int, str, str]] = {
    "single_necrotic_core": (
        8,
        "png",
        "one spheroid with a dark necrotic core, 8-bit PNG with pHYs pixel size",
    ),
    "several_spheroids": (9, "jpeg", "several spheroids of different sizes, JPEG without a pixel size"),
    "touching_pair": (21, "tiff8", "two touching spheroids that must be split, 8-bit TIFF"),
    "hollow_spheroid": (5, "png", "a hollow spheroid whose lumen is a hole"),
    "phase_contrast_halo": (0, "tiff16", "bright phase-contrast halo, 16-bit TIFF with resolution tags"),
    "bright_core_and_hollow": (
        6,
        "ome16",
        "a translucent necrotic core beside a hollow one, 16-bit OME-TIFF",
    ),
}


def _to_8bit(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    low, high = np.percentile(image, (0.1, 99.9))
    return np.clip((image.astype(np.float64) - low) / max(high - low, 1) * 255, 0, 255).astype(np.uint8)


def _to_16bit(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        return image
    return (image.astype(np.uint16) << 4) + 100  # 12-bit camera data with a dark offset


def _write(path: Path, image: np.ndarray, kind: str, pixel_size_um: float) -> Path:
    if kind == "png":
        out = path.with_suffix(".png")
        pixels_per_metre = round(1e6 / pixel_size_um)
        buffer = io.BytesIO()
        Image.fromarray(_to_8bit(image)).save(buffer, format="PNG", optimize=True)
        _png_with_phys(buffer.getvalue(), out, pixels_per_metre)
    elif kind == "jpeg":
        out = path.with_suffix(".jpg")
        Image.fromarray(_to_8bit(image)).save(out, format="JPEG", quality=90)
    elif kind == "tiff8":
        out = path.with_suffix(".tif")
        tifffile.imwrite(out, _to_8bit(image), compression="zlib")
    elif kind == "tiff16":
        out = path.with_suffix(".tif")
        per_cm = 1e4 / pixel_size_um
        tifffile.imwrite(
            out,
            _to_16bit(image),
            compression="zlib",
            resolution=(per_cm, per_cm),
            resolutionunit="CENTIMETER",
        )
    elif kind == "ome16":
        out = path.with_suffix(".ome.tif")
        tifffile.imwrite(
            out,
            _to_16bit(image),
            compression="zlib",
            ome=True,
            metadata={"axes": "YX", "PhysicalSizeX": pixel_size_um, "PhysicalSizeY": pixel_size_um},
        )
    else:
        raise ValueError(kind)
    return out


def _png_with_phys(png: bytes, out: Path, pixels_per_metre: int) -> None:
    """Insert a pHYs chunk (pixels per metre) after IHDR: Pillow's writer only offers dpi."""
    import struct
    import zlib

    body = b"pHYs" + struct.pack(">IIB", pixels_per_metre, pixels_per_metre, 1)
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body))
    ihdr_end = 8 + 4 + 4 + 13 + 4
    out.write_bytes(png[:ihdr_end] + chunk + png[ihdr_end:])


def main() -> None:
    truth = SAMPLES / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    for name, (seed, kind, _what) in CATALOGUE.items():
        scene = generate_scene(seed, SHAPE)
        written = _write(SAMPLES / name, scene.image, kind, scene.pixel_size_um)
        labels = scene.labels.astype(np.uint16 if scene.labels.max() > 255 else np.uint8)
        Image.fromarray(labels).save(truth / f"{name}.png", optimize=True)
        print(f"{written.name:32s} {written.stat().st_size / 1024:7.1f} KiB  {scene.pixel_size_um:.2f} um/px")


if __name__ == "__main__":
    main()
