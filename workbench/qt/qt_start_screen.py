"""The start screen: *Work offline* (the default: the user's own server on this computer) or *Connect to
a lab server* (URL, user name, password; a saved session is resumed without asking for the password).

Opening runs as a task of the window's task list; what goes wrong is said here, beside the button that
was pressed, with what to do: the offline server's last log lines and a Retry, or a wrong password, an
unreachable server, too many attempts.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.api import ApiError, RateLimitedError, ServerUnreachableError, StateChange
from workbench.offline import OfflineServer, OfflineServerError
from workbench.sessions import SavedSessions
from workbench.startup import StartOptions
from workbench.tasks import Task, Tasks
from workbench.workspace import Workspace, open_lab, open_offline, resume_lab

__all__ = ["QtStartScreen", "lab_error_text"]


class QtStartScreen(QWidget):
    """Choose how to work; emits :attr:`sig_opened` with the signed-in :class:`Workspace`."""

    sig_opened = Signal(object)

    def __init__(
        self,
        options: StartOptions,
        sessions: SavedSessions,
        tasks: Tasks,
        on_channel: Callable[[StateChange], None] | None = None,
        recent_servers: list[str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.options = options
        self.sessions = sessions
        self.tasks = tasks
        self._on_channel = on_channel
        self._opening: Task | None = None
        self._build(recent_servers or [])
        self._sync_lab_form()

    # building

    def _build(self, recent_servers: list[str]) -> None:
        title = QLabel("SpheroSeg Workbench")
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        title.setFont(font)
        subtitle = QLabel("Outline, measure, review and export tumour spheroids.")
        cards = QHBoxLayout()
        cards.addWidget(self._offline_card(), 1)
        cards.addWidget(self._lab_card(recent_servers), 1)
        column = QWidget()
        column.setMaximumWidth(1000)
        inner = QVBoxLayout(column)
        inner.addWidget(title, 0, Qt.AlignmentFlag.AlignHCenter)
        inner.addWidget(subtitle, 0, Qt.AlignmentFlag.AlignHCenter)
        inner.addSpacing(16)
        inner.addLayout(cards)
        centred = QHBoxLayout()
        centred.addStretch(1)
        centred.addWidget(column, 20)
        centred.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 24, 32, 24)
        layout.addStretch(1)
        layout.addLayout(centred)
        layout.addStretch(2)
        for first, second in [
            (self.offline_button, self.url_box),
            (self.url_box, self.username),
            (self.username, self.password),
            (self.password, self.connect_button),
        ]:
            QWidget.setTabOrder(first, second)

    def _offline_card(self) -> QGroupBox:
        card = QGroupBox("On this computer")
        where = self.options.data_dir or "your SpheroSeg data folder"
        about = QLabel(
            f"Your images and results stay on this computer, in {where}. "
            "Segmentation runs on this computer's processors (and GPUs, where there are some)."
        )
        about.setWordWrap(True)
        self.offline_button = QPushButton("Work &offline")
        self.offline_button.setDefault(True)
        self.offline_button.setAutoDefault(True)
        self.offline_button.clicked.connect(self._on_offline_button_clicked)
        self.offline_progress = QProgressBar()
        self.offline_progress.setRange(0, 0)
        self.offline_progress.setVisible(False)
        self.offline_status = QLabel()
        self.offline_status.setWordWrap(True)
        self.offline_log = QPlainTextEdit()
        self.offline_log.setReadOnly(True)
        self.offline_log.setVisible(False)
        self.offline_log.setMinimumHeight(140)
        self.retry_button = QPushButton("&Retry")
        self.retry_button.setVisible(False)
        self.retry_button.clicked.connect(self._on_offline_button_clicked)
        layout = QVBoxLayout(card)
        layout.addWidget(about)
        layout.addWidget(self.offline_button)
        layout.addWidget(self.offline_progress)
        layout.addWidget(self.offline_status)
        layout.addWidget(self.offline_log)
        layout.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignRight)
        layout.addStretch(1)
        return card

    def _lab_card(self, recent_servers: list[str]) -> QGroupBox:
        card = QGroupBox("Connect to a lab server")
        about = QLabel("Share projects with your lab: the server's address, your user name and password.")
        about.setWordWrap(True)
        self.url_box = QComboBox()
        self.url_box.setEditable(True)
        self.url_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        line = self.url_box.lineEdit()
        assert line is not None  # an editable combo box has one
        line.setPlaceholderText("https://seg.your-lab.example")
        known = [s.url for s in self.sessions.recent()]
        for url in [*known, *(u for u in recent_servers if u.rstrip("/").lower() not in known)]:
            self.url_box.addItem(url)
        if self.options.server_url:
            self.url_box.setEditText(self.options.server_url)
        self.url_box.currentTextChanged.connect(self._sync_lab_form)
        self.username = QLineEdit()
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.returnPressed.connect(self._on_connect_button_clicked)
        self.saved_note = QLabel()
        self.saved_note.setWordWrap(True)
        self.connect_button = QPushButton("&Connect")
        self.connect_button.clicked.connect(self._on_connect_button_clicked)
        self.lab_error = QLabel()
        self.lab_error.setWordWrap(True)
        self.lab_error.setStyleSheet("color: #c0392b;")
        self.lab_error.setVisible(False)
        form = QFormLayout()
        server_label, user_label, password_label = (
            QLabel("&Server:"),
            QLabel("&User name:"),
            QLabel("&Password:"),
        )
        server_label.setBuddy(self.url_box)
        user_label.setBuddy(self.username)
        password_label.setBuddy(self.password)
        form.addRow(server_label, self.url_box)
        form.addRow(user_label, self.username)
        form.addRow(password_label, self.password)
        layout = QVBoxLayout(card)
        layout.addWidget(about)
        layout.addLayout(form)
        layout.addWidget(self.saved_note)
        layout.addWidget(self.connect_button, 0, Qt.AlignmentFlag.AlignRight)
        layout.addWidget(self.lab_error)
        layout.addStretch(1)
        return card

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802  (Qt's name)
        super().showEvent(event)
        if self._opening is None and self.focusWidget() is None:
            self.offline_button.setFocus()  # Enter works offline, the default

    # what the user does

    def start_offline(self) -> Task | None:
        """Work offline (the button, or ``spheroseg workbench --offline``); the opening task."""
        if self._opening is not None:
            return None
        self._set_busy("Starting the offline server…")
        self.offline_log.setVisible(False)
        self.retry_button.setVisible(False)
        self._opening = self.tasks.start("Starting the offline server", self._open_offline)
        return self._opening

    def connect_lab(self) -> Task | None:
        """Connect to the lab server in the form: resume its saved session, else sign in."""
        url = self.url_box.currentText().strip()
        if self._opening is not None:
            return None
        if not url:
            self._show_lab_error("Enter the lab server's address, e.g. https://seg.your-lab.example.")
            return None
        if not url.startswith(("http://", "https://")):
            url = f"https://{url}"
        self._set_busy(f"Connecting to {url}…")
        self.lab_error.setVisible(False)
        self._opening = self.tasks.start(f"Connecting to {url}", lambda task: self._open_lab(task, url))
        return self._opening

    def _on_offline_button_clicked(self) -> None:
        self.start_offline()

    def _on_connect_button_clicked(self) -> None:
        self.connect_lab()

    def _sync_lab_form(self) -> None:
        url = self.url_box.currentText().strip()
        saved = self.sessions.token_for(url) if url else None
        known = next((s for s in self.sessions.recent() if s.url == url.rstrip("/").lower()), None)
        if known is not None and not self.username.text():
            self.username.setText(known.username)
        self.saved_note.setText(
            f"Signed in as {saved.username}: Connect resumes that session, no password needed."
            if saved is not None
            else ""
        )
        self.saved_note.setVisible(saved is not None)

    # opening

    async def _open_offline(self, task: Task) -> None:
        server = OfflineServer(self.options.data_dir, environment=self.options.environment)
        try:
            workspace = await open_offline(
                cache_dir=self.options.cache_dir,
                on_channel=self._on_channel,
                server=server,
                journal_dir=self.options.journal_dir,
            )
        except OfflineServerError as error:
            self._show_offline_error(str(error), error.log_tail or server.log_tail())
            return
        except Exception as error:  # the sign-in after the start: said here, the log keeps the rest
            self._show_offline_error(str(error), server.log_tail())
            return
        finally:
            self._opening = None
            self._set_idle()
        self.sig_opened.emit(workspace)

    async def _open_lab(self, task: Task, url: str) -> None:
        password = self.password.text()
        try:
            workspace: Workspace | None = None
            if not password and self.sessions.token_for(url) is not None:
                workspace = await resume_lab(
                    url,
                    self.sessions,
                    cache_dir=self.options.cache_dir,
                    on_channel=self._on_channel,
                    journal_dir=self.options.journal_dir,
                )
                if workspace is None:
                    self._show_lab_error(
                        "Your saved session has ended: enter your password to sign in again."
                    )
                    self._sync_lab_form()
                    return
            elif not self.username.text().strip() or not password:
                self._show_lab_error("Enter your user name and password.")
                return
            else:
                workspace = await open_lab(
                    url,
                    self.username.text().strip(),
                    password,
                    sessions=self.sessions,
                    cache_dir=self.options.cache_dir,
                    on_channel=self._on_channel,
                    journal_dir=self.options.journal_dir,
                )
        except Exception as error:
            self._show_lab_error(lab_error_text(error, url))
            return
        finally:
            self._opening = None
            self._set_idle()
        self.password.clear()
        self.sig_opened.emit(workspace)

    # showing

    def _set_busy(self, text: str) -> None:
        self.offline_button.setEnabled(False)
        self.connect_button.setEnabled(False)
        self.offline_progress.setVisible(True)
        self.offline_status.setText(text)
        self.offline_status.setStyleSheet("")

    def _set_idle(self) -> None:
        self.offline_button.setEnabled(True)
        self.connect_button.setEnabled(True)
        self.offline_progress.setVisible(False)
        if self.offline_status.styleSheet() == "":
            self.offline_status.setText("")

    def _show_offline_error(self, message: str, log_tail: list[str]) -> None:
        self.offline_status.setText(
            f"The offline server did not start: {message}. Its last log lines are below; "
            "Retry once what they name is fixed."
        )
        self.offline_status.setStyleSheet("color: #c0392b;")
        self.offline_log.setPlainText("\n".join(log_tail) or "(the server wrote nothing to its log)")
        self.offline_log.setVisible(True)
        _show_end(self.offline_log)
        self.retry_button.setVisible(True)
        self.retry_button.setFocus()

    def _show_lab_error(self, text: str) -> None:
        self.lab_error.setText(text)
        self.lab_error.setVisible(True)


def _show_end(log: QPlainTextEdit) -> None:
    """Scroll ``log`` to its end (the last lines say most), once its new size is laid out."""
    bar = log.verticalScrollBar()
    QTimer.singleShot(0, lambda: bar.setValue(bar.maximum()))


def lab_error_text(error: BaseException, url: str) -> str:
    """What the user reads when connecting to ``url`` failed with ``error``, and what to do."""
    if isinstance(error, RateLimitedError):
        return f"Too many sign-in attempts: wait {error.retry_after:.0f} s, then try again."
    if isinstance(error, ApiError) and error.code == "INVALID_CREDENTIALS":
        return "Wrong user name or password: check both (passwords are case-sensitive) and try again."
    if isinstance(error, ServerUnreachableError):
        return (
            f"No answer from {url}: check the address, and that this computer is on the lab's network "
            "(or its VPN); then try again."
        )
    if isinstance(error, ApiError):
        return f"The server refused: {error.message}"
    return f"Could not connect to {url}: {error}"
