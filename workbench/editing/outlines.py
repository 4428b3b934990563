"""The outlines of one image as the editor holds them, and the changes ``editSegmentation`` takes.

Spheroids are held by **key**: a stored spheroid's key is its server id (> 0); one drawn or split off here,
not saved yet, gets a provisional key (< 0) from :meth:`ImageOutlines.new_key`. The server refuses an
upsert naming an id its base version lacks (``InvalidSpheroids``), so a provisional key is never sent:
:meth:`ImageOutlines.changes` puts such spheroids in ``upsert`` without an id, and
:meth:`ImageOutlines.saved` records the ids the server gave them (``newIds``, in the order sent). Keys never
change, so the edit history stays valid across saves; :meth:`ImageOutlines.server_id` maps a key to the id
the server knows.

What changed since the last save is found per key, by identity: an outline is immutable, so a key whose
outline is not the very object saved last is changed (an edit undone back to the saved object is not).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster import Outlines, SpheroidMetrics
from workbench.editing.exceptions import InvalidShapeError
from workbench.editing.history import Change
from workbench.editing.outline import Outline

__all__ = ["ImageOutlines", "SegmentationChanges"]


@dataclass(frozen=True)
class SegmentationChanges:
    """``editSegmentation``'s ``changes`` (as :meth:`as_input` gives them) and the keys of the spheroids
    sent without an id, in order: the server's ``newIds`` belong to them."""

    upsert: list[dict[str, Any]] = field(default_factory=list)
    delete: list[int] = field(default_factory=list)
    new_keys: list[int] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)
    """Every key these changes cover (for :meth:`ImageOutlines.saved`)."""

    def __bool__(self) -> bool:
        return bool(self.upsert or self.delete)

    def as_input(self) -> dict[str, Any]:
        return {"upsert": self.upsert, "delete": self.delete}


class ImageOutlines:
    """The spheroids of one image by key, with what was last saved of each."""

    def __init__(
        self,
        width: int,
        height: int,
        version: int,
        shapes: Mapping[int, Outline],
        pixel_size_um: float | None = None,
    ) -> None:
        self.width = width
        self.height = height
        self.version = version
        """The segmentation version the unsaved changes start from (``editSegmentation``'s baseVersion)."""
        self._pixel_size_um = pixel_size_um
        self._shapes: dict[int, Outline] = dict(shapes)
        self._saved: dict[int, Outline] = {key: shape for key, shape in self._shapes.items() if key > 0}
        self._server_ids: dict[int, int] = {}
        self._touched: set[int] = set()
        self._next_key = min([0, *self._shapes]) - 1
        self._metrics: dict[int, tuple[Outline, SpheroidMetrics]] = {}

    @classmethod
    def of(cls, outlines: Outlines, pixel_size_um: float | None = None) -> ImageOutlines:
        """From what ``cluster.decode_outlines`` reads from ``geometryUrl`` (a spheroid with no id yet gets
        a provisional key)."""
        shapes: dict[int, Outline] = {}
        provisional = -1
        for index, spheroid_id in enumerate(outlines.ids.tolist()):
            exterior, *holes = outlines.rings(index)
            if spheroid_id < 0:
                spheroid_id, provisional = provisional, provisional - 1
            shapes[spheroid_id] = Outline.of(exterior, holes)
        return cls(outlines.width, outlines.height, outlines.version, shapes, pixel_size_um)

    @property
    def bounds(self) -> tuple[int, int]:
        return (self.width, self.height)

    def __getitem__(self, key: int) -> Outline:
        try:
            return self._shapes[key]
        except KeyError:
            raise InvalidShapeError(
                f"there is no spheroid {key} in this image (deleted, or undone)"
            ) from None

    def __contains__(self, key: object) -> bool:
        return key in self._shapes

    def __len__(self) -> int:
        return len(self._shapes)

    def __iter__(self) -> Iterator[int]:
        return iter(self._shapes)

    def items(self) -> Iterable[tuple[int, Outline]]:
        return self._shapes.items()

    def snapshot(self) -> dict[int, Outline]:
        """The outlines by key now (a new dict holding the same immutable outlines)."""
        return dict(self._shapes)

    def new_key(self) -> int:
        """A provisional key for a spheroid drawn here."""
        key = self._next_key
        self._next_key -= 1
        return key

    def apply(self, change: Change) -> None:
        """Put ``change.after`` in (None: remove that key)."""
        for key, outline in change.after.items():
            if outline is None:
                self._shapes.pop(key, None)
                self._metrics.pop(key, None)
            else:
                self._shapes[key] = outline
            self._touched.add(key)

    @property
    def pixel_size_um(self) -> float | None:
        return self._pixel_size_um

    @pixel_size_um.setter
    def pixel_size_um(self, size: float | None) -> None:
        """A new pixel size (set on the image): every metric in µm is measured again when asked."""
        self._pixel_size_um = size
        self._metrics.clear()

    def metrics(self, key: int) -> SpheroidMetrics:
        """The metrics of spheroid ``key`` as the core measures them, at this image's pixel size."""
        outline = self[key]
        cached = self._metrics.get(key)
        if cached is None or cached[0] is not outline:
            cached = (outline, outline.metrics(self.pixel_size_um))
            self._metrics[key] = cached
        return cached[1]

    def server_id(self, key: int) -> int | None:
        """The id the server knows spheroid ``key`` by, or None before it was saved."""
        return self._server_ids.get(key, key if key > 0 else None)

    @property
    def unsaved(self) -> list[int]:
        """Keys whose outline differs from what was last saved (put in, reshaped or deleted)."""
        return [key for key in self._touched if self._shapes.get(key) is not self._saved.get(key)]

    def changes(self, keys: Sequence[int] | None = None) -> SegmentationChanges:
        """What to send ``editSegmentation`` for ``keys`` (default: every unsaved one)."""
        changes = SegmentationChanges()
        # Stored ids first, then drawn spheroids in the order they were drawn (-1, -2, ...).
        for key in sorted(self.unsaved if keys is None else keys, reverse=True):
            now, saved = self._shapes.get(key), self._saved.get(key)
            if now is saved:
                continue
            changes.keys.append(key)
            server_id = self.server_id(key)
            if now is None:
                if server_id is not None and saved is not None:
                    changes.delete.append(server_id)
                continue
            changes.upsert.append(
                {
                    "id": server_id if saved is not None else None,
                    "exterior": now.exterior.tolist(),
                    "holes": [hole.tolist() for hole in now.holes],
                }
            )
            if saved is None:
                changes.new_keys.append(key)
        return changes

    def saved(self, changes: SegmentationChanges, version: int, new_ids: Sequence[int]) -> None:
        """``changes`` were saved as ``version``; the server named the new spheroids ``new_ids``."""
        if len(new_ids) != len(changes.new_keys):
            raise ValueError(
                f"{len(changes.new_keys)} new spheroids were sent, the server named {len(new_ids)}"
            )
        self._server_ids.update(zip(changes.new_keys, new_ids, strict=True))
        self.version = version
        for key in changes.keys:
            now = self._shapes.get(key)
            if now is None:
                self._saved.pop(key, None)
            else:
                self._saved[key] = now
        self._touched.difference_update(changes.keys)
