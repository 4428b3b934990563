"""Property: any sequence of edits on any outlines, all undone, gives the original outlines back bit for
bit, and redone gives the edited ones back bit for bit."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.workbench.editing.shapes import disc
from workbench.editing import EditError, Editor, ImageOutlines, Outline

SIZE = 200
coordinate = st.floats(min_value=-10, max_value=SIZE + 10, allow_nan=False)
point = st.tuples(coordinate, coordinate)


@st.composite
def image_outlines(draw: st.DrawFn) -> ImageOutlines:
    count = draw(st.integers(1, 6))
    shapes = {}
    for key in range(1, count + 1):
        cx, cy = draw(st.floats(30, SIZE - 30)), draw(st.floats(30, SIZE - 30))
        radius = draw(st.floats(5, 30))
        vertices = draw(st.integers(5, 48))
        holes = [disc(cx, cy, radius * draw(st.floats(0.2, 0.6)), 12)] if draw(st.booleans()) else []
        shapes[key] = Outline.of(disc(cx, cy, radius, vertices), holes)
    return ImageOutlines(SIZE, SIZE, 1, shapes)


edit = st.one_of(
    st.tuples(st.just("reshape"), st.integers(0, 99), st.lists(point, min_size=3, max_size=8)),
    st.tuples(st.just("draw"), st.lists(point, min_size=3, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 99)),
    st.tuples(st.just("slice"), st.integers(0, 99), st.lists(point, min_size=2, max_size=4)),
    st.tuples(st.just("merge"), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("add_hole"), st.integers(0, 99), st.floats(1, 8)),
    st.tuples(st.just("remove_hole"), st.integers(0, 99)),
    st.tuples(
        st.just("brush"),
        st.integers(0, 99),
        st.lists(point, min_size=1, max_size=4),
        st.floats(1, 15),
        st.booleans(),
    ),
    st.tuples(st.just("simplify"), st.integers(0, 99), st.floats(0, 3)),
)


def _apply(editor: Editor, step: tuple[Any, ...]) -> bool:
    """Make the edit ``step`` describes; False where there was no spheroid to make it on."""
    keys = list(editor.outlines)
    name, *args = step
    if name == "draw":
        editor.draw(args[0])
        return True
    if not keys:
        return False
    key = keys[args[0] % len(keys)]
    if name == "reshape":
        editor.reshape(key, args[1])
    elif name == "delete":
        editor.delete([key])
    elif name == "slice":
        editor.slice(key, args[1])
    elif name == "merge":
        other = keys[args[1] % len(keys)]
        editor.merge([key, other] if other != key else [key])
    elif name == "add_hole":
        centre = editor.outlines[key].polygon().representative_point()
        editor.add_hole(key, disc(centre.x, centre.y, args[1], 12))
    elif name == "remove_hole":
        editor.remove_hole(key, 0)
    elif name == "brush":
        editor.brush(key, args[1], args[2], erase=args[3])
    else:
        editor.simplify([key], args[1])
    return True


@settings(max_examples=100, deadline=None)
@given(image_outlines(), st.lists(edit, min_size=1, max_size=12))
def test_every_edit_undone_gives_the_original_back_and_redone_gives_the_edits_back(
    outlines: ImageOutlines, steps: list[tuple[Any, ...]]
) -> None:
    original = {key: Outline.of(shape.exterior, shape.holes) for key, shape in outlines.items()}
    editor = Editor(outlines)
    made = 0
    for step in steps:
        try:
            made += _apply(editor, step)
            event(f"{step[0]} made")
        except EditError:
            event(f"{step[0]} refused")  # nothing changed, nothing recorded
        assert len(editor.history) == made
        assert all(shape.polygon().is_valid for _key, shape in outlines.items())
    edited = {key: Outline.of(shape.exterior, shape.holes) for key, shape in outlines.items()}

    while editor.undo() is not None:
        pass
    now = outlines.snapshot()
    assert set(now) == set(original) and all(now[key].same_as(original[key]) for key in original)
    assert not outlines.changes()

    while editor.redo() is not None:
        pass
    now = outlines.snapshot()
    assert set(now) == set(edited) and all(now[key].same_as(edited[key]) for key in edited)
