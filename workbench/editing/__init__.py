"""Editing a segmentation's outlines without a window: what the review canvas sits on.

:class:`ImageOutlines` holds one image's spheroids (each an immutable :class:`Outline`: exterior ring and
holes) and turns what changed into ``editSegmentation``'s changes. :mod:`~workbench.editing.operations`
holds the edits as pure functions over outlines (slice, merge, holes, brush, simplify), each result repaired
and validated by the core. :class:`Editor` applies them and records each as a :class:`Change` in a bounded
:class:`History` for undo and redo. Qt-free (an import-linter contract keeps it so).
"""

from __future__ import annotations

from workbench.editing.editor import Editor
from workbench.editing.exceptions import EditError, EditRefusedError, InvalidShapeError
from workbench.editing.history import Change, History
from workbench.editing.outline import Outline
from workbench.editing.outlines import ImageOutlines, SegmentationChanges

__all__ = [
    "Change",
    "EditError",
    "EditRefusedError",
    "Editor",
    "History",
    "ImageOutlines",
    "InvalidShapeError",
    "Outline",
    "SegmentationChanges",
]
