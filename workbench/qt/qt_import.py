"""The import dialog: files and folders (by dialog or dropped), each file's state as it goes, the total in
bytes, and a cancel that keeps what the server stored.

A folder gives the images directly in it: a biologist choosing a plate's folder means its images, not
what lies in its subfolders (``truth/`` masks, ``analysis/`` exports). "Include subfolders", off by
default, takes them too; the dialog names the subfolders it left out, so none is missed unknowingly.

The work is :func:`workbench.uploads.import_files` run as a task of the window's task list ("Importing 12
files"); this dialog only shows what that task reports, so closing it leaves the import running.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from workbench.qt.buttons import make_default
from workbench.tasks import Task, Tasks, TaskState
from workbench.uploads import FileResult, UploadProgress, import_files
from workbench.workspace import Workspace

__all__ = ["IMAGE_SUFFIXES", "QtImport", "image_files"]

IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".jpg", ".jpeg"})
NAME_FILTER = "Images (*.tif *.tiff *.png *.jpg *.jpeg *.TIF *.TIFF *.PNG *.JPG *.JPEG);;All files (*)"
REFUSED = QColor("#b3261e")
STORED = QColor("#1b6e20")
SKIPPED = QColor("#5f6368")
SHOWN_REFUSALS = 5
"""Refused files whose whole reason is spelled out below the list."""


def image_files(paths: list[Path], *, subfolders: bool = False) -> list[Path]:
    """``paths`` with each folder replaced by the image files in it (and below, with ``subfolders``),
    by name; files named themselves are kept whatever they are (the server says why it refuses one)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = path.rglob("*") if subfolders else path.iterdir()
            found += sorted(
                (p for p in inside if _is_image(p)),
                key=lambda p: str(p).lower(),
            )
        elif path.is_file():
            found.append(path)
    return found


