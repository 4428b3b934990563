"""The review canvas: a napari viewer (``QtViewer(ViewerModel())``) showing one image of a
:class:`~workbench.review.ReviewSession` with its outlines, and the tools that edit them.

Layers: the image (the preview at once, the original on demand, at the pixel size as scale) and the shape
layers of :class:`~workbench.qt.outline_layers.OutlineLayers` (every outline's edges in one line visual
coloured by state, the selection, the rings of a spheroid whose vertices are being edited, each ring a
shape of its own put back together through the editor when kept, the stroke being drawn).

Every tool ends in a call of the session's :class:`~workbench.editing.Editor` (which validates and repairs
the result with the core); a refused edit changes nothing and says why in the message line. Each tool has a
public method taking image coordinates (``draw_spheroid(points)``, ``slice_along(points)``…), which the mouse
handlers call and tests can call too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from functools import partial
from typing import Any

import numpy as np
import shiboken6
from napari.components import ViewerModel
from napari.qt import QtViewer
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workbench.editing import Change, EditError
from workbench.qt.outline_layers import HOLE, SELECTED, UNSAVED, OutlineLayers
from workbench.qt.outline_shapes import outline_rings, rings_of
from workbench.qt.qt_review_tools import QtReviewTools
from workbench.qt.qt_shortcut_sheet import QtShortcutSheet
from workbench.review import ReviewedImage, ReviewSession
from workbench.tasks import Task, Tasks

__all__ = ["QtReviewCanvas", "use_fast_triangulation"]

logger = logging.getLogger(__name__)

DRAG_TOOLS = frozenset({"draw", "slice", "add_hole", "brush", "erase"})


def use_fast_triangulation() -> str:
    """Use bermuda to triangulate shapes when it is installed (3-4x faster); the backend in use."""
    from napari.utils.triangulation_backend import TriangulationBackend, get_backend, set_backend

    try:
        import bermuda  # noqa: F401
    except ImportError:
        return str(get_backend())
    set_backend(TriangulationBackend.bermuda)
    return str(TriangulationBackend.bermuda)


class QtReviewCanvas(QWidget):
    def __init__(self, session: ReviewSession, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.tasks = tasks
        self.tool = "select"
        self.editing_key: int | None = None
        self.full_resolution = False
        self.backend = use_fast_triangulation()
        self.viewer = ViewerModel(title="review")
        self.qt_viewer = QtViewer(self.viewer)
        self.tools = QtReviewTools(self)
        self.addActions(self.tools.actions())
        self.status = QLabel(" ")
        self.message = QLabel(" ")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)  # a refusal says why in full
        self._summary: str | None = None
        """While the message line shows the image's summary, what comes before it ("Saved · "); the
        summary follows saves and others' edits taken in, until another message replaces it."""
        self._build_layout()
        self._scale = 1.0
        self._image_layer: Any = None
        self.layers = OutlineLayers(self.qt_viewer, session)
        self.outlines, self.selected = self.layers.outlines, self.layers.selected
        self.editing, self.sketch = self.layers.editing, self.layers.sketch
        self.picker = self.layers.picker
        self.sheet: QtShortcutSheet | None = None
        self.viewer.mouse_drag_callbacks.append(self._on_viewer_dragged)
        self.viewer.cursor.events.position.connect(self._on_cursor_moved)
        self.tools.sig_tool_chosen.connect(self._on_tools_chosen)
        self.tools.sig_command_triggered.connect(self._on_tools_command)
        self._unsubscribe = [
            session.image_opened.connect(self._on_session_image_opened),
            session.outlines_changed.connect(self.layers.update),
            session.selection_changed.connect(lambda keys: self.layers.update_selected()),
            session.image_changed.connect(lambda image: self._follow_summary()),
            session.outlines_changed.connect(lambda keys: self._follow_summary()),
        ]

    def _build_layout(self) -> None:
        bottom = QHBoxLayout()
        bottom.setSpacing(24)
        bottom.addWidget(self.status, 0, Qt.AlignmentFlag.AlignTop)
        bottom.addWidget(self.message, 1)
        self.tools.setOrientation(Qt.Orientation.Vertical)
        middle = QHBoxLayout()
        middle.addWidget(self.tools)
        middle.addWidget(self.qt_viewer, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(middle, 1)
        layout.addLayout(bottom)

    # -- the image and its outlines ----------------------------------------------------------------------

    def _on_session_image_opened(self, image: ReviewedImage) -> None:
        self.cancel()
        self.full_resolution = False
        self._scale = image.pixel_size_um or 1.0
        preview = self.session.preview
        assert preview is not None
        factor = image.width / preview.shape[1]
        self._show_image(preview, self._scale * factor, (0.0, 255.0))
        self.layers.place(self._scale)
        self.layers.rebuild()
        self.viewer.reset_view()
        self.viewer.layers.selection.active = self.outlines
        self._show_summary()

    def _show_image(self, pixels: Any, scale: float, limits: tuple[float, float]) -> None:
        offset = (scale - self._scale) / 2
        if self._image_layer is None:
            self._image_layer = self.viewer.add_image(pixels, name="image", colormap="gray")
            self.viewer.layers.move(self.viewer.layers.index(self._image_layer), 0)
        else:
            self._image_layer.data = pixels
        self._image_layer.scale = (scale, scale)
        self._image_layer.translate = (offset, offset)
        self._image_layer.contrast_limits_range = limits
        self._image_layer.contrast_limits = limits

    # -- coordinates and the status line -------------------------------------------------------------------

    def image_point(self, world: Sequence[float]) -> tuple[float, float]:
        """Image (x, y) of a point of napari's world (row, column)."""
        row, column = self.outlines.world_to_data(tuple(world)[-2:])
        return float(column), float(row)

    def world_point(self, x: float, y: float) -> tuple[float, float]:
        """napari's world (row, column) of image point (x, y)."""
        world = self.outlines.data_to_world((y, x))
        return float(world[0]), float(world[1])

    def _on_cursor_moved(self, event: Any = None) -> None:
        image = self.session.image
        if image is None:
            return
        x, y = self.image_point(self.viewer.cursor.position)
        value = self.session.value_at(x, y)
        if value is None:
            self.status.setText(" ")
            return
        shown = f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.4g}"
        where = f"x {x:.0f}  y {y:.0f} px"
        if image.pixel_size_um:
            where += f" ({x * image.pixel_size_um:.1f}, {y * image.pixel_size_um:.1f} µm)"
        key = self.picker.key_at(x, y)
        under = f"  ·  spheroid {self.session.outlines.server_id(key) or 'new'}" if key is not None else ""
        self.status.setText(f"{where}  ·  value {shown}{under}")

    def _say(self, text: str, problem: bool = False) -> None:
        self._summary = None
        self.message.setStyleSheet("color: #c62828; font-weight: bold" if problem else "")
        self.message.setText(text)

    def _show_summary(self, before: str = "") -> None:
        """ "plate.png: 5 spheroids, version 1", kept true (:meth:`_follow_summary`) while shown."""
        image = self.session.image
        if image is None:
            return
        count = len(self.session.outlines)
        self._say(
            f"{before}{image.name}: {count} spheroid{'' if count == 1 else 's'}, version {image.version}"
        )
        self._summary = before

    def _follow_summary(self) -> None:
        if self._summary is not None:
            self._show_summary(self._summary)

    # -- tools ----------------------------------------------------------------------------------------------

    def _on_tools_chosen(self, name: str) -> None:
        if self.editing_key is not None and name != "edit":
            self.commit_edit()
        self.tool = name
        self.viewer.scene.camera.mouse_pan = name not in DRAG_TOOLS
        if name == "edit":
            self.edit_vertices()
        hints = {tool.name: tool.tip for tool in self.tools_list()}
        self._say(hints.get(name, ""))

    @staticmethod
    def tools_list() -> Sequence[Any]:
        from workbench.qt.qt_review_tools import TOOLS

        return TOOLS

    def choose_tool(self, name: str) -> None:
        self.tools.choose(name)

    def _on_tools_command(self, name: str) -> None:
        commands: dict[str, Callable[[], object]] = {
            "delete": self.delete_selected,
            "merge": self.merge_selected,
            "simplify": self.simplify_selected,
            "undo": self.undo,
            "redo": self.redo,
            "save": lambda: self.tasks.start("Saving edits", self._save_now),
            "full": self.load_full_resolution,
            "help": self.show_shortcut_sheet,
        }
        commands[name]()

    def _edit(self, doing: str, make: Callable[[], Change | None]) -> Change | None:
        """Make an edit through the editor; refused, it changes nothing and the message says why."""
        try:
            change = make()
        except EditError as refused:
            self._say(f"{doing}: not done — {refused}", problem=True)
            return None
        if change is None:
            return None
        self.session.edited(change)
        self._say(f"{change.label}: {_what_changed(change)} (Ctrl+Z undoes)")
        return change

    def _one(self, doing: str, key: int | None) -> int | None:
        if key is None:
            self._say(f"{doing}: start on a spheroid (or select one first)", problem=True)
        return key

    def _start_key(self, x: float, y: float) -> int | None:
        under = self.picker.key_at(x, y)
        if under is None and len(self.session.selection) == 1:
            under = next(iter(self.session.selection))
        return under

    def select_at(self, x: float, y: float, add: bool = False) -> None:
        """Click: select the spheroid under (x, y) (nothing there: select nothing); ``add`` toggles it in
        the selection (Shift+click)."""
        key = self.picker.key_at(x, y)
        if key is None:
            if not add:
                self.session.select(())
        elif add:
            self.session.select(self.session.selection ^ {key})
        else:
            self.session.select([key])

    def move_selected(self, dx: float, dy: float) -> None:
        shift = np.array([dx, dy])
        for key in sorted(self.session.selection):
            outline = self.session.outlines[key]
            exterior, holes = outline.exterior + shift, [hole + shift for hole in outline.holes]
            self._edit("Move", partial(self.session.editor.reshape, key, exterior, holes))

    def draw_spheroid(self, points: Sequence[Sequence[float]]) -> Change | None:
        change = self._edit("Draw", lambda: self.session.editor.draw(points))
        if change is not None:
            self.session.select(k for k, outline in change.after.items() if outline is not None)
        return change

    def slice_along(self, points: Sequence[Sequence[float]]) -> Change | None:
        crossed = self.picker.keys_crossed(points)
        if not crossed:
            self._say("Slice: not done — the line crosses no spheroid; draw it across one", problem=True)
            return None
        return self._edit("Slice", lambda: self.session.editor.slice(crossed[0], points))

    def add_hole(self, points: Sequence[Sequence[float]]) -> Change | None:
        key = self._one("Add hole", self._start_key(*points[0]))
        return (
            None if key is None else self._edit("Add hole", lambda: self.session.editor.add_hole(key, points))
        )

    def remove_hole_at(self, x: float, y: float) -> Change | None:
        found = self.picker.hole_at(x, y)
        if found is None:
            self._say("Remove hole: not done — click inside a hole of a spheroid", problem=True)
            return None
        key, index = found
        return self._edit("Remove hole", lambda: self.session.editor.remove_hole(key, index))

    def brush(self, points: Sequence[Sequence[float]], erase: bool = False) -> Change | None:
        doing = "Erase" if erase else "Brush"
        key = self._one(doing, self._start_key(*points[0]))
        radius = self.tools.brush_radius.value()
        if key is None:
            return None
        return self._edit(doing, lambda: self.session.editor.brush(key, points, radius, erase=erase))

    def delete_selected(self) -> Change | None:
        keys = sorted(self.session.selection)
        if not keys:
            self._say("Delete: select the spheroids to delete first", problem=True)
            return None
        return self._edit("Delete", lambda: self.session.editor.delete(keys))

    def merge_selected(self) -> Change | None:
        keys = sorted(self.session.selection, key=lambda key: (key < 0, abs(key)))
        if len(keys) < 2:
            self._say("Merge: select two or more touching spheroids (Shift+click)", problem=True)
            return None
        return self._edit("Merge", lambda: self.session.editor.merge(keys))

    def simplify_selected(self, tolerance: float = 1.0) -> Change | None:
        keys = sorted(self.session.selection)
        if not keys:
            self._say("Simplify: select the spheroids to simplify first", problem=True)
            return None
        return self._edit("Simplify", lambda: self.session.editor.simplify(keys, tolerance))

    def undo(self) -> None:
        self.cancel()
        change = self.session.undo()
        self._say(f"Undone: {change.label}" if change else "Nothing to undo")

    def redo(self) -> None:
        self.cancel()
        change = self.session.redo()
        self._say(f"Redone: {change.label}" if change else "Nothing to redo")

    # -- editing vertices ---------------------------------------------------------------------------------

    def edit_vertices(self) -> bool:
        """Open the selected spheroid's rings as shapes of their own, vertices draggable."""
        if len(self.session.selection) != 1:
            self._say("Edit vertices: select one spheroid first (V, then click it)", problem=True)
            return False
        (key,) = self.session.selection
        outline = self.session.outlines[key]
        rings = rings_of(outline)
        self.editing.data = []
        colours = [SELECTED] + [HOLE] * (len(rings) - 1)
        self.editing.add(
            rings, shape_type="polygon", edge_color=colours, face_color=[(0, 0, 0, 0)] * len(rings)
        )
        self.editing.visible = True
        self.editing_key = key
        self.viewer.layers.selection.active = self.editing
        self.editing.mode = "direct"
        self.editing.selected_data = set(range(len(rings)))  # every ring's vertices shown as handles
        self._say("Drag the vertices; Enter or E keeps the change, Esc drops it (holes in blue)")
        return True

    def commit_edit(self) -> Change | None:
        key, self.editing_key = self.editing_key, None
        shapes = list(self.editing.data)
        self._close_editing()
        if key is None or key not in self.session.outlines:
            return None
        exterior, holes = outline_rings(shapes)
        return self._edit("Edit vertices", lambda: self.session.editor.reshape(key, exterior, holes))

    def _close_editing(self) -> None:
        self.editing.mode = "pan_zoom"
        self.editing.data = []
        self.editing.visible = False
        self.viewer.layers.selection.active = self.outlines

    def cancel(self) -> bool:
        """Esc: drop the vertex edit or stroke in progress; False when there was none."""
        busy = self.editing_key is not None or len(self.sketch.data) > 0
        self.editing_key = None
        self._close_editing()
        self.sketch.data = []
        return busy

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802  (Qt's name)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.editing_key is not None:
            self.commit_edit()
            return
        super().keyPressEvent(event)

    # -- the mouse -----------------------------------------------------------------------------------------

    def _on_viewer_dragged(self, viewer: ViewerModel, event: Any) -> Generator[None, None, None]:
        tool = self.tool
        if event.button != 1 or tool == "edit":
            return
        start = self.image_point(event.position)
        points = [start]
        moving = tool == "select" and self.picker.key_at(*start) in self.session.selection
        if moving:
            self.viewer.scene.camera.mouse_pan = False
        yield
        while event.type == "mouse_move":
            points.append(self.image_point(event.position))
            if tool in DRAG_TOOLS:
                self._show_stroke(points, tool)
            yield
        self.sketch.data = []
        if moving:
            self.viewer.scene.camera.mouse_pan = True
        self._finish(tool, points, moving, "Shift" in event.modifiers)

    def _finish(self, tool: str, points: list[tuple[float, float]], moving: bool, shift: bool) -> None:
        end = points[-1]
        if tool == "select":
            if moving and len(points) > 1 and np.hypot(end[0] - points[0][0], end[1] - points[0][1]) > 0.5:
                self.move_selected(end[0] - points[0][0], end[1] - points[0][1])
            elif len(points) <= 2:
                self.select_at(*end, add=shift)
        elif tool == "remove_hole":
            self.remove_hole_at(*end)
        elif tool == "draw" and len(points) >= 3:
            self.draw_spheroid(points)
        elif tool == "slice" and len(points) >= 2:
            self.slice_along(points)
        elif tool == "add_hole" and len(points) >= 3:
            self.add_hole(points)
        elif tool in ("brush", "erase"):
            self.brush(points, erase=tool == "erase")

    def _show_stroke(self, points: list[tuple[float, float]], tool: str) -> None:
        path = np.array(points)[:, ::-1]
        width = 2 * self.tools.brush_radius.value() if tool in ("brush", "erase") else 1.5
        self.sketch.data = []
        self.sketch.add([path], shape_type="path", edge_color=[UNSAVED], edge_width=width)

    # -- commands that run on the loop ---------------------------------------------------------------

    async def _save_now(self, task: Task) -> None:
        await self.session.save_now()
        status = self.session.saver.status
        if status.pending or status.conflicts:  # the save status under the page says why
            self._say("Edits sent to the server; not all of them are saved yet")
        else:
            self._show_summary("Saved · ")

    def load_full_resolution(self) -> Task:
        return self.tasks.start("Loading the full-resolution image", self._load_full)

    async def _load_full(self, task: Task) -> None:
        pixels = await self.session.load_full()
        image = self.session.image
        assert image is not None
        self._scale = image.pixel_size_um or 1.0
        if image.display_range is not None:
            limits = (image.display_range.low, image.display_range.high)
        else:
            limits = (float(np.min(pixels)), float(max(np.max(pixels), np.min(pixels) + 1)))
        self._show_image(pixels, self._scale, limits)
        self.full_resolution = True
        self._say(f"Full resolution: {pixels.shape[1]} x {pixels.shape[0]} px, {pixels.dtype} values")

    def set_pixel_size(self, pixel_size_um: float | None) -> None:
        """The image's pixel size was changed: the canvas's scale and the µm of its status line follow."""
        self.session.set_pixel_size(pixel_size_um)
        old, self._scale = self._scale, pixel_size_um or 1.0
        if self._image_layer is not None:
            scale = self._image_layer.scale[-1] / old * self._scale
            self._image_layer.scale = (scale, scale)
            self._image_layer.translate = ((scale - self._scale) / 2,) * 2
        self.layers.place(self._scale)
        self.viewer.reset_view()

    def show_shortcut_sheet(self) -> QtShortcutSheet:
        if self.sheet is None:
            self.sheet = QtShortcutSheet(self)
        self.sheet.open()
        return self.sheet

    def close_canvas(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if shiboken6.isValid(self.qt_viewer):
            self.qt_viewer.close()


def _what_changed(change: Change) -> str:
    """What an edit did, in the image's terms: "1 spheroid became 2", "2 spheroids deleted"."""
    before = sum(outline is not None for outline in change.before.values())
    after = sum(outline is not None for outline in change.after.values())

    def spheroids(count: int) -> str:
        return f"{count} spheroid{'' if count == 1 else 's'}"

    if not before:
        return f"{spheroids(after)} added"
    if not after:
        return f"{spheroids(before)} deleted"
    if before == after:
        return f"{spheroids(after)} changed"
    return f"{spheroids(before)} became {after}"
