"""Errors of the outline editor: each says what was wrong with the edit and what to do instead::

EditError                 an edit was not made; the outlines are as they were
├── InvalidShapeError         the drawn input itself is unusable (too few points, not finite, a radius
│                             or tolerance out of range, a hole or spheroid that is not there)
└── EditRefusedError          the input is fine but the edit makes no sense on these shapes (a slice
                              line that does not cut across, a merge of spheroids far apart, a hole
                              drawn across the outline, nothing left with area)
"""

from __future__ import annotations

__all__ = ["EditError", "EditRefusedError", "InvalidShapeError"]


class EditError(Exception):
    """An edit was not made; the message is for the person editing."""


class InvalidShapeError(EditError):
    """What was drawn or asked for is unusable as it stands."""


class EditRefusedError(EditError):
    """The edit makes no sense on these shapes; the message says why and what would work."""
