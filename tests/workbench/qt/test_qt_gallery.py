"""The gallery in a real window against the real offline server: tiles with their thumbnails painted,
filters that narrow the count, selection and "image N of M" following the keys, badges that flip live
while a segmentation job runs, and files dropped to import."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from tests.server.processes import disc_png
from tests.workbench.qt.conftest import Run, shown
from tests.workbench.qt.windows import shot, until
from workbench.jobs import start_segmentation
from workbench.qt.qt_gallery import QtGallery
from workbench.qt.qt_tile_delegate import PAD, PLACEHOLDER
from workbench.tasks import Tasks
from workbench.uploads import import_files
from workbench.workspace import Workspace

NAMES = ["control_A1.png", "control_A2.png", "drug_B1.png", "drug_B2.png", "drug_B3.png"]


async def _project(workspace: Workspace, folder: Path) -> int:
    project_id = (await workspace.client.call("CreateProject", name="Plate 3"))["createProject"]["project"][
        "id"
    ]
    for seed, name in enumerate(NAMES):
        (folder / name).write_bytes(disc_png(seed=seed, size=192))
    await import_files(workspace.client, project_id, [folder / name for name in NAMES])
    return int(project_id)


async def _review(workspace: Workspace, image_id: int, status: str, comment: str | None = None) -> None:
    """A reviewer's verdict, as the review canvas (a later view) will send it."""
    query = """mutation($i: Int!, $s: ReviewStatus!, $c: String) {
      setReview(images: [{imageId: $i, version: 1}], status: $s, comment: $c) { __typename } }"""
    async with httpx.AsyncClient(base_url=workspace.url) as http:
        answer = await http.post(
            "/graphql",
            json={"query": query, "variables": {"i": image_id, "s": status, "c": comment}},
            headers={"Authorization": f"Bearer {workspace.user.token}"},
        )
    assert answer.json()["data"]["setReview"]["__typename"] == "ReviewSetSuccess", answer.text


def _shown(qtbot: QtBot, workspace: Workspace, tasks: Tasks, run: Run, project_id: int) -> QtGallery:
    gallery = QtGallery(workspace, tasks)
    shown(qtbot, gallery, 1000, 560)
    gallery.show_project(project_id)
    model = gallery.model

    def painted() -> bool:
        tiles = [model.tile(row) for row in range(model.rowCount())]
        return model.rowCount() == len(NAMES) and all(
            t is not None and model.thumbnail(t.image_id) is not None for t in tiles
        )

    run(until(painted, 30, "every thumbnail"))
    return gallery


async def closed(gallery: QtGallery) -> None:
    """Close the gallery while the loop runs, so its tasks end here, not at the interpreter's exit (the
    window stays a top-level one: closing the last one would stop Qt's loop, as the app does not want)."""
    QApplication.setQuitOnLastWindowClosed(False)
    gallery.close()
    await asyncio.sleep(0.1)


def _thumbnail_is_painted(gallery: QtGallery, row: int) -> bool:
    """Some pixel of the tile's picture is the dark spheroid, not the placeholder's grey."""
    grabbed: QImage = gallery.view.viewport().grab().toImage()
    cell = gallery.view.visualRect(gallery.model.index(row))
    ratio = grabbed.devicePixelRatio()
    darkest = min(
        grabbed.pixelColor(int((cell.x() + PAD + x) * ratio), int((cell.y() + PAD + y) * ratio)).lightness()
        for x in range(20, 140, 6)
        for y in range(20, 140, 6)
    )
    return darkest < PLACEHOLDER.lightness() - 60


