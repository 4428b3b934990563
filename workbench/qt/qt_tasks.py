"""The task list: each running :class:`~workbench.tasks.Task` with its name, a progress bar (busy while
the amount is unknown), its latest detail line and a Cancel button; a task leaves the list when it ends
(a failure stays behind as a notice)."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from workbench.tasks import Task, Tasks, TaskState

__all__ = ["QtTasks"]

STEPS = 1000


class QtTasks(QWidget):
    """The running tasks of ``tasks``, in the order they started."""

    def __init__(self, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self._rows: dict[int, _QtTaskRow] = {}
        self._empty = QLabel("Nothing running.")
        self._empty.setStyleSheet("color: palette(mid);")
        self._list = QVBoxLayout()
        layout = QVBoxLayout(self)
        layout.addWidget(self._empty)
        layout.addLayout(self._list)
        layout.addStretch(1)
        self._disconnect = tasks.changed.connect(self._on_tasks_changed)
        self.destroyed.connect(lambda: self._disconnect())
        for task in tasks.running:
            self._on_tasks_changed(task)

    def rows(self) -> list[_QtTaskRow]:
        return list(self._rows.values())

    def _on_tasks_changed(self, task: Task) -> None:
        row = self._rows.get(id(task))
        if task.state is not TaskState.RUNNING:
            if row is not None:
                del self._rows[id(task)]
                row.deleteLater()
        elif row is None:
            row = _QtTaskRow(task)
            self._rows[id(task)] = row
            self._list.addWidget(row)
        else:
            row.update_from(task)
        self._empty.setVisible(not self._rows)


class _QtTaskRow(QFrame):
    def __init__(self, task: Task) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.name = QLabel(task.name)
        self.name.setWordWrap(True)
        self.bar = QProgressBar()
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setStyleSheet("color: palette(mid);")
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip(f"Stop: {task.name}")
        self.cancel.clicked.connect(task.cancel)
        layout = QGridLayout(self)
        layout.addWidget(self.name, 0, 0)
        layout.addWidget(self.cancel, 0, 1)
        layout.addWidget(self.bar, 1, 0, 1, 2)
        layout.addWidget(self.detail, 2, 0, 1, 2)
        self.update_from(task)

    def update_from(self, task: Task) -> None:
        self.name.setText(task.name)  # named once its size is known: "Segmenting 6 images", not "job 12"
        self.cancel.setToolTip(f"Stop: {task.name}")
        if task.fraction is None:
            self.bar.setRange(0, 0)  # busy: how much is left cannot be known yet
        else:
            self.bar.setRange(0, STEPS)
            self.bar.setValue(round(task.fraction * STEPS))
        self.detail.setText(task.detail)
        self.detail.setVisible(bool(task.detail))
