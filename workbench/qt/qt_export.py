"""The export dialog: the files to write, which images (selected, filtered, accepted only, all), the folder
(remembered), then the progress and "Show in folder" at the end.

The work is :func:`workbench.exports.export_project` run as a task of the window's list ("Exporting 120
images"); the server writes the files, this computer receives them into a new folder of the destination.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from workbench.exports import FORMATS, ExportProgress, ExportResult, export_project
from workbench.jobs import count_images
from workbench.qt.buttons import make_default
from workbench.tasks import Task, Tasks, TaskState
from workbench.workspace import Workspace

__all__ = ["ACCEPTED", "QtExport"]

ACCEPTED: dict[str, Any] = {"review": ["ACCEPTED"]}
"""The review filter of "accepted images only"."""
NONE = {"selected": "none selected in the gallery", "filtered": "no filter set in the gallery"}
FOLDER_KEY = "export/folder"
CHOSEN_KEY = "export/formats"


def _settings() -> QSettings:
    return QSettings()


def _plural(count: int) -> str:
    return f"{count} image{'s' if count != 1 else ''}"


class QtExport(QDialog):
    """Choose formats, images and folder; start; ``sig_exported`` names the new folder at the end."""

    sig_exported = Signal(object)
    """The :class:`~workbench.exports.ExportResult`."""
    sig_loaded = Signal()

    open_url: Callable[[QUrl], object] = staticmethod(QDesktopServices.openUrl)
    """How "Show in folder" opens a folder (tests replace it rather than start a file manager)."""

    def __init__(
        self,
        workspace: Workspace,
        tasks: Tasks,
        project_id: int,
        image_ids: list[int] | None,
        image_filter: Mapping[str, Any] | None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self._workspace, self._tasks, self._project_id = workspace, tasks, project_id
        self._image_ids = list(image_ids) if image_ids else None
        self._filter = dict(image_filter) if image_filter else None
        self.counts: dict[str, int | None] = {}
        self.task: Task | None = None
        self.exported: ExportResult | None = None
        self.setWindowTitle("Export segmentations")
        self.resize(560, 520)
        settings = _settings()

        formats_box = QGroupBox("Files to write")
        formats_layout = QVBoxLayout(formats_box)
        chosen = settings.value(CHOSEN_KEY)
        remembered = chosen.split(",") if isinstance(chosen, str) and chosen else ["CSV", "XLSX"]
        self.formats: dict[str, QCheckBox] = {}
        for name, text in FORMATS.items():
            box = QCheckBox(text)
            box.setChecked(name in remembered)
            box.toggled.connect(self._sync)
            formats_layout.addWidget(box)
            self.formats[name] = box

        scope_box = QGroupBox("Images")
        scope_layout = QVBoxLayout(scope_box)
        self.scopes = QButtonGroup(self)
        self.selected = QRadioButton("&Selected images")
        self.filtered = QRadioButton("&Filtered images")
        self.accepted_only = QRadioButton("Accepted images &only")
        self.accepted_only.setToolTip("The images whose review verdict is Accepted")
        self.everything = QRadioButton("&All images in the project")
        for button in (self.selected, self.filtered, self.accepted_only, self.everything):
            self.scopes.addButton(button)
            scope_layout.addWidget(button)
            button.setEnabled(False)

        folder_label = QLabel("&Into folder:")
        self.folder = QLineEdit(str(settings.value(FOLDER_KEY) or Path.home()))
        folder_label.setBuddy(self.folder)
        self.browse_button = QPushButton("&Browse…")
        folder_row = QHBoxLayout()
        folder_row.addWidget(folder_label)
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(self.browse_button)
        note = QLabel("The files go into a new folder there, named after the project and the export.")
        note.setWordWrap(True)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.start_button = QPushButton("S&tart export")
        self.start_button.setEnabled(False)
        self.show_button = QPushButton("Show in fold&er")
        self.close_button = QPushButton("&Close")
        buttons = QDialogButtonBox()
        buttons.addButton(self.show_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.start_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.close_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.show_button.hide()  # after addButton, which shows it: there is nothing to show yet

        layout = QVBoxLayout(self)
        layout.addWidget(formats_box)
        layout.addWidget(scope_box)
        layout.addLayout(folder_row)
        layout.addWidget(note)
        layout.addStretch(1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(buttons)

        self.browse_button.clicked.connect(self._on_browse_clicked)
        self.folder.textChanged.connect(self._sync)
        self.start_button.clicked.connect(self.start)
        self.show_button.clicked.connect(self.show_in_folder)
        self.close_button.clicked.connect(self._on_close_clicked)
        make_default(self.start_button, self)
        self.loading = self._tasks.start("Counting the images to export", self._count)

    async def _count(self, task: Task) -> None:
        client, project = self._workspace.client, self._project_id
        self.counts = {
            "selected": len(self._image_ids) if self._image_ids is not None else None,
            "filtered": await count_images(client, project, self._filter) if self._filter else None,
            "accepted": await count_images(client, project, ACCEPTED),
            "all": await count_images(client, project, None),
        }
        if not isValid(self):  # closed and deleted while the server answered
            return
        texts = {
            "selected": "&Selected images",
            "filtered": "&Filtered images",
            "accepted": "Accepted images &only",
            "all": "&All images in the project",
        }
        for key, button in self._buttons().items():
            count = self.counts[key]
            button.setText(f"{texts[key]} ({count if count is not None else NONE[key]})")
            button.setEnabled(bool(count))
        for button in self._buttons().values():
            if button.isEnabled():
                button.setChecked(True)
                break
        self._sync()
        self.sig_loaded.emit()

    def _buttons(self) -> dict[str, QRadioButton]:
        return {
            "selected": self.selected,
            "filtered": self.filtered,
            "accepted": self.accepted_only,
            "all": self.everything,
        }

    def chosen_formats(self) -> list[str]:
        return [name for name, box in self.formats.items() if box.isChecked()]

    def _scope(self) -> tuple[str, list[int] | None, dict[str, Any] | None]:
        if self.selected.isChecked():
            return "selected", self._image_ids, None
        if self.filtered.isChecked():
            return "filtered", None, self._filter
        if self.accepted_only.isChecked():
            return "accepted", None, ACCEPTED
        return "all", None, None

    def _sync(self) -> None:
        ready = bool(self.counts) and self.scopes.checkedButton() is not None
        self.start_button.setEnabled(
            ready and self.task is None and bool(self.chosen_formats()) and bool(self.folder.text().strip())
        )

    def _on_browse_clicked(self) -> None:
        chooser = QFileDialog(self, "Export into folder", self.folder.text())
        chooser.setFileMode(QFileDialog.FileMode.Directory)
        chooser.setOption(QFileDialog.Option.ShowDirsOnly, True)
        chooser.fileSelected.connect(self.folder.setText)
        chooser.open()

    def start(self) -> None:
        if not self.start_button.isEnabled():
            return
        scope, image_ids, image_filter = self._scope()
        folder = Path(self.folder.text().strip()).expanduser()
        formats = self.chosen_formats()
        settings = _settings()
        settings.setValue(FOLDER_KEY, str(folder))
        settings.setValue(CHOSEN_KEY, ",".join(formats))
        settings.sync()
        count = self.counts.get(scope) or 0
        self.status.setText("Starting…")
        self.task = self._tasks.start(
            f"Exporting {_plural(count)}",
            lambda task: self._work(task, folder, formats, image_ids, image_filter),
        )
        self._sync()
        for widget in (*self.formats.values(), *self._buttons().values(), self.folder, self.browse_button):
            widget.setEnabled(False)
        self.close_button.setText("&Cancel export")

    async def _work(
        self,
        task: Task,
        folder: Path,
        formats: list[str],
        image_ids: list[int] | None,
        image_filter: dict[str, Any] | None,
    ) -> ExportResult:
        try:
            result = await export_project(
                self._workspace.client,
                self._workspace.live,
                self._project_id,
                folder,
                formats,
                image_ids=image_ids,
                image_filter=image_filter,
                on_progress=lambda progress: self._on_export_progressed(task, progress),
            )
        except BaseException as error:
            if isValid(self):  # a dialog closed and deleted meanwhile has nothing to say
                self.status.setText(
                    f"The export did not finish: {error}" if str(error) else "The export was stopped."
                )
                self.close_button.setText("&Close")
            raise
        if not isValid(self):  # the files are there all the same
            return result
        self.close_button.setText("&Close")
        self.exported = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat("done")
        names = ", ".join(sorted({path.relative_to(result.folder).parts[0] for path in result.files}))
        self.status.setText(f"Exported into {result.folder}: {names}.")
        self.status.setToolTip(str(result.folder))
        self.show_button.show()
        self.show_button.setFocus()
        self.sig_exported.emit(result)
        return result

    def _on_export_progressed(self, task: Task, progress: ExportProgress) -> None:
        if progress.stage == "exporting":
            line = f"the server writes the files: {progress.done} of {_plural(progress.total)} gathered"
        elif progress.stage == "downloading":
            line = f"receiving the files: {progress.done / 1e6:.1f} MB" + (
                f" of {progress.total / 1e6:.1f} MB" if progress.total else ""
            )
        else:
            line = "unpacking the files into the folder"
        fraction = progress.fraction
        task.report(fraction, line)
        if not isValid(self):
            return
        self.status.setText(line[:1].upper() + line[1:] + "…")
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * fraction))
            self.progress.setFormat(f"{progress.stage} {fraction:.0%}")

    def folder_url(self) -> QUrl | None:
        """What "Show in folder" opens: the new folder of the export, once it is there."""
        return QUrl.fromLocalFile(str(self.exported.folder)) if self.exported is not None else None

    def show_in_folder(self) -> None:
        url = self.folder_url()
        if url is not None:
            self.open_url(url)

    def _on_close_clicked(self) -> None:
        if self.task is not None and self.task.state is TaskState.RUNNING:
            self.task.cancel()
        else:
            self.reject()
