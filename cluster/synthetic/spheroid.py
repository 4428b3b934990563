"""One spheroid: its outline, how it looks, and how it is drawn into a scene.

**Outline.** A star-shaped curve around ``(cy, cx)``: an ellipse of mean radius ``radius``, axis ratio
``axis_ratio`` and orientation ``angle``, whose radius is further multiplied by a periodic profile
``boundary(theta)`` (mean about 1) sampled at evenly spaced angles. The profile sums low-order harmonics
(an irregular or lobed outline) and scallops (cells bulging out side by side). A pixel's normalised
radius ``u`` is its distance from the centre in the ellipse's frame divided by ``boundary(theta)``: the
spheroid is ``u < 1``, a hollow spheroid's lumen ``u < lumen``, a necrotic core ``u < core_fraction``.

**Appearance.** Light through the spheroid is ``exp(-density)`` (Beer-Lambert), where density grows from
``edge_density`` at the edge to ``center_density`` with the projected thickness of a sphere (of a torus
for a hollow one), is modulated by granular texture, raised in a dark core or lowered in a translucent
one, and raised in a thin refractive rim inside the edge. Outside, phase-contrast optics add a bright halo
that fades over ``halo_width`` pixels (to zero at three widths).

**Drawing.** :func:`draw` writes transmission, labels and the owning ``u`` into the scene's arrays. A pixel
belongs to the spheroid with the smallest ``u`` there, so a touching pair splits its overlap along the
line where both are equally deep, and each spheroid's rim darkens that dividing line in the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from cluster.synthetic.fields import FloatArray, smooth_noise

__all__ = ["Look", "Outline", "boundary_profile", "draw"]

_STRIP_PIXELS = 32768
"""Pixels per strip when drawing a spheroid (a few strip-sized float32 temporaries fit in L2 cache)."""

_LUT_SIZE = 4096
"""Entries per half-plane of the radius look-up table (0.04 to 0.09 degrees apart)."""


@dataclass(frozen=True, eq=False)
class Outline:
    """Where a spheroid is and what shape it has (see the module docstring)."""

    cy: float
    cx: float
    radius: float
    axis_ratio: float
    angle: float
    boundary: FloatArray

    def moved(self, cy: float, cx: float) -> Outline:
        """The same outline centred at ``(cy, cx)``."""
        return Outline(cy, cx, self.radius, self.axis_ratio, self.angle, self.boundary)

    def resized(self, radius: float) -> Outline:
        """The same outline with mean radius ``radius``."""
        return Outline(self.cy, self.cx, radius, self.axis_ratio, self.angle, self.boundary)

    @cached_property
    def max_extent(self) -> float:
        """An upper bound on the distance from the centre to the outline, in pixels."""
        return self.radius * math.sqrt(self.axis_ratio) * float(self.boundary.max())

    @cached_property
    def min_extent(self) -> float:
        """A lower bound on the distance from the centre to the outline, in pixels."""
        return self.radius / math.sqrt(self.axis_ratio) * float(self.boundary.min())

    def extent(self, phi: float) -> float:
        """Distance in pixels from the centre to the outline in image direction ``phi`` (radians)."""
        a = math.sqrt(self.axis_ratio)
        xp = math.cos(phi - self.angle) / (self.radius * a)
        yp = math.sin(phi - self.angle) * a / self.radius
        n = len(self.boundary)
        position = (math.atan2(yp, xp) % (2 * math.pi)) * n / (2 * math.pi)
        i = int(position)
        frac = position - i
        profile = float(self.boundary[i % n]) * (1 - frac) + float(self.boundary[(i + 1) % n]) * frac
        return profile / math.hypot(xp, yp)


@dataclass(frozen=True)
class Look:
    """How a spheroid looks; densities are optical densities, widths pixels (see the module docstring)."""

    center_density: float
    edge_density: float
    rim_darkness: float
    rim_width: float
    texture_strength: float
    lumen: float = 0.0
    lumen_density: float = 0.0
    core_fraction: float = 0.0
    core_change: float = 0.0
    halo: float = 0.0
    halo_width: float = 1.0
    grain_px: float = 4.0
    coarse_weight: float = 0.5
    thickness_falloff: float = 0.0

    @property
    def margin(self) -> float:
        """How far beyond the outline the spheroid still changes the image, in pixels."""
        return 3.0 * self.halo_width + 2.0 if self.halo > 0 else 2.0


def boundary_profile(
    rng: np.random.Generator,
    radius: float,
    cell_px: float,
    irregularity: float,
    lobes: tuple[int, float] | None,
    roughness: float,
) -> FloatArray:
    """A periodic radius profile (mean about 1) sampled at 4096 angles.

    ``irregularity``: std of harmonics k = 2..8 (amplitude falling as k^-1.5). ``lobes``: one
    ``(k, amplitude)`` harmonic. ``roughness``: how far the cells along the edge bulge out, in cell
    diameters.
    """
    n = 4096
    theta = np.arange(n) * (2 * math.pi / n)
    profile = np.ones(n)
    k = np.arange(2, 9)
    low = _random_harmonics(rng, n, k, k.astype(np.float64) ** -1.5)
    profile += low * (irregularity / max(float(low.std()), 1e-12))
    if lobes is not None:
        profile += lobes[1] * np.cos(lobes[0] * theta + rng.uniform(0, 2 * math.pi))
    if roughness > 0:
        profile += _scallops(rng, n, radius, cell_px, roughness)
    return np.clip(profile, 0.4, None).astype(np.float32)


def _random_harmonics(
    rng: np.random.Generator, n: int, k: NDArray[np.int_], amplitude: NDArray[np.float64]
) -> NDArray[np.float64]:
    spectrum = np.zeros(n // 2 + 1, dtype=np.complex128)
    spectrum[k] = amplitude * (rng.standard_normal(len(k)) + 1j * rng.standard_normal(len(k)))
    return np.fft.irfft(spectrum, n) * n


def _scallops(
    rng: np.random.Generator, n: int, radius: float, cell_px: float, roughness: float
) -> NDArray[np.float64]:
    """Relative radius offsets (mean 0) of cells bulging out of the edge side by side, cusps between."""
    count = max(int(2 * math.pi * radius / (cell_px * rng.uniform(0.8, 1.2))), 6)
    step = 2 * math.pi / count
    centres = (np.arange(count) + rng.uniform(-0.3, 0.3, count)) * step
    half_width = step * rng.uniform(0.5, 0.75, count)
    height = roughness * cell_px * rng.uniform(0.3, 1.0, count) / radius
    theta = np.arange(n) * (2 * math.pi / n)
    nearest = np.searchsorted(centres, theta)
    bumps = np.zeros(n)
    for j in (nearest - 1, nearest % count):
        j = j % count
        arc = np.abs((theta - centres[j] + math.pi) % (2 * math.pi) - math.pi) / half_width[j]
        np.maximum(bumps, height[j] * np.sqrt(np.clip(1 - arc * arc, 0, None)), out=bumps)
    bumps -= bumps.mean()
    return bumps


def _inverse_radius_lut(boundary: FloatArray) -> FloatArray:
    """``1 / boundary(theta)`` indexed by a pseudo-angle, so no pixel needs an arctangent.

    For a direction ``(x, y)`` the pseudo-angle ``p = y / (|x| + |y|)`` runs monotonically from -1 to 1
    over each half-plane; entry ``j + M * (x < 0)`` holds the direction with ``p = 2 j / (M - 1) - 1``.
    """
    p = np.linspace(-1.0, 1.0, _LUT_SIZE)
    theta = np.concatenate([np.arctan2(p, 1 - np.abs(p)), np.arctan2(p, np.abs(p) - 1)]) % (2 * math.pi)
    n = len(boundary)
    profile = np.interp(theta * n / (2 * math.pi), np.arange(n + 1), np.append(boundary, boundary[0]))
    return np.asarray(1.0 / profile, dtype=np.float32)


def _polar(outline: Outline, lut: FloatArray, rows: slice, cols: slice) -> tuple[FloatArray, FloatArray]:
    """Normalised radius ``u`` and signed distance to the outline in pixels (positive inside).

    ``lut`` is the outline's :func:`_inverse_radius_lut`. Written with few temporaries: it runs over every
    pixel of a spheroid's bounding box.
    """
    y = np.arange(rows.start, rows.stop, dtype=np.float32) + np.float32(0.5 - outline.cy)
    x = np.arange(cols.start, cols.stop, dtype=np.float32) + np.float32(0.5 - outline.cx)
    a = math.sqrt(outline.axis_ratio)
    cos_a, sin_a = math.cos(outline.angle), math.sin(outline.angle)
    ka, kb = 1.0 / (outline.radius * a), a / outline.radius
    xp = np.add.outer(y * np.float32(sin_a * ka), x * np.float32(cos_a * ka))
    yp = np.subtract.outer(y * np.float32(cos_a * kb), x * np.float32(sin_a * kb))
    pseudo = np.abs(xp)
    pseudo += np.abs(yp)
    pseudo += np.float32(1e-30)
    np.divide(yp, pseudo, out=pseudo)
    half = np.float32((_LUT_SIZE - 1) / 2)
    pseudo *= half
    pseudo += half + np.float32(0.5)
    np.add(pseudo, np.float32(_LUT_SIZE), out=pseudo, where=xp < 0)
    u = lut[pseudo.astype(np.int32)]
    xp *= xp
    yp *= yp
    xp += yp
    u *= np.sqrt(xp, out=xp)
    rho = np.sqrt(np.add.outer(y * y, x * x))
    signed = u + np.float32(1e-12)
    np.divide(rho, signed, out=signed)
    signed -= rho
    return u, signed


def _density(u: FloatArray, signed: FloatArray, look: Look, grain: FloatArray) -> FloatArray:
    """Optical density inside the outline (values outside are meaningless); consumes ``grain``."""
    if look.lumen > 0:
        w = u - np.float32((1 + look.lumen) / 2)
        w *= np.float32(2 / (1 - look.lumen))
    else:
        w = u.copy()
    w *= w
    np.subtract(1, w, out=w)
    np.maximum(w, 0, out=w)
    thickness: FloatArray = np.sqrt(w, out=w)
    if look.thickness_falloff != 0.0:
        blend = thickness * np.float32(look.thickness_falloff)
        blend += np.float32(1 - look.thickness_falloff)
        thickness *= blend
    density = thickness
    density *= np.float32(look.center_density - look.edge_density)
    density += np.float32(look.edge_density)
    if look.core_fraction > 0:
        core = np.float32(look.core_fraction) - u
        core *= np.float32(3 / look.core_fraction)
        np.clip(core, 0, 1, out=core)
        core *= np.float32(look.core_change)
        core += 1
        density *= core
    grain *= np.float32(look.texture_strength)
    grain += 1
    np.maximum(grain, 0.2, out=grain)
    density *= grain
    if look.rim_darkness > 0:
        rim = _fade(signed, 1 / look.rim_width)
        rim *= np.float32(look.rim_darkness)
        density += rim
    return density


def _grain(rng: np.random.Generator, shape: tuple[int, ...], look: Look) -> FloatArray:
    """Granular texture, unit variance: cell-scale and half-cell-scale fields plus clumps of cells."""
    window = (shape[0], shape[1])
    grain = smooth_noise(rng, window, look.grain_px)
    grain *= np.float32(0.7)
    grain += np.float32(0.5) * smooth_noise(rng, window, 0.5 * look.grain_px)
    if look.coarse_weight > 0:
        grain += np.float32(look.coarse_weight) * smooth_noise(rng, window, 4 * look.grain_px)
    grain *= np.float32(1 / math.sqrt(0.74 + look.coarse_weight**2))
    return grain


def draw(
    rng: np.random.Generator,
    outline: Outline,
    look: Look,
    label: int,
    transmission: FloatArray,
    labels: NDArray[np.int32],
    owner_u: FloatArray,
) -> None:
    """Draw one spheroid into the scene's ``transmission``, ``labels`` and ``owner_u`` (in place).

    The bounding box is processed in strips of about ``_STRIP_PIXELS`` pixels, so the many temporaries
    stay in cache and are recycled by the allocator instead of being paged in afresh.
    """
    reach = outline.max_extent + look.margin
    height, width = labels.shape
    rows = slice(max(int(outline.cy - reach), 0), min(int(outline.cy + reach) + 2, height))
    cols = slice(max(int(outline.cx - reach), 0), min(int(outline.cx + reach) + 2, width))
    grain = _grain(rng, (rows.stop - rows.start, cols.stop - cols.start), look)
    lut = _inverse_radius_lut(outline.boundary)
    step = max(_STRIP_PIXELS // (cols.stop - cols.start), 1)
    for start in range(rows.start, rows.stop, step):
        strip = slice(start, min(start + step, rows.stop))
        u, signed = _polar(outline, lut, strip, cols)
        value = _transmission(u, signed, look, grain[start - rows.start : strip.stop - rows.start])
        solid = u < 1
        if look.lumen > 0:
            solid &= u >= look.lumen
        claim = u < owner_u[strip, cols]
        np.copyto(transmission[strip, cols], value, where=claim)
        np.copyto(labels[strip, cols], solid * np.int32(label), where=claim)
        np.copyto(owner_u[strip, cols], u, where=claim)


def _fade(signed: FloatArray, scale: float) -> FloatArray:
    """``(1 - x / 3) ** 3`` of ``x = signed * scale`` clipped to [0, 3]: a fall-off like ``exp(-x)``.

    Unlike ``exp`` it reaches exactly zero (at ``x = 3``) and costs a few multiplications.
    """
    fade = signed * np.float32(-scale / 3)
    fade += 1
    np.clip(fade, 0, 1, out=fade)
    cube = fade * fade
    cube *= fade
    return cube


def _transmission(u: FloatArray, signed: FloatArray, look: Look, grain: FloatArray) -> FloatArray:
    """Fraction of light through (inside) or beside (outside, halo) the spheroid; consumes ``grain``."""
    density = _density(u, signed, look, grain)
    np.negative(density, out=density)
    value = np.exp(density, out=density)
    outside = u >= 1
    if look.halo > 0:
        halo = _fade(signed, -1 / look.halo_width)
        halo *= np.float32(look.halo)
        halo += 1
        np.copyto(value, halo, where=outside)
    else:
        value[outside] = 1
    if look.lumen > 0:
        value[u < look.lumen] = math.exp(-look.lumen_density)
    return value
