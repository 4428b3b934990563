"""Undo and redo of the edits of one image: a command stack of our own.

A :class:`Change` holds only what one edit touched: for each spheroid key, the outline before (None: it did
not exist) and after (None: it was deleted). Outlines are immutable, so a change holds the very objects it
replaced, and undo puts them back bit for bit; undoing a merge among 5,000 spheroids touches the few keys
the merge touched and copies nothing else.

:class:`History` keeps the changes done (to undo) and undone (to redo). A new edit clears the redo branch.
Memory is bounded by a count and a byte budget (the vertex bytes of the outlines the changes hold);
the oldest changes are dropped first, never the newest one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from workbench.editing.outline import Outline

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_CHANGES", "Change", "History"]

DEFAULT_MAX_CHANGES: Final[int] = 500
DEFAULT_MAX_BYTES: Final[int] = 64 * 2**20
"""64 MiB of vertices: about 260,000 64-vertex outlines held by the history."""


@dataclass(frozen=True)
class Change:
    """One edit: ``label`` for people ("Slice", "Merge 3"), and per key the outline before and after."""

    label: str
    before: Mapping[int, Outline | None]
    after: Mapping[int, Outline | None]

    @property
    def keys(self) -> frozenset[int]:
        return frozenset(self.before) | frozenset(self.after)

    @property
    def nbytes(self) -> int:
        held = [*self.before.values(), *self.after.values()]
        return sum(outline.nbytes for outline in held if outline is not None)

    def inverse(self) -> Change:
        return Change(self.label, self.after, self.before)


class History:
    """Changes to undo and to redo, within ``max_changes`` and ``max_bytes``."""

    def __init__(self, max_changes: int = DEFAULT_MAX_CHANGES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_changes < 1 or max_bytes < 0:
            raise ValueError("the history needs room for at least one change")
        self.max_changes = max_changes
        self.max_bytes = max_bytes
        self._done: deque[Change] = deque()
        self._undone: list[Change] = []
        self._bytes = 0

    def record(self, change: Change) -> None:
        """``change`` was just made: it is the next to undo, and nothing is left to redo."""
        self._undone.clear()
        self._push(change)

    def undo(self) -> Change | None:
        """The change to revert now (the caller applies its inverse), or None when none is left."""
        if not self._done:
            return None
        change = self._done.pop()
        self._bytes -= change.nbytes
        self._undone.append(change)
        return change

    def redo(self) -> Change | None:
        """The change to make again now, or None when nothing was undone since the last edit."""
        if not self._undone:
            return None
        change = self._undone.pop()
        self._push(change)
        return change

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def undo_label(self) -> str | None:
        return self._done[-1].label if self._done else None

    @property
    def redo_label(self) -> str | None:
        return self._undone[-1].label if self._undone else None

    @property
    def nbytes(self) -> int:
        """Vertex bytes held by the changes that can be undone."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._done)

    def _push(self, change: Change) -> None:
        self._done.append(change)
        self._bytes += change.nbytes
        while len(self._done) > 1 and (len(self._done) > self.max_changes or self._bytes > self.max_bytes):
            self._bytes -= self._done.popleft().nbytes
