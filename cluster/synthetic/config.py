"""The parameter ranges a synthetic scene is drawn from: one frozen, typed :class:`SceneConfig`.

Every field is either a probability, an inclusive ``(low, high)`` range that a scene samples from, or a
small tuple of choices. :meth:`SceneConfig.training` (the default) covers the images the first ResUNet
was trained on, :meth:`SceneConfig.training_v2` and the ranges after it (:data:`TRAINING_SCENES`) those of
the second; :meth:`SceneConfig.held_out` widens most ranges and adds cameras and exports the training sets
never show (auto-contrast exports, MSB-aligned 12-bit data, 10- and 16-bit cameras), so an evaluation on
it measures generalisation rather than memorisation. Its light and focus (down to 80 photons a pixel,
defocused by up to 4 px) were beyond training until the ``v2.2`` ranges reached them.

Lengths are in pixels unless the name says ``_um``; densities are objects per megapixel of image.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

__all__ = ["TRAINING_SCENES", "FloatRange", "IntRange", "SceneConfig"]

TRAINING_SCENES = ("v1", "v2", "v2.1", "v2.2")
"""Names of the ranges a training run may draw scenes from (:meth:`SceneConfig.for_training`): each named
by the model version first trained on it."""

_POSITIVE = {
    "radius_px",
    "diameter_um",
    "cell_diameter_um",
    "well_radius_fraction",
    "pixel_size_um",
    "photons",
}
"""Ranges drawn log-uniformly or divided by: their low end must be above zero."""

_FRACTIONS = {"lumen_fraction", "core_fraction", "camera_offset_fraction", "background_level"}
"""Ranges of fractions that must stay below one."""

FloatRange = tuple[float, float]
"""An inclusive ``(low, high)`` range of floats; ``low == high`` fixes the value."""

IntRange = tuple[int, int]
"""An inclusive ``(low, high)`` range of integers."""


@dataclass(frozen=True)
class SceneConfig:
    """Ranges and probabilities that one synthetic brightfield scene is sampled from.

    Spheroids (``spheroid_count`` … ``shed_cells``): how many, how large, what shape and what they look
    like. Background (``illumination_unevenness`` … ``dust_rings``): lighting, the well wall and the small
    things lying around. Optics and camera (``p_phase_contrast`` … ``p_auto_contrast``): magnification,
    blur, noise and how the camera stores the numbers.
    """

    # -- spheroids ------------------------------------------------------------------------------------
    spheroid_count: IntRange = (1, 4)
    """Number of spheroids a scene asks for (fewer are drawn when they do not fit)."""
    p_single: float = 0.5
    """Probability that a scene holds exactly one spheroid (the common 1-per-well assay)."""
    radius_px: FloatRange = (15.0, 1e9)
    """Mean spheroid radius in pixels; the upper end is further capped by ``max_radius_fraction``."""
    max_radius_fraction: float = 0.45
    """Largest mean radius as a fraction of the image's shorter side (a field-filling spheroid)."""
    radius_spread: float = 0.25
    """Log-normal spread of radii between spheroids of one scene."""
    diameter_um: FloatRange = (100.0, 1000.0)
    """Physical diameter the pixel size is chosen to match, where ``pixel_size_um`` allows."""
    elongation: FloatRange = (1.0, 1.35)
    """Axis ratio of the underlying ellipse."""
    irregularity: FloatRange = (0.0, 0.06)
    """Standard deviation of low-order (k = 2..8) boundary harmonics, as a fraction of the radius."""
    p_lobed: float = 0.15
    """Probability of one strong harmonic (k = 2..5) giving a peanut-shaped or lobed outline."""
    lobe_amplitude: FloatRange = (0.04, 0.12)
    """Amplitude of that harmonic as a fraction of the radius."""
    edge_roughness: FloatRange = (0.05, 0.3)
    """Cell-scale bumpiness of the outline, in cell diameters."""
    p_touching: float = 0.25
    """Probability that a further spheroid is placed touching an earlier one."""
    touch_overlap: FloatRange = (0.0, 0.08)
    """Overlap of a touching pair along the line of centres, as a fraction of the smaller radius."""
    p_hollow: float = 0.12
    """Probability that a large enough spheroid is hollow (a ring around a background-like lumen)."""
    lumen_fraction: FloatRange = (0.35, 0.7)
    """Lumen radius as a fraction of the outer radius."""
    p_necrotic: float = 0.35
    """Probability of a necrotic core."""
    p_bright_core: float = 0.3
    """Probability that a necrotic core is brighter (translucent) rather than darker."""
    core_fraction: FloatRange = (0.3, 0.65)
    """Necrotic core radius as a fraction of the outer radius."""
    center_density: FloatRange = (0.6, 3.0)
    """Optical density (``-ln`` transmission) through the middle of a spheroid."""
    edge_density: FloatRange = (0.15, 0.6)
    """Optical density just inside the edge."""
    thickness_falloff: FloatRange = (0.0, 1.0)
    """Blend of the projected thickness ``t`` towards ``t**2``: higher gives a lighter periphery."""
    rim_darkness: FloatRange = (0.0, 0.5)
    """Extra optical density of the refractive rim hugging the inside of the edge."""
    texture_strength: FloatRange = (0.06, 0.25)
    """Relative modulation of density by the granular, cell-scale texture."""
    cell_diameter_um: FloatRange = (9.0, 16.0)
    """Diameter of one cell; sets texture grain, edge bumps and single-cell size."""
    p_border_cut: float = 0.0
    """Probability that a free spheroid lies across the image's border, cut by it (its centre from a tenth of
    its radius outside the image to 0.65 of it inside); 0 in training, whose scenes it leaves as they
    were."""
    p_shed_cells: float = 0.3
    """Probability that a spheroid has loose cells lying just outside its edge."""
    shed_cells: IntRange = (2, 20)
    """How many loose cells such a spheroid has."""

    # -- background -----------------------------------------------------------------------------------
    illumination_unevenness: FloatRange = (0.0, 0.12)
    """Amplitude of smooth, blotchy illumination variation."""
    vignetting: FloatRange = (0.0, 0.4)
    """Relative darkening from the vignetting centre to the image corners."""
    gradient: FloatRange = (0.0, 0.2)
    """Relative brightness change of a linear gradient across the image."""
    background_texture: FloatRange = (0.0, 0.02)
    """Amplitude of fine mottling of the background (medium, plastic)."""
    p_well_edge: float = 0.3
    """Probability that the curved dark wall of a round well crosses the image."""
    well_radius_fraction: FloatRange = (0.52, 0.95)
    """Radius of that well as a fraction of the image's longer side."""
    cell_density: FloatRange = (0.0, 120.0)
    """Scattered single cells per megapixel."""
    debris_density: FloatRange = (0.0, 80.0)
    """Debris particles per megapixel."""
    dust_rings: IntRange = (0, 2)
    """Faint out-of-focus dust rings (dirt on the optics)."""
    fibres: IntRange = (0, 0)
    """Dark fibres, scratches and bands crossing the scene (a well's wall seen without its darker outside):
    long, thin and unlabelled, so a segmenter learns that dark and sharp is not enough to be a spheroid."""

    # -- optics and camera ----------------------------------------------------------------------------
    p_phase_contrast: float = 0.3
    """Probability of phase-contrast optics: bright halos outside edges and around cells."""
    halo_strength: FloatRange = (0.1, 0.5)
    """Relative brightness of a phase-contrast halo at the edge."""
    pixel_size_um: FloatRange = (0.65, 5.0)
    """Pixel size in the specimen plane (magnification); reported with the scene."""
    psf_sigma_px: FloatRange = (0.5, 1.5)
    """Gaussian sigma of the in-focus point spread function."""
    p_defocus: float = 0.1
    """Probability that the scene is out of focus."""
    defocus_sigma_px: FloatRange = (1.5, 3.0)
    """Extra blur sigma of an out-of-focus scene."""
    photons: FloatRange = (300.0, 8000.0)
    """Photo-electrons per pixel at background level (sets shot noise)."""
    read_noise_e: FloatRange = (1.5, 8.0)
    """Camera read noise in electrons."""
    p_16bit: float = 0.3
    """Probability of a 16-bit image (else 8-bit)."""
    camera_bits: tuple[int, ...] = (12, 14)
    """Bit depths a 16-bit camera digitises at; the data use only that part of the uint16 range."""
    camera_offset_fraction: FloatRange = (0.0, 0.03)
    """Dark offset (black level) of a 16-bit camera, as a fraction of its range."""
    background_level: FloatRange = (0.5, 0.85)
    """Background brightness as a fraction of the camera's range (exposure)."""
    p_msb_aligned: float = 0.0
    """Probability that a camera's data are shifted to the top bits of uint16 (12-bit data times 16)."""
    p_auto_contrast: float = 0.15
    """Probability that an 8-bit image was exported with an auto-contrast stretch."""

    def __post_init__(self) -> None:
        for f in fields(self):
            problem = _check(f.name, getattr(self, f.name))
            if problem:
                raise ValueError(f"SceneConfig.{f.name} {problem}, got {getattr(self, f.name)!r}")
        if self.spheroid_count[0] < 1:
            raise ValueError(
                f"SceneConfig.spheroid_count must start at 1 or more, got {self.spheroid_count!r}"
            )
        if not 0.0 < self.max_radius_fraction <= 0.5:
            raise ValueError(
                f"SceneConfig.max_radius_fraction must be in (0, 0.5], got {self.max_radius_fraction}"
            )

    @classmethod
    def training(cls) -> SceneConfig:
        """The default ranges: what the ResUNet is trained on (classical was tuned under gentler light)."""
        return cls()

    @classmethod
    def for_training(cls, name: str) -> SceneConfig:
        """The ranges called ``name`` in :data:`TRAINING_SCENES`."""
        if name not in TRAINING_SCENES:
            raise ValueError(f"training scenes must be one of {', '.join(TRAINING_SCENES)}, not {name!r}")
        named = {
            "v1": cls.training,
            "v2": cls.training_v2,
            "v2.1": cls.training_v2_1,
            "v2.2": cls.training_v2_2,
        }
        return named[name]()

    @classmethod
    def training_v2(cls) -> SceneConfig:
        """The ranges ResUNet 2 was trained on: :meth:`training` plus what version 1 got wrong (issue 14):
        spheroids from 10 px in radius beside large ones, blur up to a defocused 4 px, spheroids cut by the
        border, fibres and bands, wells small enough for their dark outside to fill a corner, and hollow
        spheroids with walls down to a tenth of their radius (so a thin ring is not taken for a fibre). Still
        inside :meth:`held_out` (its extremes stay unseen: 8 spheroids, elongation 1.8, the harshest
        cameras and light)."""
        return replace(
            cls(),
            spheroid_count=(1, 6),
            radius_px=(10.0, 1e9),
            radius_spread=0.4,
            p_touching=0.3,
            p_hollow=0.2,
            lumen_fraction=(0.35, 0.9),
            p_border_cut=0.1,
            well_radius_fraction=(0.45, 0.95),
            fibres=(0, 2),
            psf_sigma_px=(0.5, 2.2),
            p_defocus=0.2,
            defocus_sigma_px=(1.5, 3.5),
        )

    @classmethod
    def training_v2_1(cls) -> SceneConfig:
        """The ranges ResUNet 2.1 was trained on: :meth:`training_v2` with single cells as large as they
        come (up to 20 um: 40 px across at 0.5 um a pixel, larger than the smallest spheroids) and as dense
        as a freshly seeded well, which version 2 took for small spheroids (38 of its 52 false spheroids on
        scenes of the held-out ranges), and spheroids that touch as often and as deeply as grown ones do."""
        return replace(
            cls.training_v2(),
            cell_diameter_um=(7.0, 20.0),
            cell_density=(0.0, 300.0),
            p_touching=0.4,
            touch_overlap=(0.0, 0.15),
        )

    @classmethod
    def training_v2_2(cls) -> SceneConfig:
        """The ranges ResUNet 2.2 was trained on: :meth:`training_v2_1` with the light and the focus of
        :meth:`held_out`, down to 80 photons a pixel and blurred by up to a 2.5 px PSF and 4 px of defocus
        in three scenes of ten. Three in four of version 2.1's misses were in such scenes; a lab's dim,
        defocused plate is as real as a sharp one, so these are no longer kept unseen."""
        return replace(
            cls.training_v2_1(),
            psf_sigma_px=(0.5, 2.5),
            p_defocus=0.3,
            defocus_sigma_px=(1.5, 4.0),
            photons=(80.0, 8000.0),
        )

    @classmethod
    def held_out(cls) -> SceneConfig:
        """Wider ranges the training sets never show, for evaluating generalisation: the shapes, the
        crowding, the cameras, the halos and the uneven light stay beyond them (the single cells' size and
        density and the touching are those of the ``v2.1`` training ranges, the light and the focus those of
        ``v2.2``)."""
        return replace(
            cls(),
            spheroid_count=(1, 8),
            p_single=0.35,
            radius_px=(10.0, 1e9),
            radius_spread=0.4,
            elongation=(1.0, 1.8),
            irregularity=(0.0, 0.1),
            p_lobed=0.3,
            lobe_amplitude=(0.04, 0.16),
            edge_roughness=(0.0, 0.5),
            p_touching=0.4,
            touch_overlap=(0.0, 0.15),
            p_border_cut=0.15,
            p_hollow=0.2,
            lumen_fraction=(0.3, 0.75),
            p_necrotic=0.5,
            p_bright_core=0.5,
            center_density=(0.3, 4.0),
            edge_density=(0.05, 0.8),
            thickness_falloff=(-0.3, 1.0),
            rim_darkness=(0.0, 0.8),
            texture_strength=(0.02, 0.4),
            cell_diameter_um=(7.0, 20.0),
            p_shed_cells=0.5,
            shed_cells=(2, 40),
            illumination_unevenness=(0.0, 0.2),
            vignetting=(0.0, 0.5),
            gradient=(0.0, 0.3),
            background_texture=(0.0, 0.05),
            p_well_edge=0.35,
            well_radius_fraction=(0.5, 1.0),
            cell_density=(0.0, 300.0),
            debris_density=(0.0, 250.0),
            dust_rings=(0, 5),
            p_phase_contrast=0.5,
            halo_strength=(0.05, 0.8),
            pixel_size_um=(0.5, 6.5),
            psf_sigma_px=(0.4, 2.5),
            p_defocus=0.3,
            defocus_sigma_px=(1.5, 4.0),
            photons=(80.0, 20000.0),
            read_noise_e=(1.0, 15.0),
            p_16bit=0.5,
            camera_bits=(10, 12, 14, 16),
            camera_offset_fraction=(0.0, 0.08),
            background_level=(0.3, 0.95),
            p_msb_aligned=0.3,
            p_auto_contrast=0.35,
        )


def _check(name: str, value: object) -> str | None:
    """What is wrong with one field's value, or None."""
    if name.startswith("p_"):
        return (
            None if isinstance(value, float | int) and 0 <= value <= 1 else "must be a probability in [0, 1]"
        )
    if name == "camera_bits":
        bits = value if isinstance(value, tuple) else ()
        return None if bits and all(8 < b <= 16 for b in bits) else "must be bit depths in 9..16"
    if not isinstance(value, tuple):
        return None
    low, high = value
    floor = -1.0 if name == "thickness_falloff" else 1.0 if name == "elongation" else 0.0
    if not floor <= low <= high:
        return f"must be a range with {floor} <= low <= high"
    if name in _POSITIVE and low <= 0:
        return "must be a range of positive numbers"
    if name in _FRACTIONS and high >= 1:
        return "must be a range of fractions below 1"
    return None
