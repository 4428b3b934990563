"""The review session against a real offline server: an image opens with its preview and outlines, each
edit, undo and redo lands on the server one spheroid at a time, a spheroid drawn and reshaped before its
first save is stored once, and a deletion undone after it was saved brings the spheroid back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from tests.workbench.qt.conftest import offline_environment
from tests.workbench.review_support import HEIGHT, SHAPES, WIDTH, disc, segmented_image, stored
from workbench.journal import Journals
from workbench.review import ReviewedImage, ReviewSession
from workbench.saving import Saver
from workbench.workspace import Workspace, open_offline

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]


@pytest.fixture
async def workspace(tmp_path: Path) -> AsyncIterator[Workspace]:
    opened = await open_offline(
        tmp_path / "data", cache_dir=tmp_path / "cache", environment=offline_environment()
    )
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def session(workspace: Workspace, tmp_path: Path) -> AsyncIterator[ReviewSession]:
    saver = Saver(workspace.client, Journals(tmp_path / "journal", workspace.url), idle=0.2)
    opened = ReviewSession(workspace, saver)
    try:
        yield opened
    finally:
        opened.close()
        await saver.close()


async def test_an_image_opens_with_its_preview_outlines_and_true_values(
    workspace: Workspace, session: ReviewSession, tmp_path: Path
) -> None:
    project_id, image_id = await segmented_image(workspace.client, tmp_path / "files")
    opened = []
    session.image_opened.connect(opened.append)
    await session.open(image_id)

    image = session.image
    assert image is not None and opened == [image]
    assert (image.id, image.project_id, image.name, image.version) == (image_id, project_id, "plate.png", 1)
    assert (image.width, image.height) == (WIDTH, HEIGHT)
    assert session.preview is not None and session.preview.shape == (HEIGHT, WIDTH)
    assert len(session.outlines) == len(SHAPES)
    with_hole = [key for key, outline in session.outlines.items() if outline.holes]
    assert len(with_hole) == 1
    # the 16-bit image's values come back from the 8-bit preview through the display range
    inside, outside = session.value_at(100, 80), session.value_at(20, 20)
    assert inside is not None and outside is not None
    assert 6_000 < inside < 12_000 and 18_000 < outside < 23_000
    full = await session.load_full()
    assert full.dtype == np.uint16 and full.shape == (HEIGHT, WIDTH)


async def test_edits_undo_and_redo_are_saved_one_spheroid_at_a_time(
    workspace: Workspace, session: ReviewSession, tmp_path: Path
) -> None:
    _, image_id = await segmented_image(workspace.client, tmp_path / "files")
    await session.open(image_id)
    changed: list[frozenset[int]] = []
    session.outlines_changed.connect(changed.append)
    records: list[ReviewedImage] = []
    session.image_changed.connect(records.append)
    (holed,) = [key for key, outline in session.outlines.items() if outline.holes]

    session.edited(session.editor.slice(holed, [[100, 40], [100, 200]]))  # through the hole: two halves
    await session.save_now()
    version, spheroids = await stored(workspace.client, image_id)
    assert version == 2 and len(spheroids) == len(SHAPES) + 1
    assert session.image is not None and session.image.version == 2  # what the page's header says
    assert [record.version for record in records] == [2]
    session.set_pixel_size(0.65)
    session.reviewed(image_id + 1, "ACCEPTED", None)  # another image's verdict: not this one's
    session.reviewed(image_id, "NEEDS_FIX", "rim missed")
    assert [(r.version, r.pixel_size_um, r.review_status, r.review_comment) for r in records[1:]] == [
        (2, 0.65, "UNREVIEWED", None),
        (2, 0.65, "NEEDS_FIX", "rim missed"),
    ]
    assert session.unsaved == frozenset() and session.outlines.unsaved == []
    assert any(holed in keys for keys in changed)

    assert session.undo() is not None  # the two halves become the spheroid with its hole again
    await session.save_now()
    version, spheroids = await stored(workspace.client, image_id)
    assert version == 3 and len(spheroids) == len(SHAPES)
    assert [len(s["holes"]) for s in spheroids.values()].count(1) == 1

    assert session.redo() is not None
    await session.save_now()
    assert len((await stored(workspace.client, image_id))[1]) == len(SHAPES) + 1


async def test_a_spheroid_drawn_and_reshaped_before_its_first_save_is_stored_once(
    workspace: Workspace, session: ReviewSession, tmp_path: Path
) -> None:
    _, image_id = await segmented_image(workspace.client, tmp_path / "files")
    await session.open(image_id)
    drawn = session.editor.draw(disc(420, 60, 20))
    session.edited(drawn)
    (key,) = [k for k, outline in drawn.after.items() if outline is not None]
    session.edited(session.editor.reshape(key, disc(420, 60, 30)))  # before the draw was answered
    await session.save_now()
    await session.save_now()  # the reshape, sent once the server named the drawn spheroid

    _, spheroids = await stored(workspace.client, image_id)
    assert len(spheroids) == len(SHAPES) + 1
    server_id = session.outlines.server_id(key)
    assert server_id in spheroids
    assert max(x for x, _ in spheroids[server_id]["exterior"]) == pytest.approx(450, abs=0.5)  # reshaped
    assert session.unsaved == frozenset()


async def test_a_deletion_undone_after_it_was_saved_brings_the_spheroid_back(
    workspace: Workspace, session: ReviewSession, tmp_path: Path
) -> None:
    _, image_id = await segmented_image(workspace.client, tmp_path / "files")
    await session.open(image_id)
    key = next(iter(session.outlines))
    saved = asyncio.Event()
    session.saver.saved.connect(lambda _: saved.set())
    session.edited(session.editor.delete([key]))
    await asyncio.wait_for(saved.wait(), 30)  # after the idle, without Ctrl+S
    assert len((await stored(workspace.client, image_id))[1]) == len(SHAPES) - 1

    session.undo()
    await session.save_now()
    _, spheroids = await stored(workspace.client, image_id)
    assert len(spheroids) == len(SHAPES)
    assert session.outlines.server_id(key) in spheroids
    assert session.outlines.unsaved == []


async def test_a_merged_save_brings_in_what_someone_else_saved_meanwhile(
    workspace: Workspace, session: ReviewSession, tmp_path: Path
) -> None:
    _, image_id = await segmented_image(workspace.client, tmp_path / "files")
    await session.open(image_id)
    changed: list[frozenset[int]] = []
    session.outlines_changed.connect(changed.append)
    first, second, *_ = sorted(session.outlines)
    answer = await workspace.client.call(  # a colleague draws one and reshapes another, on version 1
        "EditSegmentation",
        imageId=image_id,
        baseVersion=1,
        changes={
            "upsert": [
                {"exterior": disc(60, 300, 25), "holes": []},
                {"id": second, "exterior": disc(260, 120, 40)},
            ],
            "delete": [],
        },
    )
    theirs = answer["editSegmentation"]["newIds"][0]

    session.edited(session.editor.delete([first]))  # mine, on version 1 too: merged
    await session.save_now()
    assert session._reloading is not None
    await asyncio.wait_for(session._reloading, 30)

    assert theirs in session.outlines and first not in session.outlines
    assert session.outlines[second].polygon().area == pytest.approx(np.pi * 40**2, rel=0.02)
    assert any(theirs in keys and second in keys for keys in changed)
    assert session.outlines.unsaved == [] and session.unsaved == frozenset()


async def test_taking_their_shape_in_a_conflict_shows_it_in_the_open_image(
    workspace: Workspace, session: ReviewSession, tmp_path: Path
) -> None:
    _, image_id = await segmented_image(workspace.client, tmp_path / "files")
    await session.open(image_id)
    key = sorted(session.outlines)[1]
    await workspace.client.call(  # a colleague reshapes it first, on version 1
        "EditSegmentation",
        imageId=image_id,
        baseVersion=1,
        changes={"upsert": [{"id": key, "exterior": disc(260, 120, 35)}], "delete": []},
    )
    session.edited(session.editor.reshape(key, disc(260, 120, 45)))  # mine, on version 1 too
    await session.save_now()
    (conflict,) = session.saver.conflicts
    changed: list[frozenset[int]] = []
    session.outlines_changed.connect(changed.append)

    await session.saver.take_theirs(conflict)
    assert session._reloading is not None
    await asyncio.wait_for(session._reloading, 30)
    assert session.outlines[key].polygon().area == pytest.approx(np.pi * 35**2, rel=0.02)
    assert any(key in keys for keys in changed)