def _image_subfolders(folder: Path) -> list[Path]:
    """The subfolders of ``folder`` that hold image files somewhere below them."""
    return sorted(
        (sub for sub in folder.iterdir() if sub.is_dir() and any(_is_image(p) for p in sub.rglob("*"))),
        key=lambda p: p.name.lower(),
    )


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _size(count: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


class QtImport(QDialog):
    """Choose files, start, watch each file go in; ``sig_imported`` names the project's new images."""

    sig_progressed = Signal(object)
    """An :class:`~workbench.uploads.UploadProgress`, after the dialog showed it."""
    sig_imported = Signal(list)
    """The ids of the images stored by this import (not those skipped), once it ends."""

    per_request = 10
    """Files sent per request: each request's files are answered as they are stored."""

    def __init__(self, workspace: Workspace, tasks: Tasks, project_id: int, parent: QWidget | None = None):
        super().__init__(parent)
        self._workspace, self._tasks, self._project_id = workspace, tasks, project_id
        self._paths: list[Path] = []
        self._sizes: list[int] = []
        self._items: list[QTreeWidgetItem] = []
        self._results: dict[int, FileResult] = {}
        self._left_out: list[Path] = []  # subfolders whose images a folder added without them holds
        self.task: Task | None = None
        self.ended = False
        """The import has ended, whichever way."""
        self.setWindowTitle("Import images")
        self.setAcceptDrops(True)
        self.resize(720, 460)

        self._hint = QLabel("Drop image files or folders here, or add them:")
        self.add_files_button = QPushButton("Add &files…")
        self.add_folder_button = QPushButton("Add f&older…")
        self.subfolders = QCheckBox("Include su&bfolders")
        self.subfolders.setToolTip(
            "A folder added from now on gives the images in its subfolders too (off: only the images "
            "directly in it)"
        )
        self.left_out = QLabel()
        """The subfolders of added folders whose images were left out (subfolders not included)."""
        self.left_out.setWordWrap(True)
        self.left_out.hide()
        self.files = QTreeWidget()
        self.files.setHeaderLabels(["File", "Size", "State"])
        self.files.setRootIsDecorated(False)
        self.files.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.files.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.files.setColumnWidth(0, 220)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.refusals = QLabel()
        """Each refused file with its whole reason (a list row cuts a long one)."""
        self.refusals.setWordWrap(True)
        self.refusals.setStyleSheet(f"color: {REFUSED.name()}")
        self.refusals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.refusals.hide()
        self.summary = QLabel("No files yet.")
        self.summary.setWordWrap(True)
        self.start_button = QPushButton("&Start import")
        self.cancel_button = QPushButton("&Cancel")
        buttons = QDialogButtonBox()
        buttons.addButton(self.start_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)

        adding = QHBoxLayout()
        adding.addWidget(self._hint, 1)
        adding.addWidget(self.add_files_button)
        adding.addWidget(self.add_folder_button)
        adding.addWidget(self.subfolders)
        layout = QVBoxLayout(self)
        layout.addLayout(adding)
        layout.addWidget(self.files, 1)
        layout.addWidget(self.left_out)
        layout.addWidget(self.refusals)
        layout.addWidget(self.progress)
        layout.addWidget(self.summary)
        layout.addWidget(buttons)
        self.setTabOrder(self.add_files_button, self.add_folder_button)
        self.setTabOrder(self.add_folder_button, self.subfolders)
        self.setTabOrder(self.subfolders, self.start_button)
        self.setTabOrder(self.start_button, self.cancel_button)

        self.add_files_button.clicked.connect(self._on_add_files_clicked)
        self.add_folder_button.clicked.connect(self._on_add_folder_clicked)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        make_default(self.start_button, self)
        self._sync()

    # choosing files

    def add_paths(self, paths: list[Path]) -> None:
        """Add files, and the image files of folders (and of their subfolders when "Include subfolders"
        is ticked); a file already listed is not listed twice."""
        if self.task is not None:
            return  # the list is fixed once the import started
        paths = [Path(p) for p in paths]
        included = self.subfolders.isChecked()
        known = {path.resolve() for path in self._paths}
        folders = [path.resolve() for path in paths if path.is_dir()]
        if included:  # added again with its subfolders: they are no longer left out
            self._left_out = [sub for sub in self._left_out if sub.parent not in folders]
        else:
            self._left_out += [sub for folder in folders for sub in _image_subfolders(folder)]
        self._show_left_out()
        for path in image_files(paths, subfolders=included):
            if path.resolve() in known:
                continue
            known.add(path.resolve())
            self._paths.append(path)
            self._sizes.append(path.stat().st_size)
            item = QTreeWidgetItem([path.name, _size(self._sizes[-1]), "waiting"])
            item.setToolTip(0, str(path))
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.files.addTopLevelItem(item)
            self._items.append(item)
        self._sync()

    def _show_left_out(self) -> None:
        subfolders = list(dict.fromkeys(self._left_out))
        names = ", ".join(f"{sub.parent.name}/{sub.name}" for sub in subfolders[:SHOWN_REFUSALS])
        more = f" and {len(subfolders) - SHOWN_REFUSALS} more" if len(subfolders) > SHOWN_REFUSALS else ""
        self.left_out.setText(
            f"Images in subfolders left out: {names}{more}. Tick “Include subfolders” and add the "
            "folder again to import them too."
        )
        self.left_out.setVisible(bool(subfolders))

    def _on_add_files_clicked(self) -> None:
        chooser = QFileDialog(self, "Add image files")
        chooser.setFileMode(QFileDialog.FileMode.ExistingFiles)
        chooser.setNameFilter(NAME_FILTER)
        chooser.filesSelected.connect(lambda names: self.add_paths([Path(n) for n in names]))
        chooser.open()

    def _on_add_folder_clicked(self) -> None:
        chooser = QFileDialog(self, "Add a folder of images")
        chooser.setFileMode(QFileDialog.FileMode.Directory)
        chooser.setOption(QFileDialog.Option.ShowDirsOnly, True)
        chooser.fileSelected.connect(lambda name: self.add_paths([Path(name)]))
        chooser.open()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802  (Qt's name)
        if event.mimeData().hasUrls() and self.task is None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self.add_paths([Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()])
        event.acceptProposedAction()

    # importing

    def start(self) -> None:
        if self.task is not None or not self._paths:
            return
        count = len(self._paths)
        self.task = self._tasks.start(f"Importing {count} file{'s' if count != 1 else ''}", self._work)
        self._sync()

    async def _work(self, task: Task) -> list[FileResult]:
        task.report(None, "checking which files the project has already…")
        self.summary.setText("Checking which files the project has already…")
        try:
            results = await import_files(
                self._workspace.client,
                self._project_id,
                list(self._paths),
                per_request=self.per_request,
                on_progress=lambda progress: self._on_import_progressed(task, progress),
                on_result=self._on_import_result,
            )
        finally:
            if isValid(self):  # a dialog closed and deleted meanwhile leaves the task to end on its own
                self._ended(task)
        if isValid(self):
            self.sig_imported.emit([r.image_id for r in results if r.image_id is not None and not r.skipped])
        return results

    def _on_import_progressed(self, task: Task, progress: UploadProgress) -> None:
        fraction = progress.sent_bytes / progress.total_bytes if progress.total_bytes else None
        line = (
            f"{progress.files_done} of {progress.files_total} files · "
            f"{_size(progress.sent_bytes)} of {_size(progress.total_bytes)} sent"
        )
        task.report(fraction, line)
        if not isValid(self):
            return
        self.summary.setText(line[:1].upper() + line[1:])
        if progress.total_bytes:
            self.progress.setValue(round(1000 * progress.sent_bytes / progress.total_bytes))
            self.progress.setFormat(f"{_size(progress.sent_bytes)} of {_size(progress.total_bytes)}")
        index = progress.sending
        if index is not None and index not in self._results:
            sending = f"sending {_size(progress.sending_bytes)} of {_size(self._sizes[index])}"
            self._items[index].setText(2, sending)
        self.sig_progressed.emit(progress)

    def _on_import_result(self, index: int, result: FileResult) -> None:
        self._results[index] = result
        if not isValid(self):
            return
        item = self._items[index]
        if result.skipped:
            text, colour = f"skipped: {result.reason}", SKIPPED
        elif result.image_id is not None:
            text, colour = "stored", STORED
        else:
            text, colour = f"refused: {result.reason}", REFUSED
        item.setText(2, text)
        item.setToolTip(2, text)
        item.setForeground(2, QBrush(colour))
        if colour is REFUSED:
            self._show_refusals()

    def _show_refusals(self) -> None:
        refused = [(i, r) for i, r in sorted(self._results.items()) if r.image_id is None]
        lines = [f"{self._paths[i].name}: {r.reason}" for i, r in refused[:SHOWN_REFUSALS]]
        if len(refused) > SHOWN_REFUSALS:
            lines.append(f"and {len(refused) - SHOWN_REFUSALS} more (each one's reason is in the list)")
        self.refusals.setText(
            "Refused — " + "\n".join(lines) if len(lines) == 1 else "Refused:\n" + "\n".join(lines)
        )
        self.refusals.show()

    def _ended(self, task: Task) -> None:
        """Say how it ended (``task.state`` is set just after this; a cancel is seen as unfinished)."""
        stored = sum(1 for r in self._results.values() if r.image_id is not None and not r.skipped)
        skipped = sum(1 for r in self._results.values() if r.skipped)
        refused = sum(1 for r in self._results.values() if r.image_id is None)
        for index, item in enumerate(self._items):
            if index not in self._results:
                item.setText(2, "not sent")
        parts = [f"{stored} stored", f"{skipped} skipped (already in the project)", f"{refused} refused"]
        if len(self._results) < len(self._paths):
            parts.append(f"{len(self._paths) - len(self._results)} not sent: the import was stopped")
            self.summary.setText("Stopped. " + ", ".join(parts) + ". What was stored stays in the project.")
        else:
            self.progress.setValue(1000)
            self.summary.setText("Done: " + ", ".join(parts) + ".")
        self.ended = True
        self._sync()

    def _on_cancel_clicked(self) -> None:
        if self.task is not None and self.task.state is TaskState.RUNNING and not self.ended:
            self.task.cancel()
        else:
            self.reject()

    def _sync(self) -> None:
        started = self.task is not None
        finished = self.ended
        self.add_files_button.setEnabled(not started)
        self.add_folder_button.setEnabled(not started)
        self.subfolders.setEnabled(not started)
        self.start_button.setEnabled(not started and bool(self._paths))
        self.cancel_button.setText("&Close" if finished or not started else "&Cancel import")
        if not started:
            total = sum(self._sizes)
            self.summary.setText(
                f"{len(self._paths)} files, {_size(total)}. Files the project has already are skipped."
                if self._paths
                else "No files yet."
            )
