"""COCO run-length encoding (RLE) of masks, through pycocotools, with the checks pycocotools leaves out.

COCO RLE runs go down the columns (Fortran order), starting with a run of zeros. *Uncompressed* RLE has
``counts`` as a list of run lengths; *compressed* RLE has them as a string of 6-bit characters (each
count after the second stored as the difference to the count two places before). pycocotools decodes
either without checking that the runs add up to the image size (a damaged file makes it write past its
buffer), so :func:`decode_rle` checks first.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pycocotools import mask as mask_utils

__all__ = ["counts_from_string", "decode_rle", "encode_mask"]


def encode_mask(mask: NDArray[np.bool_]) -> dict[str, Any]:
    """Compressed RLE of a boolean ``(height, width)`` mask: ``{"size": [h, w], "counts": str}``."""
    encoded = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    counts = encoded["counts"]
    return {
        "size": [int(size) for size in encoded["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else str(counts),
    }


def counts_from_string(text: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string (the algorithm of pycocotools' ``rleFrString``).

    Raises :class:`ValueError` for a character outside the alphabet or a string that ends inside a number.
    """
    counts: list[int] = []
    position = 0
    while position < len(text):
        value = 0
        shift = 0
        more = True
        while more:
            if position >= len(text):
                raise ValueError("the RLE string ends in the middle of a run length")
            code = ord(text[position]) - 48
            if not 0 <= code < 64:
                raise ValueError(f"character {text[position]!r} at {position} is not RLE")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if not more and code & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def decode_rle(counts: str | bytes | Sequence[int], height: int, width: int) -> NDArray[np.bool_]:
    """Boolean ``(height, width)`` mask of compressed (str/bytes) or uncompressed (list) RLE counts.

    Raises :class:`ValueError` when a run is negative or the runs do not cover exactly ``height * width``
    pixels.
    """
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    runs = counts_from_string(counts) if isinstance(counts, str) else [int(count) for count in counts]
    if any(run < 0 for run in runs):
        raise ValueError("an RLE run length is negative")
    if sum(runs) != height * width:
        raise ValueError(
            f"the RLE runs cover {sum(runs)} pixels, but the image has {height} x {width} = {height * width}"
        )
    if isinstance(counts, str):
        rle = {"size": [height, width], "counts": counts.encode("ascii")}
    else:
        rle = mask_utils.frPyObjects({"size": [height, width], "counts": runs}, height, width)
    with warnings.catch_warnings():
        # pycocotools' compiled part predates NumPy 2's copy keyword; the warning is about it, not us.
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        decoded = mask_utils.decode(rle)
    return np.asarray(decoded, dtype=bool).reshape(height, width)
