"""The "Deploy a cluster" form: ``spheroseg cluster deploy``'s options, run as a task, its output shown,
and then the offline server pointed at the cluster (a restart of a few seconds; see
:mod:`workbench.deploy` for why a restart)."""

from __future__ import annotations

import shlex

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.deploy import DEPLOYED, DeployError, DeployForm, deploy_command, run_deploy, use_scheduler
from workbench.tasks import Task, Tasks, TaskState
from workbench.workspace import Workspace

__all__ = ["QtDeployDialog"]

_BACKENDS = [
    ("ssh", "SSH hosts"),
    ("slurm", "SLURM"),
    ("local", "This computer"),
    ("address", "A scheduler already running"),
]


_WORKERS_SUFFIX = {"ssh": " per host", "slurm": " in total", "local": " on this computer"}


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.replace(",", " ").split())


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


class QtDeployDialog(QDialog):
    """Deploys a cluster for the offline server of ``workspace``; the work runs as a task of ``tasks``."""

    sig_deployed = Signal(str)
    """The scheduler's address, once the offline server uses it."""

    def __init__(self, workspace: Workspace, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Deploy a cluster")
        self.workspace = workspace
        self.tasks = tasks
        self.task: Task | None = None
        self._build()
        self._on_form_edited()

    def _build(self) -> None:
        intro = QLabel(
            "Start Dask workers on other machines (as <code>spheroseg cluster deploy</code> does). The "
            "offline server then restarts to run its jobs there: a few seconds; running segmentations "
            "go on after it, an export running then must be started again."
        )
        intro.setWordWrap(True)
        self.backend = QComboBox()
        for key, caption in _BACKENDS:
            self.backend.addItem(caption, key)
        where = QFormLayout()
        where.addRow("Run o&n:", self.backend)
        self.workers = QSpinBox()
        self.workers.setRange(-1, 1024)
        self.workers.setSpecialValueText("as the command chooses")
        self.workers.setValue(-1)
        self.gpus = QCheckBox("One worker per &GPU")
        self.threads = QSpinBox()
        self.threads.setRange(1, 256)
        self.memory = QLineEdit("auto")
        self.worker_box = QGroupBox("Workers")
        common = QFormLayout(self.worker_box)
        common.addRow("&Workers:", self.workers)
        common.addRow("", self.gpus)
        common.addRow("&Threads per worker:", self.threads)
        common.addRow("&Memory per worker:", self.memory)

        self.pages = [self._ssh_page(), self._slurm_page(), self._local_page(), self._address_page()]

        self.command = QPlainTextEdit()
        self.command.setReadOnly(True)
        self.command.setAccessibleName("Command")
        self.command.setTabChangesFocus(True)
        self.command.setFixedHeight(self.command.fontMetrics().lineSpacing() * 3 + 12)
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #c62828")
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.output.setPlaceholderText("What the command prints appears here.")
        self.output.setMaximumBlockCount(2000)
        self.output.setMinimumHeight(90)
        self.outcome = QLabel()
        self.outcome.setWordWrap(True)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.deploy_button = QPushButton("&Deploy")
        self.deploy_button.setDefault(True)
        buttons.addButton(self.deploy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.deploy_button.clicked.connect(self._on_deploy_clicked)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(where)
        layout.addWidget(self.worker_box)
        for page in self.pages:
            layout.addWidget(page)
        layout.addWidget(QLabel("Runs:"))
        layout.addWidget(self.command)
        layout.addWidget(self.problems)
        layout.addWidget(self.output, 1)
        layout.addWidget(self.outcome)
        layout.addWidget(buttons)
        self.resize(580, 600)

        for edited in (
            self.backend.currentIndexChanged,
            self.workers.valueChanged,
            self.threads.valueChanged,
        ):
            edited.connect(self._on_form_edited)
        self.gpus.toggled.connect(self._on_form_edited)
        for line in self.findChildren(QLineEdit):
            line.textChanged.connect(self._on_form_edited)
        for page in self.pages:
            for spin in page.findChildren(QSpinBox):
                spin.valueChanged.connect(self._on_form_edited)
        self.prologue.textChanged.connect(self._on_form_edited)

    def _page(self, title: str) -> tuple[QGroupBox, QFormLayout]:
        page = QGroupBox(title)
        return page, QFormLayout(page)

    def _ssh_page(self) -> QWidget:
        self.ssh_hosts = QLineEdit()
        self.ssh_hosts.setPlaceholderText("head gpu1:4 gpu2:4")
        self.ssh_hosts.setToolTip("The scheduler's host first, then the workers' (host:GPUs).")
        self.ssh_user = QLineEdit()
        self.ssh_port = QSpinBox()
        self.ssh_port.setRange(1, 65535)
        self.ssh_port.setValue(22)
        self.ssh_keys = QLineEdit()
        self.ssh_keys.setPlaceholderText("~/.ssh/id_ed25519")
        self.known_hosts = QLineEdit()
        self.known_hosts.setPlaceholderText("~/.ssh/known_hosts")
        self.remote_python = QLineEdit()
        self.remote_python.setPlaceholderText("the same path as here")
        page, form = self._page("SSH hosts")
        form.addRow("&Hosts:", self.ssh_hosts)
        form.addRow("&User:", self.ssh_user)
        form.addRow("&Port:", self.ssh_port)
        form.addRow("&Key files:", self.ssh_keys)
        form.addRow("Kn&own hosts:", self.known_hosts)
        form.addRow("Remote P&ython:", self.remote_python)
        return page

    def _slurm_page(self) -> QWidget:
        self.partition = QLineEdit()
        self.partition.setPlaceholderText("the cluster's default queue")
        self.account = QLineEdit()
        self.walltime = QLineEdit("01:00:00")
        self.job_cores = QSpinBox()
        self.job_cores.setRange(1, 1024)
        self.job_cores.setValue(4)
        self.job_memory = QLineEdit("16GB")
        self.gpus_per_job = QSpinBox()
        self.gpus_per_job.setRange(1, 64)
        self.job_extra = QLineEdit()
        self.job_extra.setPlaceholderText("--constraint=a100")
        self.prologue = QPlainTextEdit()
        self.prologue.setPlaceholderText("module load cuda/12.4")
        self.prologue.setTabChangesFocus(True)
        self.prologue.setMaximumHeight(52)
        self.slurm_host = QLineEdit("0.0.0.0")
        page, form = self._page("SLURM")
        form.addRow("&Partition (queue):", self.partition)
        form.addRow("&Account:", self.account)
        form.addRow("Wall t&ime:", self.walltime)
        form.addRow("&Cores per job:", self.job_cores)
        form.addRow("Memory per &job:", self.job_memory)
        form.addRow("GP&Us per job:", self.gpus_per_job)
        form.addRow("E&xtra #SBATCH:", self.job_extra)
        form.addRow("P&rologue lines:", self.prologue)
        form.addRow("Scheduler &listens on:", self.slurm_host)
        return page

    def _local_page(self) -> QWidget:
        self.local_host = QLineEdit("127.0.0.1")
        page, form = self._page("This computer")
        form.addRow("Scheduler &listens on:", self.local_host)
        return page

    def _address_page(self) -> QWidget:
        self.scheduler = QLineEdit()
        self.scheduler.setPlaceholderText("tcp://head:8786")
        page, form = self._page("A scheduler already running")
        form.addRow("Scheduler &address:", self.scheduler)
        return page

    def form(self) -> DeployForm:
        """What the form says now."""
        backend = str(self.backend.currentData())
        return DeployForm(
            backend=backend,
            workers=None if self.workers.value() < 0 else self.workers.value(),
            gpus=self.gpus.isChecked(),
            threads_per_worker=self.threads.value(),
            memory_limit=self.memory.text().strip(),
            scheduler=self.scheduler.text().strip(),
            host=(self.slurm_host if backend == "slurm" else self.local_host).text().strip(),
            ssh_hosts=_words(self.ssh_hosts.text()),
            ssh_user=self.ssh_user.text().strip(),
            ssh_port=self.ssh_port.value(),
            ssh_keys=_words(self.ssh_keys.text()),
            known_hosts=self.known_hosts.text().strip(),
            remote_python=self.remote_python.text().strip(),
            partition=self.partition.text().strip(),
            account=self.account.text().strip(),
            walltime=self.walltime.text().strip(),
            job_cores=self.job_cores.value(),
            job_memory=self.job_memory.text().strip(),
            gpus_per_job=self.gpus_per_job.value(),
            job_extra=_words(self.job_extra.text()),
            prologue=_lines(self.prologue.toPlainText()),
        )

    def _on_form_edited(self) -> None:
        form = self.form()
        index = self.backend.currentIndex()
        for number, page in enumerate(self.pages):
            page.setVisible(number == index)
        self.worker_box.setVisible(form.backend != "address")  # its workers are already there
        self.workers.setSuffix(_WORKERS_SUFFIX.get(form.backend, ""))
        self.command.setPlainText(shlex.join(["spheroseg", *deploy_command(form)[3:]]))
        problems = form.problems()
        self.problems.setText("\n".join(problems.values()))
        self.problems.setVisible(bool(problems))
        self.deploy_button.setEnabled(not problems and self.task is None)

    def _on_deploy_clicked(self) -> None:
        form = self.form()
        if form.problems() or self.task is not None or self.workspace.offline is None:
            return
        environment = self.workspace.offline.environment
        self.output.clear()
        self.outcome.clear()

        async def deploy(task: Task) -> None:
            def heard(line: str) -> None:
                self.output.appendPlainText(line)
                task.report(None, line)

            try:
                address = await run_deploy(form, environment, heard)
                task.report(None, "Restarting the offline server to use the cluster")
                self.outcome.setText("Restarting the offline server to use the cluster…")
                await use_scheduler(self.workspace, DEPLOYED)
            except DeployError as failed:
                self.outcome.setText(f"<b>Not deployed.</b> {failed}")
                raise
            self.outcome.setText(
                f"<b>Deployed.</b> The offline server runs its jobs on {address or 'it'} now."
            )
            self.sig_deployed.emit(address or DEPLOYED)

        self.task = self.tasks.start(f"Deploying a cluster ({form.backend})", deploy)
        self.deploy_button.setEnabled(False)
        disconnect = self.tasks.changed.connect(lambda changed: ended(changed))

        def ended(changed: Task) -> None:
            if changed is self.task and changed.state is not TaskState.RUNNING:
                disconnect()
                if changed.state is TaskState.CANCELLED:
                    self.outcome.setText("Cancelled.")
                self.task = None
                self._on_form_edited()
