"""Edits of one image through the editor: keys, undo and redo, the bounded history, and the changes sent
to editSegmentation."""

from __future__ import annotations

import numpy as np
import pytest

from cluster import Outlines, Segmentation, Spheroid, decode_outlines, encode_outlines
from tests.workbench.editing.shapes import area, disc, outline, rectangle
from workbench.editing import Change, Editor, History, ImageOutlines, InvalidShapeError


def image(
    *rings: np.ndarray, ids: list[int] | None = None, width: int = 200, height: int = 200
) -> ImageOutlines:
    """Outlines as the canvas gets them: encoded as geometryUrl serves them, then decoded."""
    spheroid_ids = ids or list(range(1, len(rings) + 1))
    spheroids = [Spheroid(ring, (), None, i) for ring, i in zip(rings, spheroid_ids, strict=True)]
    segmentation = Segmentation("a.png", width, height, spheroids, version=3)
    return ImageOutlines.of(decode_outlines(encode_outlines(Outlines.of(segmentation))), pixel_size_um=2.0)


def test_outlines_from_geometry_keep_server_ids_and_give_provisional_keys_to_unsaved_ones() -> None:
    outlines = image(rectangle(10, 10, 50, 50), rectangle(60, 10, 90, 50), ids=[7, -1])
    assert list(outlines) == [7, -1] and outlines.version == 3
    assert outlines.server_id(7) == 7 and outlines.server_id(-1) is None
    assert outlines.new_key() == -2
    assert outlines.metrics(7).area_px == 1600 and outlines.metrics(7).area_um2 == 6400


def test_a_slice_splits_under_the_old_key_and_a_new_one_and_undo_puts_the_original_back() -> None:
    outlines = image(rectangle(10, 10, 90, 90))
    original = outlines[1]
    editor = Editor(outlines)
    change = editor.slice(1, [[0, 30], [100, 30]])
    assert change.label == "Slice" and len(outlines) == 2
    assert sorted(round(area(shape)) for _key, shape in outlines.items()) == [1600, 4800]
    assert outlines.metrics(1).area_px == 4800  # the largest piece keeps the key
    editor.undo()
    assert list(outlines) == [1] and outlines[1] is original
    editor.redo()
    assert len(outlines) == 2


def test_a_merge_keeps_the_first_selected_key_and_deletes_the_others() -> None:
    outlines = image(disc(50, 50, 20), disc(80, 50, 20), disc(150, 150, 10))
    editor = Editor(outlines)
    editor.merge([2, 1])
    assert list(outlines) == [2, 3]
    assert outlines.metrics(2).area_px == pytest.approx(  # rounded to 1/256 px by the format
        outline(disc(50, 50, 20)).polygon().union(outline(disc(80, 50, 20)).polygon()).area, rel=1e-4
    )
    with pytest.raises(InvalidShapeError, match="there is no spheroid 1"):
        editor.merge([1, 3])


def test_erasing_a_whole_spheroid_deletes_it_and_a_failed_edit_changes_nothing() -> None:
    outlines = image(rectangle(10, 10, 30, 30), rectangle(100, 100, 120, 120))
    editor = Editor(outlines)
    editor.brush(1, [[20, 20]], 50, erase=True)
    assert list(outlines) == [2]
    before = outlines.snapshot()
    with pytest.raises(InvalidShapeError):
        editor.add_hole(2, [[0, 0], [1, 1]])
    assert outlines.snapshot() == before and editor.history.undo_label == "Erase"


def test_a_new_edit_clears_what_could_be_redone() -> None:
    editor = Editor(image(rectangle(10, 10, 90, 90)))
    editor.simplify([1], 1.0)
    editor.add_hole(1, disc(50, 50, 10))
    editor.undo()
    assert editor.history.can_redo and editor.history.redo_label == "Add hole"
    editor.brush(1, [[85, 50], [100, 50]], 3)
    assert not editor.history.can_redo and editor.redo() is None
    assert [editor.undo() is not None for _ in range(3)] == [True, True, False]


def test_the_history_drops_its_oldest_changes_beyond_its_count_and_byte_budgets() -> None:
    square = outline(rectangle(10, 10, 50, 50))  # 4 vertices: 64 bytes
    counted = History(max_changes=3)
    sized = History(max_bytes=64 * 2 * 2)  # room for two changes holding a before and an after
    for number in range(5):
        for history in (counted, sized):
            history.record(Change(f"edit {number}", {1: square}, {1: square}))
    assert len(counted) == 3 and counted.undo_label == "edit 4"
    assert len(sized) == 2 and sized.nbytes == 256
    assert [sized.undo() is not None for _ in range(3)] == [True, True, False]


def test_undo_of_a_merge_among_5000_changes_only_the_merged_spheroids() -> None:
    rings = [
        rectangle(10 * (i % 100), 10 * (i // 100), 10 * (i % 100) + 10, 10 * (i // 100) + 10)
        for i in range(5000)
    ]
    outlines = image(*rings, width=1000, height=500)
    before = outlines.snapshot()
    editor = Editor(outlines)
    editor.merge([1, 2, 3])
    restored = editor.undo()
    assert restored is not None and restored.keys == {1, 2, 3}
    assert outlines.snapshot() == before  # the very same objects, every one of the 5,000
    assert not outlines.changes()


def test_changes_send_new_spheroids_without_ids_and_saving_names_them() -> None:
    outlines = image(rectangle(10, 10, 50, 50), rectangle(60, 10, 90, 50))
    editor = Editor(outlines)
    editor.reshape(1, rectangle(10, 10, 40, 40))
    editor.delete([2])
    drawn = next(iter(editor.draw(disc(150, 150, 20)).after))
    changes = outlines.changes()
    assert changes.delete == [2]
    assert [entry["id"] for entry in changes.upsert] == [1, None] and changes.new_keys == [drawn]
    assert changes.upsert[0]["exterior"] == outlines[1].exterior.tolist()
    assert set(changes.as_input()) == {"upsert", "delete"}
    outlines.saved(changes, 4, [57])
    assert outlines.version == 4 and outlines.server_id(drawn) == 57 and not outlines.changes()
    editor.simplify([drawn], 1.0)
    assert [entry["id"] for entry in outlines.changes().upsert] == [57]
    editor.undo()
    assert not outlines.changes()  # back to what was saved
    editor.undo()  # the drawing, saved already: now a deletion of what the server named 57
    assert outlines.changes().delete == [57]


def test_a_spheroid_drawn_and_deleted_before_saving_is_not_sent() -> None:
    outlines = image(rectangle(10, 10, 50, 50))
    editor = Editor(outlines)
    drawn = next(iter(editor.draw(disc(150, 150, 20)).after))
    editor.delete([drawn])
    assert not outlines.changes()
