"""The review canvas's shape layers and how they follow a :class:`~workbench.review.ReviewSession`.

``outlines`` draws every spheroid as one polygon with its holes (bridged, see
:mod:`workbench.qt.outline_shapes`), built in one call when an image opens and then updated spheroid by
spheroid as edits land, each coloured by its state: saved, not saved yet (an edit on its way to the
server), or low confidence (the segmenter said it was unsure). ``selected`` highlights the selection;
``editing`` holds the rings of a spheroid whose vertices are edited; ``sketch`` the stroke being drawn.
napari's own Shapes keys do nothing on these layers (A, F and R are the review verdicts).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from napari.components import ViewerModel
from napari.layers import Shapes

from workbench.qt.canvas_picking import Picker
from workbench.qt.outline_shapes import bridged, shape_translate
from workbench.review import ReviewSession

__all__ = ["HOLE", "LOW_CONFIDENCE", "SAVED", "SELECTED", "UNSAVED", "OutlineLayers"]

SAVED = (1.0, 0.85, 0.0, 1.0)
UNSAVED = (1.0, 0.45, 0.0, 1.0)
LOW_CONFIDENCE = (0.95, 0.25, 0.85, 1.0)
SELECTED = (0.0, 0.9, 1.0, 1.0)
HOLE = (0.3, 0.6, 1.0, 1.0)
FACE_ALPHA = 0.15
LOW_CONFIDENCE_BELOW = 0.5
NAPARI_KEYS_UNBOUND = ("A", "F", "R", "E", "D", "S", "M", "H", "B", "X", "L", "V", "Z", "P", "T")
"""napari's Shapes keys on our layers: blocked, so A/F/R reach the review bar and ours the toolbar."""


def _unbound(layer: Shapes) -> None:
    """In place of napari's own Shapes key: the key does nothing on the canvas (napari 0.9's blocker,
    ``...``, fails on the key's release)."""


class OutlineLayers:
    """The shape layers of ``viewer`` showing ``session``'s outlines."""

    def __init__(self, viewer: ViewerModel, session: ReviewSession) -> None:
        self.viewer = viewer
        self.session = session
        self.keys: list[int] = []
        """The key of each shape of ``outlines``, in the layer's order."""
        self.picker = Picker()
        self.outlines = self._shapes("outlines")
        self.selected = self._shapes("selected")
        self.editing = self._shapes("editing")
        self.sketch = self._shapes("sketch")
        self.editing.visible = False

    def place(self, scale: float) -> None:
        """At the image's pixel size, outline coordinates on pixel corners."""
        for layer in (self.outlines, self.selected, self.editing, self.sketch):
            layer.scale = (scale, scale)
            layer.translate = shape_translate(scale)

    def _shapes(self, name: str) -> Shapes:
        layer = self.viewer.add_shapes(name=name, ndim=2, edge_width=1.5)
        for key in NAPARI_KEYS_UNBOUND:
            layer.bind_key(key, _unbound, overwrite=True)
        return layer

    def rebuild(self) -> None:
        """Every outline in one bulk update of the layer."""
        self.keys = list(self.session.outlines)
        self.outlines.data = []
        if self.keys:
            self._add(self.keys)
        self.picker.reset(self.session.outlines.items())
        self.update_selected()

    def _add(self, keys: Sequence[int]) -> None:
        shapes = [bridged(self.session.outlines[key]) for key in keys]
        colours = np.array([self._colour(key) for key in keys])
        faces = colours.copy()
        faces[:, 3] = FACE_ALPHA
        self.outlines.add(shapes, shape_type="polygon", edge_color=colours, face_color=faces, edge_width=1.5)

    def _colour(self, key: int) -> tuple[float, float, float, float]:
        if key in self.session.unsaved or key in self.session.outlines.unsaved:
            return UNSAVED
        confidence = self.session.confidence.get(key)
        if confidence is not None and confidence < LOW_CONFIDENCE_BELOW:
            return LOW_CONFIDENCE
        return SAVED

    def update(self, keys: frozenset[int]) -> None:
        """Redraw just the spheroids that changed."""
        index = {key: position for position, key in enumerate(self.keys)}
        stale = sorted(index[key] for key in keys if key in index)
        if stale:
            self.outlines.remove(stale)
            gone = set(stale)
            self.keys = [key for position, key in enumerate(self.keys) if position not in gone]
        now = [key for key in sorted(keys) if key in self.session.outlines]
        if now:
            self._add(now)
            self.keys += now
        self.picker.update(keys, self.session.outlines)
        self.update_selected()

    def update_selected(self) -> None:
        keys = [key for key in self.session.selection if key in self.session.outlines]
        self.selected.data = []
        if keys:
            self.selected.add(
                [bridged(self.session.outlines[key]) for key in keys],
                shape_type="polygon",
                edge_color=[SELECTED] * len(keys),
                face_color=[(*SELECTED[:3], 0.25)] * len(keys),
                edge_width=3,
            )
