"""Assemble one synthetic scene: sample, lay out, draw, blur, scatter, light and expose.

Order of work (each step draws from one ``numpy.random.Generator`` seeded from the seed and the config,
so the same seed, shape and config always give the same bits):

1. Spheroid radii; the pixel size that makes the largest one 100-1000 um across where the configured
   range allows; the camera; optics (phase contrast or brightfield, PSF, defocus); the well.
2. Outlines, placed largest first (:mod:`cluster.synthetic.layout`), and each spheroid's look.
3. Spheroids drawn into a transmission image (1 = clear) with exact labels (:mod:`.spheroid`), then the
   part of the image they cover blurred by the PSF.
4. Single cells, debris, shed cells and dust stamped in, already blurred (:mod:`.particles`).
5. Times the illumination field (:mod:`.background`), then digitised (:mod:`.camera`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray

from cluster.synthetic import particles
from cluster.synthetic.background import illumination
from cluster.synthetic.camera import Camera, expose, sample_camera
from cluster.synthetic.config import SceneConfig
from cluster.synthetic.fields import FloatArray, chance, gaussian_blur, log_uniform, uniform
from cluster.synthetic.layout import Placement, lay_out, sample_outline, sample_radii, sample_well
from cluster.synthetic.spheroid import Look, draw

__all__ = ["Scene", "SceneDescription", "generate_scene", "scenes"]

_MIN_SIDE = 64
_TRAINING = SceneConfig.training()


class SceneDescription(TypedDict):
    """What was drawn in a scene; labels refer to :attr:`Scene.labels`."""

    n_spheroids: int
    n_hollow: int
    n_touching_pairs: int
    n_necrotic: int
    n_cells: int
    n_debris: int
    hollow_labels: tuple[int, ...]
    touching_labels: tuple[tuple[int, int], ...]
    radii_px: tuple[float, ...]
    phase_contrast: bool
    well_edge: bool
    psf_sigma_px: float
    photons: float
    bits: int
    msb_aligned: bool
    auto_contrast: bool


@dataclass(frozen=True, eq=False)
class Scene:
    """A synthetic brightfield image and its exact instance labels.

    ``image`` is 2-D uint8, or uint16 holding ``description["bits"]``-bit camera data (possibly with a
    dark offset, or shifted to the top bits). ``labels`` is int32 of the same shape: 0 background, 1..n
    one spheroid each; a hollow spheroid's lumen is 0.
    """

    image: NDArray[np.uint8] | NDArray[np.uint16]
    labels: NDArray[np.int32]
    pixel_size_um: float
    description: SceneDescription


def generate_scene(seed: int, shape: tuple[int, int] = (512, 512), config: SceneConfig = _TRAINING) -> Scene:
    """Generate one scene; the same ``seed``, ``shape`` and ``config`` always give identical arrays.

    ``config`` defaults to :meth:`SceneConfig.training`. Different configs give unrelated scenes even for
    the same seed (the generator is seeded from both).
    """
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if len(shape) != 2 or min(shape) < _MIN_SIDE:
        raise ValueError(f"shape must be (height, width) with both at least {_MIN_SIDE}, got {shape!r}")
    shape = (int(shape[0]), int(shape[1]))
    rng = np.random.default_rng(np.random.SeedSequence([seed, _config_key(config)]))

    radii = sample_radii(rng, config, shape)
    optics = _sample_optics(rng, config, radii[0])
    well = sample_well(rng, config, shape)
    outlines = [sample_outline(rng, config, r, optics.cell_px) for r in radii]
    placements = lay_out(rng, config, shape, outlines, well)
    looks = _sample_looks(rng, config, placements, optics.cell_px, optics.phase_contrast)

    transmission = np.ones(shape, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.int32)
    _draw_spheroids(rng, placements, looks, optics.psf, transmission, labels)
    n_cells, n_debris = _scatter(rng, config, transmission, placements, optics, _cell_halo(looks))
    transmission *= illumination(rng, config, shape, well)
    image = expose(rng, transmission, optics.camera)

    description = SceneDescription(
        n_spheroids=len(placements),
        n_hollow=sum(1 for look in looks if look.lumen > 0),
        n_touching_pairs=sum(1 for p in placements if p.partner is not None),
        n_necrotic=sum(1 for look in looks if look.core_fraction > 0),
        n_cells=n_cells,
        n_debris=n_debris,
        hollow_labels=tuple(i + 1 for i, look in enumerate(looks) if look.lumen > 0),
        touching_labels=tuple(
            (p.partner + 1, i + 1) for i, p in enumerate(placements) if p.partner is not None
        ),
        radii_px=tuple(round(p.outline.radius, 2) for p in placements),
        phase_contrast=optics.phase_contrast,
        well_edge=well is not None,
        psf_sigma_px=round(optics.psf, 3),
        photons=round(optics.camera.photons, 1),
        bits=optics.camera.bits,
        msb_aligned=optics.camera.msb_aligned,
        auto_contrast=optics.camera.auto_contrast,
    )
    return Scene(
        image=image, labels=labels, pixel_size_um=round(optics.pixel_size, 4), description=description
    )


def scenes(
    seed: int, n: int, shape: tuple[int, int] = (512, 512), config: SceneConfig = _TRAINING
) -> Iterator[Scene]:
    """``n`` scenes; scene ``i`` is ``generate_scene(seed + i, shape, config)``."""
    for i in range(n):
        yield generate_scene(seed + i, shape, config)


_LATER_FIELDS: dict[str, object] = {"p_border_cut": 0.0, "fibres": (0, 0)}
"""Fields added after scenes were first trained on, with the value that leaves a scene as it was: left out
of the digest at that value, so those configs keep their seeds' scenes."""


