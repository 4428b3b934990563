"""Deploying a Dask cluster from the desktop, and pointing the offline server at it.

The form (:class:`DeployForm`) mirrors ``spheroseg cluster deploy``'s options; :func:`deploy_command`
turns it into that very command line and :func:`run_deploy` runs it as a child process (the workbench
never imports ``cluster.cli``), its output shown line by line. ``deploy`` starts a daemon that keeps the
cluster running after the command returns and records it in the cluster state file
(``SPHEROSEG_CLUSTER_STATE``, else ``cluster.json`` in the user data folder).

How the offline server learns of it: the server reads ``SPHEROSEG_SCHEDULER`` once, at start
(``deployed`` means the cluster in that state file), and has no API to change it while it runs (its
``startCluster`` only starts its own local cluster). So :func:`use_scheduler` restarts the offline server
with the variable set, on the same port and data folder: the URL stays, the session stays valid (the
database keeps it), the live channel reconnects by itself and every subscriber reads again what it shows
(:class:`~workbench.api.Resumed`). Segmentation tasks left running are queued again when it is back
(the dispatcher's rule for a restarted server) and go on, on the new cluster; an export running then
ends failed ("start it again"). ``use_scheduler(workspace, None)`` goes back to the server's own local
cluster; the deployed cluster keeps running until ``spheroseg cluster stop`` (:func:`stop_command`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from workbench.offline import OfflineServerError
from workbench.workspace import Workspace

__all__ = [
    "BACKENDS",
    "DEPLOYED",
    "DeployError",
    "DeployForm",
    "deploy_command",
    "run_deploy",
    "stop_command",
    "stop_deployed",
    "use_scheduler",
]

BACKENDS = ("ssh", "slurm", "local", "address")
"""ssh: hosts over SSH; slurm: batch jobs; local: this machine; address: a scheduler already running."""
DEPLOYED = "deployed"
"""``SPHEROSEG_SCHEDULER`` value for the cluster ``spheroseg cluster deploy`` recorded."""
SCHEDULER_VARIABLE = "SPHEROSEG_SCHEDULER"
SPHEROSEG = (sys.executable, "-m", "cluster.cli")
_RUNNING_AT = re.compile(r"running at (\S+)")
_SIZE = re.compile(r"^(auto|\d+(\.\d+)?\s*[KMGT]i?B)$", re.IGNORECASE)
_WALLTIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$")


class DeployError(Exception):
    """``spheroseg cluster deploy`` failed; ``output`` holds what it printed (the reason is at its end)."""

    def __init__(self, message: str, output: list[str]) -> None:
        super().__init__(message)
        self.output = output


@dataclass(frozen=True)
class DeployForm:
    """``spheroseg cluster deploy``'s options, as the desktop's form holds them (empty text: not given)."""

    backend: str = "ssh"
    workers: int | None = None
    """ssh: per host; slurm: in total; local: on this machine (``None``: the command's default)."""
    gpus: bool = False
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    adapt: tuple[int, int] | None = None
    """Scale itself between these many workers with the load."""
    scheduler: str = ""
    """address: the scheduler already running (tcp://host:8786)."""
    host: str = "127.0.0.1"
    """local, slurm: the interface the scheduler listens on (0.0.0.0 lets other machines in)."""
    ssh_hosts: tuple[str, ...] = ()
    """The scheduler's host first, then the workers' (``host[:gpus]``)."""
    ssh_user: str = ""
    ssh_port: int = 22
    ssh_keys: tuple[str, ...] = ()
    known_hosts: str = ""
    remote_python: str = ""
    partition: str = ""
    account: str = ""
    walltime: str = "01:00:00"
    job_cores: int = 4
    job_memory: str = "16GB"
    gpus_per_job: int = 1
    job_extra: tuple[str, ...] = ()
    prologue: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    """KEY=VALUE set on every worker."""
    timeout: float = 120.0

    def problems(self) -> dict[str, str]:
        """What must be corrected before deploying, by field (empty: nothing)."""
        found: dict[str, str] = {}
        if self.backend not in BACKENDS:
            found["backend"] = f"choose one of {', '.join(BACKENDS)}"
        if self.backend == "ssh" and len(self.ssh_hosts) < 2:
            found["ssh_hosts"] = (
                "name the scheduler's host, then at least one worker host (repeat the first to run a "
                "worker beside the scheduler)"
            )
        if self.backend == "address" and not re.match(r"^(tcp|tls|inproc|ucx)://\S+$", self.scheduler):
            found["scheduler"] = "give the scheduler's address, e.g. tcp://head:8786"
        if self.backend == "slurm" and not _WALLTIME.match(self.walltime):
            found["walltime"] = "write the wall time as HH:MM:SS (or D-HH:MM:SS)"
        for name in ("memory_limit", "job_memory"):
            if not _SIZE.match(getattr(self, name)) or (name == "job_memory" and self.job_memory == "auto"):
                found[name] = "write a size such as 8GB"
        if self.adapt is not None and not 0 <= self.adapt[0] <= self.adapt[1]:
            found["adapt"] = "the minimum must be at most the maximum"
        for item in self.env:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", item):
                found["env"] = f"{item!r} is not KEY=VALUE"
        return found

    def arguments(self) -> list[str]:
        """The options of ``spheroseg cluster deploy`` this form stands for (only those its backend uses
        and those that differ from the command's defaults)."""
        args = ["--backend", self.backend]
        if self.backend == "address":  # its workers run already: only where it is
            return [*args, "--scheduler", self.scheduler, *_given("--timeout", f"{self.timeout:g}", "120")]
        if self.workers is not None:
            args += ["--workers", str(self.workers)]
        if self.gpus:
            args.append("--gpus")
        if self.adapt is not None:
            args += ["--adapt", f"{self.adapt[0]}:{self.adapt[1]}"]
        args += _given("--threads-per-worker", self.threads_per_worker, 1)
        args += _given("--memory-limit", self.memory_limit, "auto")
        if self.backend in ("local", "slurm"):
            args += _given("--host", self.host, "127.0.0.1")
        if self.backend == "ssh":
            args += [arg for host in self.ssh_hosts for arg in ("--ssh-host", host)]
            args += _given("--ssh-user", self.ssh_user, "")
            args += _given("--ssh-port", self.ssh_port, 22)
            args += [arg for key in self.ssh_keys for arg in ("--ssh-key", key)]
            args += _given("--known-hosts", self.known_hosts, "")
            args += _given("--remote-python", self.remote_python, "")
        if self.backend == "slurm":
            args += _given("--partition", self.partition, "")
            args += _given("--account", self.account, "")
            args += ["--walltime", self.walltime, "--job-cores", str(self.job_cores)]
            args += ["--job-memory", self.job_memory, "--gpus-per-job", str(self.gpus_per_job)]
            args += [f"--job-extra={extra}" for extra in self.job_extra]  # values begin with "--"
            args += [arg for line in self.prologue for arg in ("--prologue", line)]
        args += [arg for item in self.env for arg in ("--env", item)]
        args += _given("--timeout", f"{self.timeout:g}", "120")
        return args


def _given(option: str, value: object, default: object) -> list[str]:
    return [] if value == default else [option, str(value)]


def deploy_command(form: DeployForm) -> list[str]:
    """The command the form runs: ``spheroseg cluster deploy …`` through this Python."""
    return [*SPHEROSEG, "cluster", "deploy", *form.arguments()]


def stop_command() -> list[str]:
    """``spheroseg cluster stop``: the deployed cluster's workers retire, then its scheduler exits."""
    return [*SPHEROSEG, "cluster", "stop"]


async def run_deploy(
    form: DeployForm, environment: Mapping[str, str], on_line: Callable[[str], None] | None = None
) -> str | None:
    """Run ``spheroseg cluster deploy`` for ``form`` with ``environment`` (the offline server's, so both
    find the same state file); ``on_line`` hears each line it prints. Returns the scheduler's address it
    printed. :class:`DeployError` (with the output) when it fails. Cancelling ends the command; a daemon
    it had started already may come up all the same (``spheroseg cluster stop`` ends it)."""
    problems = form.problems()
    if problems:
        raise DeployError("; ".join(f"{name}: {text}" for name, text in problems.items()), [])
    output = await _run(deploy_command(form), environment, on_line)
    for line in reversed(output):
        found = _RUNNING_AT.search(line)
        if found:
            return found.group(1)
    return None


async def _run(
    command: list[str], environment: Mapping[str, str], on_line: Callable[[str], None] | None
) -> list[str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**environment, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    output: list[str] = []
    assert process.stdout is not None
    try:
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            output.append(line)
            if on_line is not None:
                on_line(line)
        status = await process.wait()
    finally:
        if process.returncode is None:  # cancelled: end the command with us
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            await process.wait()
    if status != 0:
        reason = next((line for line in reversed(output) if line.strip()), f"exit status {status}")
        raise DeployError(f"spheroseg cluster deploy failed: {reason}", output)
    return output


async def stop_deployed(environment: Mapping[str, str], on_line: Callable[[str], None] | None = None) -> None:
    """Run ``spheroseg cluster stop`` (:class:`DeployError` when there is nothing to stop)."""
    await _run(stop_command(), environment, on_line)


async def use_scheduler(workspace: Workspace, scheduler: str | None) -> None:
    """Restart the offline server of ``workspace`` so that its jobs run on ``scheduler`` (``deployed``, or
    an address); ``None``: on its own local cluster again. See the module's docstring for why a restart.
    :class:`~workbench.offline.OfflineServerError` on a lab server, or when the offline server is
    another program's (or does not come back: with its last log lines)."""
    server = workspace.offline
    if server is None:
        raise OfflineServerError("a lab server's cluster is set up where the server runs, not from here")
    environment = server.environment
    environment.pop(SCHEDULER_VARIABLE, None)
    if scheduler is not None:
        environment[SCHEDULER_VARIABLE] = scheduler
    workspace.started = await server.restart(environment)
