"""The projects list and the members dialog in real windows against the real offline server: counts and
progress, new / rename / delete by keyboard with a confirmation that names what is lost, opening a
project, members offline (explained, not offered) and sharing with roles."""

from __future__ import annotations

from pathlib import Path

import httpx
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QInputDialog, QMessageBox, QProgressBar
from pytestqt.qtbot import QtBot

from tests.server.processes import disc_png
from tests.workbench.qt.conftest import Run, shown
from tests.workbench.qt.windows import shot, until
from workbench.qt.qt_members import QtMembers
from workbench.qt.qt_projects import OFFLINE_MEMBERS, QtProjects
from workbench.tasks import Tasks
from workbench.uploads import import_files
from workbench.workspace import Workspace


async def _plates(workspace: Workspace, folder: Path) -> int:
    """Two projects, the second with three images, one of them outlined."""
    await workspace.client.call("CreateProject", name="Plate A (controls)")
    created = await workspace.client.call("CreateProject", name="Plate B, drug screen", description="48 h")
    project_id = int(created["createProject"]["project"]["id"])
    paths = []
    for seed in range(3):
        paths.append(folder / f"B{seed}.png")
        paths[-1].write_bytes(disc_png(seed=seed, size=96))
    imported = await import_files(workspace.client, project_id, paths)
    save = """mutation($i: Int!) { saveSegmentation(imageId: $i, baseVersion: 0,
      spheroids: [{exterior: [[10, 10], [40, 10], [40, 40], [10, 40]]}]) { __typename } }"""
    async with httpx.AsyncClient(base_url=workspace.url) as http:  # outlines drawn on one image
        answer = await http.post(
            "/graphql",
            json={"query": save, "variables": {"i": imported[0].image_id}},
            headers={"Authorization": f"Bearer {workspace.user.token}"},
        )
    assert answer.json()["data"]["saveSegmentation"]["__typename"] == "SegmentationSaveSuccess", answer.text
    return project_id


def _cells(view: QtProjects) -> list[tuple[str, str, str, str]]:
    table = view.table
    rows = []
    for row in range(table.rowCount()):
        bar = table.cellWidget(row, 2)
        assert isinstance(bar, QProgressBar)
        rows.append(
            (table.item(row, 0).text(), table.item(row, 1).text(), bar.text(), table.item(row, 3).text())
        )
    return rows