def _config_key(config: SceneConfig) -> int:
    """A stable 64-bit digest of the config (``hash()`` of a dataclass is not stable across runs)."""
    text = repr(config)
    for name, unchanged in _LATER_FIELDS.items():
        if getattr(config, name) == unchanged:
            text = text.replace(f", {name}={unchanged!r}", "")
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class _Optics:
    """What the microscope and camera of one scene are like."""

    pixel_size: float
    cell_px: float
    phase_contrast: bool
    psf: float
    camera: Camera


def _sample_optics(rng: np.random.Generator, config: SceneConfig, radius: float) -> _Optics:
    """Magnification (matched to the largest spheroid's ``radius``), contrast mode, blur and camera."""
    pixel_size = _pixel_size(rng, config, radius)
    cell_px = uniform(rng, config.cell_diameter_um) / pixel_size
    camera = sample_camera(rng, config)
    phase = chance(rng, config.p_phase_contrast)
    psf = uniform(rng, config.psf_sigma_px)
    if chance(rng, config.p_defocus):
        psf = math.hypot(psf, uniform(rng, config.defocus_sigma_px))
    return _Optics(pixel_size, cell_px, phase, psf, camera)


def _scatter(
    rng: np.random.Generator,
    config: SceneConfig,
    transmission: FloatArray,
    placements: list[Placement],
    optics: _Optics,
    halo: float,
) -> tuple[int, int]:
    """Stamp shed cells, single cells, debris and dust; returns the numbers of cells and of debris."""
    outlines = [p.outline for p in placements]
    shed = particles.shed_cell_counts(rng, outlines, config.p_shed_cells, config.shed_cells)
    for outline, count in zip(outlines, shed, strict=True):
        particles.add_shed_cells(transmission, rng, outline, count, optics.cell_px, optics.psf, halo)
    density = uniform(rng, config.cell_density)
    n_cells = particles.add_cells(transmission, rng, density, optics.cell_px, optics.psf, halo)
    n_debris = particles.add_debris(transmission, rng, uniform(rng, config.debris_density), optics.psf)
    particles.add_dust(transmission, rng, int(rng.integers(config.dust_rings[0], config.dust_rings[1] + 1)))
    if config.fibres[1] > 0:  # no draw at all otherwise: scenes made before fibres existed stay as they were
        count = int(rng.integers(config.fibres[0], config.fibres[1] + 1))
        particles.add_fibres(transmission, rng, count, optics.psf)
    return n_cells + sum(shed), n_debris


