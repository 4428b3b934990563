"""The segment dialog: which images (selected, filtered or all, with their counts), the method and its
model, and a form of the method's parameters built from the server's ``methods`` query (defaults,
bounds, descriptions); a refused value is shown at its field. Once the job starts, the dialog shows its
live progress (:class:`~workbench.qt.qt_job_view.QtJobView`), which also runs in the window's task list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from workbench.api import ApiError
from workbench.jobs import count_images, start_segmentation
from workbench.methods import Method, load_methods, refused_field
from workbench.qt.buttons import make_default
from workbench.qt.qt_job_view import QtJobView
from workbench.qt.qt_parameter_form import ERROR_STYLE, QtParameterForm
from workbench.tasks import Task, Tasks
from workbench.workspace import Workspace

__all__ = ["QtSegment"]


class QtSegment(QDialog):
    """Choose images and method, start; the dialog then shows the job's live progress."""

    sig_started = Signal(int)
    """The new job's id."""
    sig_loaded = Signal()
    """The methods and the counts have arrived."""

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
        self.methods: list[Method] = []
        self.counts: dict[str, int | None] = {}
        self.forms: dict[str, QtParameterForm] = {}
        self.job_view: QtJobView | None = None
        self.starting: Task | None = None
        self.setWindowTitle("Segment images")
        self.resize(580, 720)

        self.scope_box = QGroupBox("Images")
        self.scopes = QButtonGroup(self)
        self.selected = QRadioButton("&Selected images")
        self.filtered = QRadioButton("&Filtered images")
        self.everything = QRadioButton("&All images in the project")
        scope_layout = QVBoxLayout(self.scope_box)
        for button in (self.selected, self.filtered, self.everything):
            self.scopes.addButton(button)
            scope_layout.addWidget(button)
        self.selected.setEnabled(self._image_ids is not None)
        self.filtered.setEnabled(self._filter is not None)

        self.method_box = QGroupBox("Method")
        self.method = QComboBox()
        self.model = QLabel()
        self.model.setWordWrap(True)
        self.model.setStyleSheet("color: palette(dark)")
        self.method_error = QLabel()
        self.method_error.setStyleSheet(ERROR_STYLE)
        self.method_error.hide()
        self.parameters = QStackedWidget()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.parameters)
        self.reset_button = QPushButton("Reset to &defaults")
        method_layout = QVBoxLayout(self.method_box)
        method_row = QFormLayout()
        method_label = QLabel("&Method:")
        method_label.setBuddy(self.method)
        method_row.addRow(method_label, self.method)
        method_layout.addLayout(method_row)
        method_layout.addWidget(self.model)
        method_layout.addWidget(self.method_error)
        method_layout.addWidget(scroll, 1)
        method_layout.addWidget(self.reset_button)

        self.error = QLabel()
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()
        self.start_button = QPushButton("S&tart segmentation")
        self.start_button.setEnabled(False)
        self.close_button = QPushButton("&Close")
        buttons = QDialogButtonBox()
        buttons.addButton(self.start_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.close_button, QDialogButtonBox.ButtonRole.RejectRole)
        self._layout = QVBoxLayout(self)
        self._layout.addWidget(self.scope_box)
        self._layout.addWidget(self.method_box, 1)
        self._layout.addWidget(self.error)
        self._layout.addWidget(buttons)

        self.method.currentIndexChanged.connect(self._on_method_changed)
        self.reset_button.clicked.connect(self._on_reset_clicked)
        self.start_button.clicked.connect(self.start)
        self.close_button.clicked.connect(self.reject)
        make_default(self.start_button, self)
        self.loading = self._tasks.start("Reading the segmentation methods", self._load)

    @property
    def form(self) -> QtParameterForm | None:
        widget = self.parameters.currentWidget()
        return widget if isinstance(widget, QtParameterForm) else None

    async def _load(self, task: Task) -> None:
        client = self._workspace.client
        self.methods = await load_methods(client)
        everything = await count_images(client, self._project_id, None)
        filtered = await count_images(client, self._project_id, self._filter) if self._filter else None
        if not isValid(self):  # closed and deleted while the server answered
            return
        self.counts = {"selected": len(self._image_ids or []), "filtered": filtered, "all": everything}
        chosen = len(self._image_ids) if self._image_ids is not None else "none selected in the gallery"
        self.selected.setText(f"&Selected images ({chosen})")
        shown = filtered if filtered is not None else "no filter set in the gallery"
        self.filtered.setText(f"&Filtered images ({shown})")
        self.everything.setText(f"&All images in the project ({everything})")
        self.everything.setEnabled(everything > 0)
        for button in (self.selected, self.filtered, self.everything):
            if button.isEnabled():
                button.setChecked(True)
                break
        for method in self.methods:
            form = QtParameterForm(method)
            form.sig_choice_changed.connect(lambda _name: self._show_model())
            self.forms[method.name] = form
            self.parameters.addWidget(form)
            label = method.name + (" (default)" if method.default else "")
            self.method.addItem(label if method.available else f"{label}: not available here", method.name)
            if not method.available:
                model = self.method.model()
                item = model.item(self.method.count() - 1) if hasattr(model, "item") else None
                if item is not None:
                    item.setEnabled(False)
        self.method.setCurrentIndex(0)
        self._on_method_changed(0)
        self.start_button.setEnabled(everything > 0)
        self.sig_loaded.emit()

    def choose_method(self, name: str) -> None:
        self.method.setCurrentIndex(self.method.findData(name))

    def _on_method_changed(self, index: int) -> None:
        name = self.method.itemData(index)
        if name not in self.forms:
            return
        self.parameters.setCurrentWidget(self.forms[name])
        self._show_model()
        self.method_error.hide()

    def _show_model(self) -> None:
        """Say which model the form's choice runs (the method's default model unless it names another)."""
        form = self.form
        if form is None:
            return
        model = form.method.model_chosen(form.values())
        if model is None:
            self.model.setText("No model card.")
            self.model.setToolTip("")
        else:
            made = f", made {model.created}" if model.created else ""
            self.model.setText(
                f"Model {model.name} {model.version}{made}" + (" (hover for notes)" if model.notes else "")
            )
            self.model.setToolTip(model.notes)

    def _on_reset_clicked(self) -> None:
        if self.form is not None:
            self.form.reset()

    def _scope(self) -> tuple[list[int] | None, dict[str, Any] | None, int]:
        if self.selected.isChecked() and self._image_ids is not None:
            return self._image_ids, None, len(self._image_ids)
        if self.filtered.isChecked() and self._filter is not None:
            return None, self._filter, self.counts.get("filtered") or 0
        return None, None, self.counts.get("all") or 0

    def start(self) -> None:
        form = self.form
        if form is None or not self.start_button.isEnabled():
            return
        self.start_button.setEnabled(False)
        self.error.hide()
        form.clear_errors()
        self.method_error.hide()
        image_ids, image_filter, count = self._scope()
        self.starting = self._tasks.start(
            f"Starting to segment {count} image{'s' if count != 1 else ''}",
            lambda task: self._start(form, image_ids, image_filter),
        )

    async def _start(
        self, form: QtParameterForm, image_ids: list[int] | None, image_filter: dict[str, Any] | None
    ) -> None:
        try:
            job_id = await start_segmentation(
                self._workspace.client,
                self._project_id,
                method=form.method.name,
                parameters=form.values(),
                image_ids=image_ids,
                image_filter=image_filter,
            )
        except ApiError as refused:
            if not isValid(self):
                raise  # nobody sees the form any more: the task list's notice says it
            self._show_refusal(form, refused)
            self.start_button.setEnabled(True)
            return
        if isValid(self):  # else the job runs on; the gallery's badges still follow it
            self._show_job(job_id)

    def _show_refusal(self, form: QtParameterForm, refused: ApiError) -> None:
        message = str(refused.extensions.get("message", refused.message))
        field = refused_field(refused, list(form.fields))
        if field == "method":
            self.method_error.setText(message)
            self.method_error.show()
        elif field is not None:
            form.show_error(field, message.split(": ", 1)[-1] if "bad parameters" in message else message)
        else:
            self.error.setText(f"The server refused: {refused.message}")
            self.error.show()

    def _show_job(self, job_id: int) -> None:
        """The form gives way to the job's live progress."""
        self.scope_box.hide()
        self.method_box.hide()
        self.start_button.hide()
        self.job_view = QtJobView(self._workspace, self._tasks, job_id, self)
        self.job_view.sig_ended.connect(lambda detail: self.close_button.setText("&Close"))
        self._layout.insertWidget(0, self.job_view, 1)
        self.close_button.setText("&Close (the job goes on)")
        self.resize(self.width(), 300)  # the form's room is not needed by a progress line
        self.sig_started.emit(job_id)