def test_the_list_shows_counts_and_new_rename_delete_work_by_keyboard(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    project_id = run(_plates(workspace, tmp_path))
    QApplication.setQuitOnLastWindowClosed(False)  # dialogs close; the test's loop must not stop
    view = QtProjects(workspace, tasks)
    shown(qtbot, view, 720, 300)
    run(until(lambda: view.table.rowCount() == 2, 30, "the projects"))
    assert _cells(view) == [
        ("Plate A (controls)", "0", "no images yet", "Owner"),
        ("Plate B, drug screen", "3", "1 of 3 segmented", "Owner"),
    ]
    assert not view._members.isEnabled() and view._members.toolTip() == OFFLINE_MEMBERS
    run(shot(view, "projects"))

    view.activateWindow()  # shortcuts work in the active window
    view.table.setFocus()
    run(until(view.isActiveWindow, 30, "the window to be active"))
    qtbot.keyClick(view.table, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    dialog = view.dialog
    assert isinstance(dialog, QInputDialog) and dialog.isVisible()
    dialog.setTextValue("Plate C")
    dialog.accept()
    # the new row may arrive first through the list's events; the selection follows once it is made
    run(until(lambda: getattr(view.current(), "name", None) == "Plate C", 30, "the new project, selected"))
    assert view.table.rowCount() == 3

    qtbot.keyClick(view.table, Qt.Key.Key_F2)
    dialog = view.dialog
    assert isinstance(dialog, QInputDialog) and dialog.textValue() == "Plate C"
    dialog.setTextValue("Plate C (repeat)")
    dialog.accept()
    run(until(lambda: "Plate C (repeat)" in [row[0] for row in _cells(view)], 30, "the new name"))

    view.select(project_id)
    qtbot.keyClick(view.table, Qt.Key.Key_Delete)
    run(until(lambda: isinstance(view.dialog, QMessageBox), 30, "the confirmation"))
    box = view.dialog
    assert isinstance(box, QMessageBox)
    assert "Plate B, drug screen" in box.text() and "3 images" in box.text()
    assert (
        "1 segmentation (1 spheroid)" in box.text()
        and "0 exports" in box.text()
        and "cannot be undone" in box.text()
    )
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    run(shot(box, "projects-delete-confirmation"))
    delete = next(b for b in box.buttons() if box.buttonRole(b) == QMessageBox.ButtonRole.DestructiveRole)
    delete.click()
    run(
        until(
            lambda: [row[0] for row in _cells(view)] == ["Plate A (controls)", "Plate C (repeat)"],
            30,
            "deleted",
        )
    )
    assert not tasks.notices.items

    view.select(view.projects.items[0].id)
    with qtbot.waitSignal(view.sig_opened) as opened:
        qtbot.keyClick(view.table, Qt.Key.Key_Return)
    assert opened.args == [view.projects.items[0].id, "Plate A (controls)"]


async def _user(workspace: Workspace, username: str) -> None:
    """A second account (the offline user administers its own server)."""
    query = """mutation($u: String!) { createUser(input: {username: $u, password: "long enough 123"}) {
      __typename } }"""
    async with httpx.AsyncClient(base_url=workspace.url) as http:
        answer = await http.post(
            "/graphql",
            json={"query": query, "variables": {"u": username}},
            headers={"Authorization": f"Bearer {workspace.user.token}"},
        )
    assert answer.json()["data"]["createUser"]["__typename"] == "UserCreateSuccess", answer.text


def test_members_are_listed_added_with_a_role_and_removed(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks
) -> None:
    created = run(workspace.client.call("CreateProject", name="Shared plate"))
    project_id = created["createProject"]["project"]["id"]
    run(_user(workspace, "bea"))
    dialog = QtMembers(workspace, tasks, project_id)
    qtbot.add_widget(dialog)
    dialog.show()
    run(until(lambda: dialog.table.rowCount() == 1, 30, "the owner"))
    assert dialog.table.item(0, 1).text() == "Owner"
    qtbot.keyClicks(dialog.username, "bea")
    dialog.role.setCurrentIndex(0)  # viewer
    qtbot.keyClick(dialog.username, Qt.Key.Key_Return)
    run(until(lambda: dialog.table.rowCount() == 2, 30, "the new member"))
    assert (dialog.table.item(1, 0).text(), dialog.table.item(1, 1).text()) == ("bea", "Viewer")
    assert dialog.username.text() == ""
    run(shot(dialog, "members"))
    qtbot.keyClicks(dialog.username, "nobody")
    qtbot.keyClick(dialog.username, Qt.Key.Key_Return)
    run(until(lambda: bool(tasks.notices.items), 30, "the refusal"))
    assert "nobody" in tasks.notices.items[-1].title
    dialog.table.selectRow(1)
    dialog._remove.click()
    run(until(lambda: dialog.table.rowCount() == 1, 30, "the member removed"))


def test_projects_made_renamed_and_filled_elsewhere_show_without_f5(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    """A colleague shares a plate, or this user works on another computer: the list follows the
    server's events, names and counts included, while nobody touches it."""
    run(workspace.client.call("CreateProject", name="Plate A (controls)"))
    view = QtProjects(workspace, tasks)
    shown(qtbot, view, 720, 300)
    run(until(lambda: view.table.rowCount() == 1, 30, "the projects"))

    made = run(workspace.client.call("CreateProject", name="Plate B, shared with me"))
    run(until(lambda: "Plate B, shared with me" in [row[0] for row in _cells(view)], 30, "the new project"))
    project_id = made["createProject"]["project"]["id"]
    run(workspace.client.call("UpdateProject", id=project_id, name="Plate B (day 3)"))
    run(until(lambda: "Plate B (day 3)" in [row[0] for row in _cells(view)], 30, "the new name"))
    (tmp_path / "well.png").write_bytes(disc_png(seed=4))
    run(import_files(workspace.client, project_id, [tmp_path / "well.png"]))
    run(until(lambda: ("Plate B (day 3)", "1") in [row[:2] for row in _cells(view)], 30, "the new count"))
    assert tasks.notices.items == []
