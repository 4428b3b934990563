"""The edits a person makes on one image, each recorded for undo: what the review canvas calls.

Each method computes its result with the pure functions of :mod:`workbench.editing.operations` (so an edit
that fails leaves everything as it was), applies it to the :class:`ImageOutlines` and records it in the
:class:`History`, and returns the :class:`Change` it made so a view redraws just those spheroids. When an
edit splits a spheroid, the largest piece keeps its key and the others get provisional ones; a merge keeps
the first selected key and deletes the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench.editing import operations
from workbench.editing.exceptions import InvalidShapeError
from workbench.editing.history import Change, History
from workbench.editing.outline import Outline
from workbench.editing.outlines import ImageOutlines

__all__ = ["Editor"]


class Editor:
    """Edits, undo and redo of one image's outlines."""

    def __init__(self, outlines: ImageOutlines, history: History | None = None) -> None:
        self.outlines = outlines
        self.history = history if history is not None else History()

    def reshape(self, key: int, exterior: Any, holes: Sequence[Any] | None = None) -> Change:
        """Spheroid ``key`` with new rings (moved or edited vertices); ``holes`` None keeps its holes."""
        current = self.outlines[key]
        rings = current.holes if holes is None else holes
        return self._replace("Edit outline", [key], key, operations.reshaped(exterior, rings, self._bounds))

    def draw(self, exterior: Any, holes: Sequence[Any] = ()) -> Change:
        """A new spheroid (or several, where the drawn ring crosses itself)."""
        pieces = operations.reshaped(exterior, holes, self._bounds)
        return self._replace("Draw spheroid", [], self.outlines.new_key(), pieces)

    def delete(self, keys: Sequence[int]) -> Change:
        before = self._before(keys)
        return self._commit(
            Change(f"Delete {len(keys)}" if len(keys) > 1 else "Delete", before, dict.fromkeys(before))
        )

    def slice(self, key: int, line: Any) -> Change:
        pieces = operations.sliced(self.outlines[key], line, self._bounds)
        return self._replace("Slice", [key], key, pieces)

    def merge(self, keys: Sequence[int]) -> Change:
        before = self._before(keys)
        result = operations.merged(list(before.values()), self._bounds)
        after: dict[int, Outline | None] = dict.fromkeys(before)
        after[keys[0]] = result
        return self._commit(Change(f"Merge {len(keys)}", before, after))

    def add_hole(self, key: int, ring: Any) -> Change:
        return self._replace(
            "Add hole", [key], key, [operations.with_hole(self.outlines[key], ring, self._bounds)]
        )

    def remove_hole(self, key: int, index: int) -> Change:
        return self._replace("Remove hole", [key], key, [operations.without_hole(self.outlines[key], index)])

    def brush(self, key: int, path: Any, radius: float, *, erase: bool = False) -> Change:
        outline = self.outlines[key]
        pieces = operations.brushed(outline, path, radius, erase=erase, bounds=self._bounds)
        return self._replace("Erase" if erase else "Brush", [key], key, pieces)

    def simplify(self, keys: Sequence[int], tolerance: float) -> Change:
        before = self._before(keys)
        after = {
            key: operations.simplified(outline, tolerance, self._bounds) for key, outline in before.items()
        }
        return self._commit(Change("Simplify", before, after))

    def undo(self) -> Change | None:
        """Revert the last edit; the change returned is what was put back (None: nothing to undo)."""
        change = self.history.undo()
        if change is None:
            return None
        inverse = change.inverse()
        self.outlines.apply(inverse)
        return inverse

    def redo(self) -> Change | None:
        change = self.history.redo()
        if change is not None:
            self.outlines.apply(change)
        return change

    @property
    def _bounds(self) -> tuple[int, int]:
        return self.outlines.bounds

    def _before(self, keys: Sequence[int]) -> dict[int, Outline]:
        if len(set(keys)) != len(keys):
            raise InvalidShapeError("a spheroid is selected twice")
        return {key: self.outlines[key] for key in keys}

    def _replace(self, label: str, touched: Sequence[int], key: int, pieces: Sequence[Outline]) -> Change:
        """Spheroids ``touched`` replaced by ``pieces``: the first (largest) as ``key``, the others new."""
        before: dict[int, Outline | None] = {k: self.outlines[k] for k in touched}
        after: dict[int, Outline | None] = dict.fromkeys(before)
        for index, piece in enumerate(pieces):
            after[key if index == 0 else self.outlines.new_key()] = piece
        before.update({k: None for k in after if k not in before})
        return self._commit(Change(label, before, after))

    def _commit(self, change: Change) -> Change:
        self.outlines.apply(change)
        self.history.record(change)
        return change
