"""The user's own server, for the offline mode: started (or found running and reused), watched, stopped.

The workbench never imports ``server``: it runs ``spheroseg server serve --offline`` as a child process
(through ``python -m cluster.cli``, so it needs no script on the PATH) on the user's data folder, with
``--parent-pid`` so the server ends when the workbench does, even after a crash. The server's standard
output carries one JSON line (see the README's "offline mode"): ``ready``, with the URL and a one-time
bootstrap token the client exchanges for a session, or ``already_running`` when another process serves
that data folder; then the running server is reused and ``spheroseg server bootstrap-token`` issues a
token for it. Everything the server logs goes to ``server.log`` in the data folder, whose last lines
:class:`OfflineServerError` carries when the server does not start or dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["OfflineServer", "OfflineServerError", "OfflineStart"]

logger = logging.getLogger(__name__)

LOG_FILE = "server.log"
_ANSWERED = re.compile(r'^INFO:\s+\S+ - "[A-Z]+ \S+ HTTP/[\d.]+" [23]\d\d ')
"""An access-log line of a request the server answered well (uvicorn's format)."""
EXIT_ALREADY_RUNNING = 3
SPHEROSEG = (sys.executable, "-m", "cluster.cli")


class OfflineServerError(Exception):
    """The offline server did not start, or stopped by itself; ``log_tail`` holds its last log lines."""

    def __init__(self, message: str, log_tail: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.log_tail = list(log_tail)


@dataclass(frozen=True)
class OfflineStart:
    url: str
    bootstrap_token: str
    """One-time: exchange it for a session (``LabClient.exchange_bootstrap_token``)."""
    pid: int
    reused: bool
    """Another process of this user serves the data folder already; it is not ours to stop."""


class OfflineServer:
    """The offline server on ``data_dir`` (the server's default data folder when ``None``)."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        environment: Mapping[str, str] | None = None,
        ready_timeout: float = 60.0,
        command: Sequence[str] = SPHEROSEG,
    ) -> None:
        self.data_dir = data_dir
        self.ready_timeout = ready_timeout
        self._command = tuple(command)
        self._environment = dict(os.environ if environment is None else environment)
        if data_dir is not None:
            self._environment["SPHEROSEG_DATA_DIR"] = str(data_dir)
        self._process: asyncio.subprocess.Process | None = None
        self._restarting = False
        self._log_path: Path | None = None
        self._port = 0
        """0 until started: a free port; then the port it had, so a restart keeps the URL (and the
        clients, whose sessions the database keeps, carry on: the live channel reconnects)."""

    @property
    def log_path(self) -> Path | None:
        """Where the server's log goes (``server.log`` in the data folder), once it was started."""
        return self._log_path

    @property
    def data_folder(self) -> Path:
        """The folder the server keeps its data in: it names this server across starts, which the URL
        (a free port each time the workbench starts it) does not."""
        named = self._environment.get("SPHEROSEG_DATA_DIR")
        return Path(named) if named else _default_data_dir()

    @property
    def environment(self) -> dict[str, str]:
        """The environment the server runs with (a copy)."""
        return dict(self._environment)

    @property
    def owned(self) -> bool:
        """This workbench started the server, so it stops it."""
        return self._process is not None

    async def start(self) -> OfflineStart:
        """Start the server, or reuse the one already serving the data folder."""
        self._log_path = self._log_file()
        with self._log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *self._command,
                "server",
                "serve",
                "--offline",
                "--parent-pid",
                str(os.getpid()),
                "--port",
                str(self._port),
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=self._environment,
            )
        try:
            line = await self._first_line(process)
        except OfflineServerError:
            if not self._port:
                raise
            # the port it had may have been taken meanwhile: the URL changes, the data folder does not
            logger.warning("the offline server did not start on port %d again; trying a free one", self._port)
            self._port = 0
            return await self.start()
        if line.get("event") == "ready":
            self._process = process
            self._port = urlsplit(line["url"]).port or 0
            return OfflineStart(line["url"], line["bootstrap_token"], int(line["pid"]), reused=False)
        if line.get("event") == "already_running":
            await process.wait()
            # a server whose workbench was just killed stops by itself (it polls its parent) and holds
            # the lock until then: once it has gone, start ours instead of reusing a server on its way out
            running_pid = int(line.get("pid") or 0)
            if _ended_already(line.get("parent_pid")) and await _ended(running_pid, self.ready_timeout):
                logger.info("the offline server at %s was stopping; starting anew", line.get("url"))
                return await self.start()
            try:
                return await self._reuse(line)
            except OfflineServerError:
                if not await _ended(running_pid, self.ready_timeout):
                    raise
                logger.info("the offline server at %s stopped meanwhile; starting anew", line.get("url"))
                return await self.start()
        await _stop(process)
        raise OfflineServerError(f"the server said something unexpected: {line}", self.log_tail())

    async def restart(self, environment: Mapping[str, str]) -> OfflineStart:
        """Stop the server this workbench started and start it again with ``environment`` (how a
        setting read only at start, such as ``SPHEROSEG_SCHEDULER``, changes) on the same port and data
        folder, so the URL stays and existing sessions stay valid. Segmentation tasks left running are
        queued again once it is back; an export running then fails and must be started again.
        :class:`OfflineServerError` for a server this workbench did not start (another workbench serves
        the data folder: close it first)."""
        if self._process is None:
            raise OfflineServerError(
                "another program runs the offline server on this data folder; close it, then try again"
            )
        self._restarting = True
        try:
            await self.stop()
            data_dir = self._environment.get("SPHEROSEG_DATA_DIR")
            self._environment = dict(environment)
            if data_dir is not None:
                self._environment["SPHEROSEG_DATA_DIR"] = data_dir
            return await self.start()
        finally:
            self._restarting = False

    async def wait(self) -> int:
        """Wait until the server this workbench started exits; its exit status (0: stopped cleanly). A
        :meth:`restart` is no exit: the server it starts is waited for in turn."""
        while True:
            process = self._process
            if process is None:
                raise RuntimeError("no offline server was started here")
            status = await process.wait()
            while self._restarting:
                await asyncio.sleep(0.05)
            if self._process is process or self._process is None:
                return status

    async def stop(self, timeout: float = 15.0) -> int | None:
        """Stop the server this workbench started (a reused one keeps running) and return its exit status
        (0: stopped cleanly; ``None``: not ours). SIGTERM lets it finish its shutdown (jobs handed back,
        lock removed); after ``timeout`` it is killed."""
        if self._process is None:
            return None
        status = await _stop(self._process, timeout)
        self._process = None
        return status

    def log_tail(self, lines: int = 20) -> list[str]:
        """The last ``lines`` lines of the server's log (what to show when it failed), leaving out the
        lines of answered requests: a window that was busy fills the log with them, and they never say
        what went wrong."""
        if self._log_path is None or not self._log_path.exists():
            return []
        with self._log_path.open("rb") as log:
            log.seek(max(0, self._log_path.stat().st_size - 64 * 1024))
            text = log.read().decode("utf-8", errors="replace")
        return [line for line in text.splitlines() if not _ANSWERED.match(line)][-lines:]

    async def _first_line(self, process: asyncio.subprocess.Process) -> dict[str, Any]:
        assert process.stdout is not None
        try:
            raw = await asyncio.wait_for(process.stdout.readline(), self.ready_timeout)
        except TimeoutError:
            await _stop(process)
            raise OfflineServerError(
                f"the server was not ready within {self.ready_timeout:.0f} s", self.log_tail()
            ) from None
        if not raw:
            status = await process.wait()
            raise OfflineServerError(
                f"the server stopped while starting (exit status {status})", self.log_tail()
            )
        try:
            line: dict[str, Any] = json.loads(raw)
        except json.JSONDecodeError:
            await _stop(process)
            raise OfflineServerError(f"the server printed {raw[:200]!r} instead of its ready line") from None
        return line

    async def _reuse(self, running: Mapping[str, Any]) -> OfflineStart:
        """A bootstrap token for the server another process of this user started."""
        issue = await asyncio.create_subprocess_exec(
            *self._command,
            "server",
            "bootstrap-token",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._environment,
        )
        out, err = await asyncio.wait_for(issue.communicate(), self.ready_timeout)
        if issue.returncode != 0:
            message = err.decode(errors="replace").strip() or f"exit status {issue.returncode}"
            raise OfflineServerError(
                f"a server is running ({running.get('url')}) but gave no token: {message}"
            )
        line = json.loads(out)
        logger.info("reusing the offline server at %s (pid %s)", running["url"], running["pid"])
        return OfflineStart(
            line.get("url", running["url"]), line["bootstrap_token"], int(running["pid"]), True
        )

    def _log_file(self) -> Path:
        folder = self.data_folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder / LOG_FILE


async def _stop(process: asyncio.subprocess.Process, timeout: float = 15.0) -> int:
    if process.returncode is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        logger.warning("the offline server did not stop within %.0f s; killing it", timeout)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    return await process.wait()


def _ended_already(pid: object) -> bool:
    """Whether the process ``pid`` names (``None``: none) has ended, a zombie included."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


async def _ended(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` ends within ``timeout`` seconds (at once: it has already)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while pid > 0 and not _ended_already(pid):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return pid > 0


def _default_data_dir() -> Path:
    """The server's default data folder (its settings use the same platformdirs call)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("spheroseg", appauthor=False))