def test_tiles_show_thumbnails_and_the_filter_narrows_the_count(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project_id = run(_project(workspace, tmp_path))
    gallery = _shown(qtbot, workspace, tasks, run, project_id)
    assert gallery._position.text() == "5 images"
    assert all(_thumbnail_is_painted(gallery, row) for row in range(5))
    names = [gallery.model.tile(row).name for row in range(5)]  # type: ignore[union-attr]
    assert names == NAMES
    run(shot(gallery, "gallery"))

    qtbot.keyClicks(gallery._name, "drug")
    run(until(lambda: gallery._position.text() == "3 images", 30, "the filtered count"))
    assert gallery.image_filter() == {"nameContains": "drug"}
    run(
        until(
            lambda: all(gallery.model.thumbnail(t.image_id) for t in map(gallery.model.tile, range(3)) if t),
            30,
            "thumbnails",
        )
    )
    run(shot(gallery, "gallery-filtered"))
    gallery._name.clear()
    gallery._status.setCurrentIndex(5)  # Failed: none yet
    run(until(lambda: gallery._position.text() == "No images match the filter", 30, "an empty filter"))
    assert gallery.image_filter() == {"status": ["FAILED"]}
    gallery._status.setCurrentIndex(0)
    gallery._order.setCurrentIndex(1)  # name Z–A
    run(
        until(
            lambda: gallery.model.rowCount() == 5 and gallery.model.tile(0) is not None, 30, "the sorted list"
        )
    )
    assert gallery.model.tile(0).name == "drug_B3.png"  # type: ignore[union-attr]
    run(closed(gallery))


def test_keys_move_the_selection_and_the_position_label(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project_id = run(_project(workspace, tmp_path))
    gallery = _shown(qtbot, workspace, tasks, run, project_id)
    ids = [gallery.model.tile(row).image_id for row in range(5)]  # type: ignore[union-attr]
    view = gallery.view
    view.setFocus()
    qtbot.mouseClick(
        view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(gallery.model.index(0)).center()
    )
    assert gallery._position.text() == "image 1 of 5"
    assert gallery.selected_image_ids() == ids[:1]
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert gallery._position.text() == "image 2 of 5"
    with qtbot.waitSignal(gallery.sig_selection_changed):
        qtbot.keyClick(view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert gallery._position.text() == "image 3 of 5"
    assert gallery.selected_image_ids() == ids[1:3] and gallery._selected.text() == "2 selected"
    ctrl_click = view.visualRect(gallery.model.index(4)).center()
    qtbot.mouseClick(
        view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, ctrl_click
    )
    assert gallery.selected_image_ids() == [ids[1], ids[2], ids[4]]
    qtbot.keyClick(view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert gallery.selected_image_ids() == ids and gallery._selected.text() == "5 selected"
    with qtbot.waitSignal(gallery.sig_image_activated) as activated:
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert activated.args == [ids[4]]
    run(shot(gallery, "gallery-selected"))

    following = gallery._following
    empty = run(workspace.client.call("CreateProject", name="Plate 4"))["createProject"]["project"]["id"]
    gallery.show_project(empty)  # another project: the first one's live task ends, its tiles go
    run(until(lambda: gallery._position.text() == "No images yet", 30, "the other project"))
    assert following is not None and following.cancelled()
    assert gallery.selected_image_ids() == [] and gallery._selected.text() == ""
    run(closed(gallery))


def test_a_job_flips_the_badges_live_and_dropped_files_are_handed_on(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project_id = run(_project(workspace, tmp_path))
    gallery = _shown(qtbot, workspace, tasks, run, project_id)
    model = gallery.model

    def statuses() -> list[str]:  # the gallery polls nothing: only projectEvents can change these
        return [model.tile(row).segmentation_status for row in range(model.rowCount())]  # type: ignore[union-attr]

    assert statuses() == ["NONE"] * 5
    reviews = lambda: [model.tile(row).review_status for row in range(5)]  # type: ignore[union-attr]  # noqa: E731

    async def segment_then_review() -> None:
        # in one coroutine: between two `run`s the loop stops, and a live task woken then dies
        await start_segmentation(workspace.client, project_id, method="classical")
        await until(lambda: statuses() == ["DONE"] * 5, 170, "every badge to flip to segmented")
        ids = [model.tile(row).image_id for row in range(5)]  # type: ignore[union-attr]
        await _review(workspace, ids[0], "ACCEPTED")
        await _review(workspace, ids[2], "NEEDS_FIX", "the outline misses the rim")
        await _review(workspace, ids[3], "REJECTED", "out of focus")
        expected = ["ACCEPTED", "UNREVIEWED", "NEEDS_FIX", "REJECTED", "UNREVIEWED"]
        await until(lambda: reviews() == expected, 30, "the review badges")
        await shot(gallery, "gallery-badges")

    run(segment_then_review(), timeout=200)
    assert not tasks.notices.items

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "new.tif")), QUrl.fromLocalFile(str(tmp_path))])
    where, copy = QPoint(50, 50), Qt.DropAction.CopyAction
    buttons, keys = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(where, copy, mime, buttons, keys)  # as a real drag: it enters, then drops
    assert QApplication.sendEvent(gallery.view.viewport(), enter) and enter.isAccepted()
    with qtbot.waitSignal(gallery.sig_files_dropped) as dropped:
        QApplication.sendEvent(gallery.view.viewport(), QDropEvent(QPointF(where), copy, mime, buttons, keys))
    assert dropped.args == [[tmp_path / "new.tif", tmp_path]]
    run(closed(gallery))
    assert gallery._following is None and gallery.model.gallery is None
