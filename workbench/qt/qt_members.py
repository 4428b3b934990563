"""A project's members and their roles: add someone by user name with a role (or change a member's role by
adding them again), remove a member. Owners change members; everyone else sees the list."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.projects import ROLES, Member, Members
from workbench.tasks import Task, Tasks
from workbench.workspace import Workspace

__all__ = ["QtMembers"]

ROLE_HELP = (
    "Viewer: sees images, outlines, statistics and exports. Editor: also imports, segments, edits and "
    "reviews. Owner: also renames, shares and deletes the project."
)


class QtMembers(QDialog):
    def __init__(
        self, workspace: Workspace, tasks: Tasks, project_id: int, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Project members")
        self._tasks = tasks
        self.members = Members(workspace.client, project_id)

        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(["Member", "Role"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.username = QLineEdit(self)
        self.username.setPlaceholderText("user name")
        self.role = QComboBox(self)
        for role in ROLES:
            self.role.addItem(role.capitalize(), role)
        self.role.setCurrentIndex(ROLES.index("EDITOR"))
        self.role.setToolTip(ROLE_HELP)
        self._add = QPushButton("&Add", self)
        self._remove = QPushButton("&Remove", self)
        self._add.setAutoDefault(False)
        self._remove.setAutoDefault(False)
        self._status = QLabel(self)
        self._status.setWordWrap(True)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)

        name_label = QLabel("&User:", self)
        name_label.setBuddy(self.username)
        role_label = QLabel("Ro&le:", self)
        role_label.setBuddy(self.role)
        row = QHBoxLayout()
        for widget in (name_label, self.username, role_label, self.role, self._add):
            row.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self._remove)
        layout.addLayout(row)
        layout.addWidget(self._status)
        layout.addWidget(close)
        self.resize(460, 360)

        self._add.clicked.connect(self._on_add_clicked)
        self.username.returnPressed.connect(self._on_add_clicked)
        self._remove.clicked.connect(self._on_remove_clicked)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        close.rejected.connect(self.reject)
        self._disconnect = self.members.changed.connect(self._on_members_changed)
        self.destroyed.connect(self._disconnect)
        self._update_buttons()
        self._start("Loading the project's members", self.members.load)

    def _on_members_changed(self, items: list[Member]) -> None:
        self.table.setRowCount(len(items))
        for row, member in enumerate(items):
            self.table.setItem(row, 0, QTableWidgetItem(member.username or "(deleted account)"))
            self.table.setItem(row, 1, QTableWidgetItem(member.role.capitalize()))
        self._status.setText(
            "" if self.members.can_manage else "Only the project's owners change its members."
        )
        self._update_buttons()

    def _selected(self) -> Member | None:
        row = self.table.currentRow()
        return self.members.items[row] if 0 <= row < len(self.members.items) else None

    def _update_buttons(self) -> None:
        manage = self.members.can_manage
        for widget in (self.username, self.role, self._add):
            widget.setEnabled(manage)
        self._remove.setEnabled(manage and self._selected() is not None)

    def _on_add_clicked(self) -> None:
        username, role = self.username.text().strip(), str(self.role.itemData(self.role.currentIndex()))
        if not username or not self.members.can_manage:
            return

        async def add() -> object:
            await self.members.add(username, role)
            self.username.clear()
            return None

        self._start(f"Sharing the project with {username}", add)

    def _on_remove_clicked(self) -> None:
        member = self._selected()
        if member is not None:
            self._start(f"Removing {member.username}", lambda: self.members.remove(member.username))

    def _start(self, name: str, work: Callable[[], Coroutine[Any, Any, object]]) -> Task:
        async def run(task: Task) -> object:
            return await work()

        return self._tasks.start(name, run)
