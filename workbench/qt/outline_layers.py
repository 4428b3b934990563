"""The review canvas's shape layers and how they follow a :class:`~workbench.review.ReviewSession`.

Every spheroid's rings are drawn as edges only, in one vispy ``Line`` visual (GL_LINES, one draw)
built from :class:`~workbench.qt.outline_shapes.OutlineLines`: numpy over all rings at once when an image
opens, then only the changed spheroids' rows as edits land. Each exterior is coloured by its state: saved,
not saved yet (an edit on its way to the server), or low confidence (the segmenter said it was unsure);
holes in their own colour. A napari Shapes layer of one polygon per spheroid took 0.9 s to build and
another second to paint for 5,000 outlines (bermuda triangulating faces and edges; Mesa's software GL);
the line visual takes tens of milliseconds to build and a fifth of the paint (``benchmarks/review.py``).
Zoomed out, each ring is drawn with every few of its vertices (a segment spanning up to three screen
pixels): the paint of 5,000 outlines falls by about a third under software GL, and nothing visible changes.

The line visual is a child of the ``outlines`` layer's own vispy node (``QtViewer.canvas.layer_to_visual``):
that napari layer holds no shapes, but it places the outlines (pixel size, half-pixel shift), orders
them above the image, shows or hides them, and its layer stays the active one. ``selected`` highlights
the selection (filled polygons, holes cut out); ``editing`` holds the rings of a spheroid whose vertices
are edited; ``sketch`` the stroke being drawn. napari's own Shapes keys do nothing on these layers (A, F
and R are the review verdicts).
"""

from __future__ import annotations

from napari.layers import Shapes
from napari.qt import QtViewer
from vispy.scene.visuals import Line

from workbench.qt.canvas_picking import Picker
from workbench.qt.outline_shapes import OutlineLines, bridged, shape_translate
from workbench.review import ReviewSession

__all__ = ["HOLE", "LOW_CONFIDENCE", "SAVED", "SELECTED", "UNSAVED", "OutlineLayers"]

SAVED = (1.0, 0.85, 0.0, 1.0)
UNSAVED = (1.0, 0.45, 0.0, 1.0)
LOW_CONFIDENCE = (0.95, 0.25, 0.85, 1.0)
SELECTED = (0.0, 0.9, 1.0, 1.0)
HOLE = (0.3, 0.6, 1.0, 1.0)
LINE_WIDTH = 1.5
"""Screen pixels, at every zoom."""
SEGMENT_ON_SCREEN = 3.0
"""Zoomed out, rings are drawn with every few vertices, so that a segment spans up to this many screen
pixels (the drawn ring then strays from the true one by well under a pixel)."""
MOST_SKIPPED = 8
LOW_CONFIDENCE_BELOW = 0.5
NAPARI_KEYS_UNBOUND = ("A", "F", "R", "E", "D", "S", "M", "H", "B", "X", "L", "V", "Z", "P", "T")
"""napari's Shapes keys on our layers: blocked, so A/F/R reach the review bar and ours the toolbar."""


def _unbound(layer: Shapes) -> None:
    """In place of napari's own Shapes key: the key does nothing on the canvas (napari 0.9's blocker,
    ``...``, fails on the key's release)."""


class OutlineLayers:
    """The layers of ``qt_viewer``'s viewer showing ``session``'s outlines."""

    def __init__(self, qt_viewer: QtViewer, session: ReviewSession) -> None:
        self.viewer = qt_viewer.viewer
        self.session = session
        self.picker = Picker()
        self.lines = OutlineLines()
        """What is drawn: each spheroid's rings and colours, by key."""
        self.outlines = self._shapes("outlines")
        self.selected = self._shapes("selected")
        self.editing = self._shapes("editing")
        self.sketch = self._shapes("sketch")
        self.editing.visible = False
        anchor = qt_viewer.canvas.layer_to_visual[self.outlines].node
        self.visual = Line(method="gl", width=LINE_WIDTH, parent=anchor)
        """The vispy visual drawing :attr:`lines` (every few vertices of them when zoomed out)."""
        self.visual.set_gl_state("translucent", depth_test=False)
        self.visual.visible = False
        self._step = 1
        self.viewer.scene.camera.events.zoom.connect(self._on_camera_zoomed)

    def place(self, scale: float) -> None:
        """At the image's pixel size, outline coordinates on pixel corners."""
        for layer in (self.outlines, self.selected, self.editing, self.sketch):
            layer.scale = (scale, scale)
            layer.translate = shape_translate(scale)
        self._on_camera_zoomed()  # a pixel is another size on screen now

    def _shapes(self, name: str) -> Shapes:
        layer = self.viewer.add_shapes(name=name, ndim=2, edge_width=1.5)
        for key in NAPARI_KEYS_UNBOUND:
            layer.bind_key(key, _unbound, overwrite=True)
        return layer

    def rebuild(self) -> None:
        """Every outline, drawn anew in one go."""
        outlines = self.session.outlines
        self.lines.reset([(key, outline, self._colour(key), HOLE) for key, outline in outlines.items()])
        self._show()
        self.picker.reset(outlines.items())
        self.update_selected()

    def _colour(self, key: int) -> tuple[float, float, float, float]:
        if key in self.session.unsaved or key in self.session.outlines.unsaved:
            return UNSAVED
        confidence = self.session.confidence.get(key)
        if confidence is not None and confidence < LOW_CONFIDENCE_BELOW:
            return LOW_CONFIDENCE
        return SAVED

    def update(self, keys: frozenset[int]) -> None:
        """Redraw just the spheroids that changed (their shape, their state's colour, or gone)."""
        outlines = self.session.outlines
        for key in keys:
            if key in outlines:
                self.lines.put(key, outlines[key], self._colour(key), HOLE)
            else:
                self.lines.put(key, None)
        self._show()
        self.picker.update(keys, outlines)
        self.update_selected()

    def _show(self) -> None:
        lines = self.lines
        if len(lines) == 0:
            self.visual.visible = False
            return
        self._step = self._step_for_zoom()
        vertices, colours, segments = lines.decimated(self._step)
        self.visual.set_data(pos=vertices, color=colours, connect=segments)
        self.visual.visible = True

    def _step_for_zoom(self) -> int:
        """Draw every how-many-th vertex at the view's zoom (1 when zoomed in)."""
        on_screen = self.lines.segment_length * self.viewer.scene.camera.zoom * float(self.outlines.scale[-1])
        step = 1
        while step < MOST_SKIPPED and 2 * step * on_screen <= SEGMENT_ON_SCREEN:
            step *= 2
        return step

    def _on_camera_zoomed(self, event: object = None) -> None:
        if len(self.lines) and self._step_for_zoom() != self._step:
            self._show()

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