def _cell_halo(looks: list[Look]) -> float:
    """Phase-contrast halo of single cells: a little weaker than the spheroids' (0 in brightfield)."""
    return 0.6 * looks[0].halo if looks else 0.0


def _pixel_size(rng: np.random.Generator, config: SceneConfig, radius: float) -> float:
    """A pixel size in the configured range that makes a spheroid of ``radius`` px plausible in um."""
    low = max(config.pixel_size_um[0], config.diameter_um[0] / (2 * radius))
    high = min(config.pixel_size_um[1], config.diameter_um[1] / (2 * radius))
    if low > high:  # no size in range fits the physical diameters: take the nearest end of the range
        low = high = config.pixel_size_um[1] if high == config.pixel_size_um[1] else config.pixel_size_um[0]
    return log_uniform(rng, (low, high))


def _sample_looks(
    rng: np.random.Generator, config: SceneConfig, placements: list[Placement], cell_px: float, phase: bool
) -> list[Look]:
    """One look per spheroid: a style shared by the scene (one cell line), jittered per spheroid."""
    center = uniform(rng, config.center_density)
    edge = min(uniform(rng, config.edge_density), 0.8 * center)
    rim = uniform(rng, config.rim_darkness)
    texture = uniform(rng, config.texture_strength)
    halo = uniform(rng, config.halo_strength) if phase else 0.0
    halo_width = min(max(cell_px * rng.uniform(0.4, 1.2), 2.0), 15.0)
    coarse_weight = rng.uniform(0.2, 0.7)
    falloff = uniform(rng, config.thickness_falloff)
    looks = []
    for p in placements:
        jitter = rng.uniform(0.85, 1.15, size=3)
        size = math.sqrt(p.outline.radius / placements[0].outline.radius)
        lumen, core, change = 0.0, 0.0, 0.0
        inner = p.outline.min_extent
        if chance(rng, config.p_hollow) and inner >= 24:
            lumen = float(np.clip(uniform(rng, config.lumen_fraction), 5 / inner, 1 - 6 / inner))
        elif chance(rng, config.p_necrotic):
            core = uniform(rng, config.core_fraction)
            change = -rng.uniform(0.25, 0.6) if chance(rng, config.p_bright_core) else rng.uniform(0.3, 1.2)
        looks.append(
            Look(
                center_density=center * jitter[0] * size * (1 - 0.6 * lumen),
                edge_density=edge * jitter[1],
                rim_darkness=rim * jitter[2],
                rim_width=max(cell_px * rng.uniform(0.25, 0.6), 1.0),
                texture_strength=texture,
                lumen=lumen,
                lumen_density=rng.uniform(0.0, 0.08) if lumen else 0.0,
                core_fraction=core,
                core_change=change,
                halo=halo,
                halo_width=halo_width,
                grain_px=cell_px,
                coarse_weight=coarse_weight,
                thickness_falloff=falloff,
            )
        )
    return looks


def _draw_spheroids(
    rng: np.random.Generator,
    placements: list[Placement],
    looks: list[Look],
    psf: float,
    transmission: FloatArray,
    labels: NDArray[np.int32],
) -> None:
    """Draw every spheroid, then blur the part of ``transmission`` they cover by the PSF."""
    shape = (labels.shape[0], labels.shape[1])
    owner_u = np.full(shape, np.inf, dtype=np.float32)
    box = [shape[0], shape[1], 0, 0]
    for label, (p, look) in enumerate(zip(placements, looks, strict=True), start=1):
        draw(rng, p.outline, look, label, transmission, labels, owner_u)
        reach = p.outline.max_extent + look.margin + 3 * psf + 2
        box = [
            min(box[0], int(p.outline.cy - reach)),
            min(box[1], int(p.outline.cx - reach)),
            max(box[2], int(p.outline.cy + reach) + 2),
            max(box[3], int(p.outline.cx + reach) + 2),
        ]
    if placements:
        rows = slice(max(box[0], 0), min(box[2], shape[0]))
        cols = slice(max(box[1], 0), min(box[3], shape[1]))
        transmission[rows, cols] = gaussian_blur(transmission[rows, cols], psf)
