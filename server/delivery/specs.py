"""What a rendition is: size, fit mode, format and quality, its URL segment and its storage key.

A rendition is named by its parameters, so the same request always maps to the same name: in a URL
(``w256_h256_scale-down_q70_v1.webp``, readable in logs and safe in every CDN's path) and in the blob store
(``renditions/<sha256 of the original>/<digest of the parameters>.<ext>``). :data:`RENDER_VERSION` and the
contrast-stretch percentiles are part of both, so a change to how pixels are made gives new names and no
cache anywhere can serve the old bytes under them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "MEDIA_TYPES",
    "RENDER_VERSION",
    "Fit",
    "RenditionFormat",
    "RenditionSpec",
    "SpecError",
    "rendition_key",
]

RENDER_VERSION = 1
"""Raise when the pixels a spec produces change (stretch, resampling, encoder settings)."""

MAX_EDGE = 8192
"""The largest edge of a rendition; a display needs no more, and a CDN transforms nothing bigger."""


class Fit(Enum):
    """How an image goes into a ``width`` x ``height`` box (the names Cloudflare uses)."""

    SCALE_DOWN = "scale-down"  # fit inside the box, never enlarged
    CONTAIN = "contain"  # fit inside the box, enlarged when smaller
    COVER = "cover"  # fill the box, cropped at the centre


class RenditionFormat(Enum):
    WEBP = "webp"
    AVIF = "avif"
    PNG = "png"
    JPEG = "jpeg"


MEDIA_TYPES = {
    RenditionFormat.WEBP: "image/webp",
    RenditionFormat.AVIF: "image/avif",
    RenditionFormat.PNG: "image/png",
    RenditionFormat.JPEG: "image/jpeg",
}

_SEGMENT = re.compile(
    r"^w(?P<w>\d{1,5})_h(?P<h>\d{1,5})_(?P<fit>scale-down|contain|cover)_q(?P<q>\d{1,3})"
    r"_s(?P<lo>\d{1,4})-(?P<hi>\d{1,5})_v(?P<v>\d{1,3})\.(?P<ext>webp|avif|png|jpeg)$"
)


class SpecError(ValueError):
    """Rendition parameters out of range, or a URL segment that names no rendition."""


@dataclass(frozen=True)
class RenditionSpec:
    """``width``/``height`` 0 mean "as the original" on that axis; ``stretch`` is in per-mille percentiles.

    ``quality`` is ignored by PNG (always lossless) and kept in the name only so one parser reads them all.
    """

    width: int
    height: int
    fit: Fit = Fit.SCALE_DOWN
    format: RenditionFormat = RenditionFormat.WEBP
    quality: int = 80
    stretch: tuple[int, int] = (5, 995)
    version: int = RENDER_VERSION

    def __post_init__(self) -> None:
        if not (0 <= self.width <= MAX_EDGE and 0 <= self.height <= MAX_EDGE):
            raise SpecError(f"width and height must be between 0 and {MAX_EDGE}")
        if self.fit is Fit.COVER and not (self.width and self.height):
            raise SpecError("fit 'cover' needs both a width and a height")
        if not 1 <= self.quality <= 100:
            raise SpecError("quality must be between 1 and 100")
        low, high = self.stretch
        if not 0 <= low < high <= 1000:
            raise SpecError("stretch percentiles must satisfy 0 <= low < high <= 1000 (per mille)")

    @property
    def extension(self) -> str:
        return self.format.value

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def percentiles(self) -> tuple[float, float]:
        return self.stretch[0] / 10, self.stretch[1] / 10

    def segment(self) -> str:
        """The rendition's name in a URL path."""
        low, high = self.stretch
        return (
            f"w{self.width}_h{self.height}_{self.fit.value}_q{self.quality}_s{low}-{high}"
            f"_v{self.version}.{self.extension}"
        )

    @classmethod
    def parse(cls, segment: str) -> RenditionSpec:
        found = _SEGMENT.match(segment)
        if found is None:
            raise SpecError(f"{segment!r} names no rendition")
        spec = cls(
            width=int(found["w"]),
            height=int(found["h"]),
            fit=Fit(found["fit"]),
            format=RenditionFormat(found["ext"]),
            quality=int(found["q"]),
            stretch=(int(found["lo"]), int(found["hi"])),
            version=int(found["v"]),
        )
        if spec.segment() != segment:  # leading zeros and the like: one name per rendition
            raise SpecError(f"{segment!r} is not in canonical form")
        return spec

    def digest(self) -> str:
        return hashlib.sha256(self.segment().encode()).hexdigest()[:32]


def rendition_key(content_hash: str, spec: RenditionSpec) -> str:
    """The blob key of a rendition of the original with this content hash (made once, then reused)."""
    return f"renditions/{content_hash}/{spec.digest()}.{spec.extension}"
