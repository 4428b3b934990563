"""The projects list: each project with its images, how far its segmentation has come and the user's role;
new, rename, delete (after a confirmation that names what is lost) and members (on a lab server).

A thin view over :class:`workbench.projects.Projects`: every change goes through ``tasks`` (so it shows in
the task list and a failure becomes a notice) and the table redraws when the model says it changed.
Enter or a double click opens a project (``sig_opened``); Ctrl+N, F2, Delete and F5 (read the list again:
a project shared with you since) do what they do in a file manager.

The list follows the server's ``projectListEvents`` (:meth:`Projects.follow`): a project a colleague
shares, one created on another computer, a rename and the counts of a running job show without F5.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHeaderView,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.api import ApiError
from workbench.projects import DeletionCost, Projects, ProjectSummary
from workbench.qt.qt_members import QtMembers
from workbench.tasks import Task, Tasks, TaskState, notice_of
from workbench.workspace import Mode, Workspace

logger = logging.getLogger(__name__)

__all__ = ["QtProjects"]

COLUMNS = ("Project", "Images", "Progress", "My role")
PROGRESS_WIDTH = 150
"""Room for "120 of 120 segmented": the list shares the window with the gallery, which needs it more."""
OFFLINE_MEMBERS = "Offline, you are the only user. Members and roles exist on a lab server."


class QtProjects(QWidget):
    sig_opened = Signal(int, str)

    def __init__(self, workspace: Workspace, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._tasks = tasks
        self.projects = Projects(workspace.client, can_share=workspace.mode is Mode.LAB)
        self.dialog: QWidget | None = None
        """The dialog open now (new, rename, delete, members), for the window and for tests."""
        self._loading: Task | None = None

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setColumnWidth(2, PROGRESS_WIDTH)
        self.table.setColumnHidden(3, not self.projects.can_share)  # offline the role is always Owner
        self.table.setAccessibleName("Projects")

        self._open = QPushButton("&Open", self)
        self._new = QPushButton("&New…", self)
        self._rename = QPushButton("&Rename…", self)
        self._delete = QPushButton("&Delete…", self)
        self._members = QPushButton("&Members…", self)
        buttons = QGridLayout()  # two rows: in one, five buttons would set the pane's width, not the list
        for index, button in enumerate((self._open, self._new, self._rename, self._delete, self._members)):
            buttons.addWidget(button, index // 3, index % 3)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        for keys, handler in (
            (QKeySequence.StandardKey.New, self._on_new_clicked),
            (QKeySequence(Qt.Key.Key_F2), self._on_rename_clicked),
            (QKeySequence.StandardKey.Delete, self._on_delete_clicked),
            (QKeySequence(Qt.Key.Key_F5), self.reload),
        ):
            shortcut = QShortcut(keys, self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(handler)
        self._open.clicked.connect(self._on_open_clicked)
        self._new.clicked.connect(self._on_new_clicked)
        self._rename.clicked.connect(self._on_rename_clicked)
        self._delete.clicked.connect(self._on_delete_clicked)
        self._members.clicked.connect(self._on_members_clicked)
        self.table.activated.connect(self._on_open_clicked)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self._disconnect = self.projects.changed.connect(self._on_projects_changed)
        self.destroyed.connect(self._disconnect)
        self._update_buttons()
        self.reload()
        following = asyncio.ensure_future(self._follow())
        self.destroyed.connect(lambda *_: following.cancel())

    # --- reading

    def reload(self) -> Task:
        """Read the list again (F5; the list also follows the server's events by itself)."""

        async def load() -> None:
            await self.projects.load()

        self._loading = self._start("Loading the projects", load)
        return self._loading

    def current_load(self) -> Task:
        """The read of the list under way (the one the view starts when it is made), else a new one."""
        if self._loading is not None and self._loading.state is TaskState.RUNNING:
            return self._loading
        return self.reload()

    async def _follow(self) -> None:
        try:
            await self.projects.follow(self._workspace.live)
        except ApiError as refused:
            self._tasks.notices.add(notice_of(refused, "Following the projects list"))

    def current(self) -> ProjectSummary | None:
        row = self.table.currentRow()
        return self.projects.items[row] if 0 <= row < len(self.projects.items) else None

    def _on_projects_changed(self, items: list[ProjectSummary]) -> None:
        kept = self.current()
        self.table.setRowCount(len(items))
        for row, project in enumerate(items):
            name = QTableWidgetItem(project.name)
            name.setToolTip(project.description or project.name)
            images = QTableWidgetItem(f"{project.image_count:,}")
            images.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            role = QTableWidgetItem((project.my_role or "").capitalize())
            for column, item in ((0, name), (1, images), (3, role)):
                self.table.setItem(row, column, item)
            bar = QProgressBar(self.table)
            bar.setRange(0, max(1, project.image_count))
            bar.setValue(project.segmented_count)
            bar.setFormat(project.progress_text)
            bar.setAccessibleName(f"{project.name}: {project.progress_text}")
            bar.setToolTip(project.progress_text)  # whole, where a narrow column cuts it
            self.table.setCellWidget(row, 2, bar)
        if kept is not None:
            self.select(kept.id)
        elif items and self.table.currentRow() < 0:
            self.table.selectRow(0)
        self._update_buttons()

    def select(self, project_id: int) -> None:
        for row, project in enumerate(self.projects.items):
            if project.id == project_id:
                self.table.selectRow(row)
                return

    def _update_buttons(self) -> None:
        project = self.current()
        owner = project is not None and project.my_role == "OWNER"
        self._open.setEnabled(project is not None)
        self._rename.setEnabled(owner)
        self._delete.setEnabled(owner)
        self._members.setEnabled(project is not None and self.projects.can_share)
        self._members.setToolTip(
            OFFLINE_MEMBERS if not self.projects.can_share else "Share the project and set members' roles"
        )
        why = "" if owner else "Only the project's owners may do this."
        self._rename.setToolTip(why or "Rename the project (F2)")
        self._delete.setToolTip(why or "Delete the project with its images (Delete)")

    # --- actions

    def _on_open_clicked(self) -> None:
        project = self.current()
        if project is not None:
            self.sig_opened.emit(project.id, project.name)

    def _on_new_clicked(self) -> None:
        self._ask_name("New project", "Name of the new project:", "", self._create)

    def _create(self, name: str) -> None:
        async def work() -> None:
            self.select(await self.projects.create(name.strip()))

        self._start(f"Creating the project “{name.strip()}”", work)

    def _on_rename_clicked(self) -> None:
        project = self.current()
        if project is None or not self._rename.isEnabled():
            return

        def rename(name: str) -> None:
            self._start(f"Renaming “{project.name}”", lambda: self.projects.rename(project.id, name.strip()))

        self._ask_name("Rename project", f"New name for “{project.name}”:", project.name, rename)

    def _ask_name(self, title: str, label: str, text: str, then: Callable[[str], None]) -> None:
        dialog = QInputDialog(self)
        dialog.setWindowTitle(title)
        dialog.setLabelText(label)
        dialog.setTextValue(text)
        dialog.setTextEchoMode(QLineEdit.EchoMode.Normal)
        dialog.textValueSelected.connect(lambda value: then(value) if value.strip() else None)
        self._show(dialog)

    def _on_delete_clicked(self) -> None:
        project = self.current()
        if project is None or not self._delete.isEnabled():
            return

        async def confirm() -> None:
            self._confirm_delete(project.id, await self.projects.deletion_cost(project.id))

        self._start(f"Counting what deleting “{project.name}” loses", confirm)

    def _confirm_delete(self, project_id: int, cost: DeletionCost) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete project", cost.text, parent=self)
        delete = box.addButton("&Delete project", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)  # Enter keeps the data

        def on_clicked(button: object) -> None:
            if button is delete:
                self._start(f"Deleting the project “{cost.name}”", lambda: self.projects.delete(project_id))

        box.buttonClicked.connect(on_clicked)
        self._show(box)

    def _on_members_clicked(self) -> None:
        project = self.current()
        if project is not None and self.projects.can_share:
            self._show(QtMembers(self._workspace, self._tasks, project.id, self))

    def _show(self, dialog: QWidget) -> None:
        self.dialog = dialog
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()  # type: ignore[attr-defined]  # every dialog here has open(); never exec() on the loop

    def _start(self, name: str, work: Callable[[], Coroutine[Any, Any, object]]) -> Task:
        async def run(task: Task) -> object:
            return await work()

        return self._tasks.start(name, run)
