"""A guard against PySide6 6.12's lost references to ``None`` (and the booleans) on Python 3.11.

Each call of a Qt method that returns nothing (``QLabel.setText``, ``QWidget.resize``, one turn of
``processEvents``…) hands Python ``None`` without the reference it owes, so ``None``'s count falls by one
a call. A gallery scrolling paints thousands of such calls a second; when the count reaches zero the
interpreter aborts ("Fatal Python error: none_dealloc"), mid-session or at exit. Python 3.12 made these
singletons immortal (PEP 683), which is what this does for 3.11: it raises their counts by far more than a
session can lose, before any window exists. On 3.12 and later it does nothing.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["keep_singletons_alive"]

HEADROOM = 1 << 48
"""References added to each singleton: losing a million a second, this lasts nine years."""

_done = False


def keep_singletons_alive() -> None:
    global _done
    if _done or sys.version_info >= (3, 12):
        return
    for singleton in (None, True, False):
        # ob_refcnt is the object's first field, a Py_ssize_t, in CPython's object header
        count = ctypes.c_ssize_t.from_address(id(singleton))
        count.value += HEADROOM
    _done = True
