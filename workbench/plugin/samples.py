"""The bundled sample images (``resources/samples``, :data:`workbench.samples.SAMPLES`) as napari sample
data: File > Open Sample > SpheroSeg.

Each opens as one grayscale image layer, read by the core as the server reads an upload; its pixel size
(from the file, where it says) is kept in the layer's ``metadata["pixel_size_um"]``, which the "Segment
spheroids" widget measures with. npe2 names one command per sample, hence one small function each.
"""

from __future__ import annotations

from pathlib import Path

from cluster import read_image
from workbench.plugin.shapes import LayerData
from workbench.samples import SAMPLES

__all__ = [
    "SAMPLE_NAMES",
    "bright_core_and_hollow",
    "hollow_spheroid",
    "phase_contrast_halo",
    "sample_layers",
    "several_spheroids",
    "single_necrotic_core",
    "touching_pair",
]

SAMPLE_NAMES: dict[str, str] = {
    "bright_core_and_hollow": "bright_core_and_hollow.ome.tif",
    "hollow_spheroid": "hollow_spheroid.png",
    "phase_contrast_halo": "phase_contrast_halo.tif",
    "several_spheroids": "several_spheroids.jpg",
    "single_necrotic_core": "single_necrotic_core.png",
    "touching_pair": "touching_pair.tif",
}
"""The manifest's sample key -> the file in :data:`workbench.samples.SAMPLES`."""


def sample_layers(file_name: str, folder: Path = SAMPLES) -> list[LayerData]:
    """The image layer of one sample file."""
    image = read_image(folder / file_name)
    name = file_name.split(".", 1)[0]
    metadata = {"pixel_size_um": image.info.pixel_size_um, "source_file": file_name}
    return [(image.pixels, {"name": name, "metadata": metadata}, "image")]


def bright_core_and_hollow() -> list[LayerData]:
    return sample_layers(SAMPLE_NAMES["bright_core_and_hollow"])


def hollow_spheroid() -> list[LayerData]:
    return sample_layers(SAMPLE_NAMES["hollow_spheroid"])


def phase_contrast_halo() -> list[LayerData]:
    return sample_layers(SAMPLE_NAMES["phase_contrast_halo"])


def several_spheroids() -> list[LayerData]:
    return sample_layers(SAMPLE_NAMES["several_spheroids"])


def single_necrotic_core() -> list[LayerData]:
    return sample_layers(SAMPLE_NAMES["single_necrotic_core"])


def touching_pair() -> list[LayerData]:
    return sample_layers(SAMPLE_NAMES["touching_pair"])
