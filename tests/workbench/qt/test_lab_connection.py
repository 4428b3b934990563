"""Connecting to a lab server from the start screen, against a real ``spheroseg server serve`` process
with a user made by ``spheroseg server create-user``: a wrong password and an unreachable server say what
to do, the right password opens the workspace and is remembered (the next start resumes without it), a
lost connection shows the banner until the server is back, and the session is renewed when due."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from spheroseg_testing.ports import free_port
from spheroseg_testing.server import SPHEROSEG
from tests.workbench.qt.conftest import Run
from tests.workbench.qt.windows import close, options_in, settings_in, shot, until
from workbench.api import ChannelState, LabClient, RateLimitedError
from workbench.qt.qt_main_window import QtMainWindow
from workbench.qt.qt_start_screen import lab_error_text
from workbench.tasks import Task
from workbench.workspace import Mode

PASSWORD = "spheroids-are-round"


@dataclass
class LabServer:
    """A lab server on a fixed port, so a restarted one is found where the window left it."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        kept = {name: value for name, value in os.environ.items() if not name.startswith("SPHEROSEG_")}
        return {**kept, "SPHEROSEG_DATA_DIR": str(self.folder), "SPHEROSEG_PASSWORD_MEMORY_KIB": "1024"}

    def start(self) -> None:
        with (self.folder / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [SPHEROSEG, "server", "serve", "--port", str(self.port)],
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for _ in range(600):
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, (self.folder / "server.log").read_text()[-2000:]
            subprocess.run(["sleep", "0.1"], check=True)
        raise AssertionError("the lab server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    server = LabServer(tmp_path_factory.mktemp("lab"), free_port())
    environment = server.environment()
    subprocess.run([SPHEROSEG, "server", "migrate"], env=environment, check=True, capture_output=True)
    subprocess.run(
        [SPHEROSEG, "server", "create-user", "ana", "--password-stdin"],
        env=environment,
        input=PASSWORD.encode(),
        check=True,
        capture_output=True,
    )
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.terminate()
        server.process.wait(30)


@pytest.fixture
def window(run: Run, tmp_path: Path, lab: LabServer) -> Iterator[QtMainWindow]:
    shown = QtMainWindow(options_in(tmp_path, server_url=lab.url), settings_in(tmp_path))
    shown.show()
    yield shown
    close(shown, run)


def _sign_in(qtbot: QtBot, run: Run, window: QtMainWindow, password: str) -> None:
    """Typed in, and Enter in the password field, as a user signs in."""
    screen = window.start_screen
    screen.username.setText("ana")
    screen.password.clear()
    qtbot.keyClicks(screen.password, password)
    qtbot.keyClick(screen.password, Qt.Key.Key_Return)
    run(until(lambda: screen.connect_button.isEnabled(), 30, "the answer"))


def test_a_wrong_password_says_so_and_the_right_one_opens_the_lab_workspace(
    qtbot: QtBot, run: Run, window: QtMainWindow, lab: LabServer, tmp_path: Path
) -> None:
    _sign_in(qtbot, run, window, "not-the-password")
    screen = window.start_screen
    assert screen.lab_error.isVisible() and "Wrong user name or password" in screen.lab_error.text()
    assert window.workspace is None
    run(shot(window, "start-screen-wrong-password"))

    _sign_in(qtbot, run, window, PASSWORD)
    run(until(lambda: window.workspace is not None, 30, "the lab workspace"))
    assert window.workspace is not None and window.workspace.mode is Mode.LAB
    assert (window.mode_label.text(), window.url_label.text()) == ("Lab server", lab.url)
    assert window.user_label.text() == "Signed in as ana"
    assert screen.password.text() == ""  # not kept in the window
    assert settings_in(tmp_path).recent_servers() == [lab.url]
    saved = window.sessions.token_for(lab.url)
    assert saved is not None and saved.username == "ana"


def test_an_unreachable_server_says_what_to_do(qtbot: QtBot, run: Run, window: QtMainWindow) -> None:
    window.start_screen.url_box.setEditText(f"http://127.0.0.1:{free_port()}")
    _sign_in(qtbot, run, window, PASSWORD)
    text = window.start_screen.lab_error.text()
    assert text.startswith("No answer from http://127.0.0.1:") and "network" in text
    assert lab_error_text(RateLimitedError("slow down", "RATE_LIMITED", {"retryAfterSeconds": 30}), "x") == (
        "Too many sign-in attempts: wait 30 s, then try again."
    )


def test_a_saved_session_is_resumed_without_the_password_and_renewed_when_due(
    qtbot: QtBot, run: Run, window: QtMainWindow, lab: LabServer, tmp_path: Path
) -> None:
    _sign_in(qtbot, run, window, PASSWORD)
    run(until(lambda: window.workspace is not None, 30, "the lab workspace"))
    close(window, run)

    again = QtMainWindow(options_in(tmp_path, server_url=lab.url), settings_in(tmp_path))
    again.show()
    try:
        screen = again.start_screen
        assert screen.saved_note.isVisible() and "no password needed" in screen.saved_note.text()
        assert screen.username.text() == "ana" and screen.password.text() == ""
        offered = [screen.url_box.itemText(i) for i in range(screen.url_box.count())]
        assert offered == [lab.url]  # the recent servers, each once
        qtbot.mouseClick(screen.connect_button, Qt.MouseButton.LeftButton)
        run(until(lambda: again.workspace is not None, 30, "the resumed workspace"))
        workspace = again.workspace
        assert workspace is not None and workspace.user.username == "ana"

        soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        workspace.user = replace(workspace.user, expires_at=soon)  # as if it had been open for 13 days
        again._on_renew_timer_timeout()
        run(until(lambda: workspace.user.expires_at != soon, 30, "the renewal"))
        saved = again.sessions.token_for(lab.url)
        assert saved is not None and saved.expires_at == workspace.user.expires_at
        left = dt.datetime.fromisoformat(saved.expires_at) - dt.datetime.now(dt.UTC)
        assert left > dt.timedelta(days=2)
    finally:
        close(again, run)


def test_a_lost_connection_shows_the_banner_until_the_server_is_back(
    qtbot: QtBot, run: Run, window: QtMainWindow, lab: LabServer
) -> None:
    _sign_in(qtbot, run, window, PASSWORD)
    run(until(lambda: window.workspace is not None, 30, "the lab workspace"))
    workspace = window.workspace
    assert workspace is not None
    created = run(workspace.client.call("CreateProject", name="Live"))["createProject"]

    async def follow(task: Task) -> None:  # as the gallery follows its project's events
        async for _ in workspace.live.subscribe("ProjectEvents", projectId=created["project"]["id"]):
            pass

    window.tasks.start("Following project Live", follow)
    run(until(lambda: workspace.live.state.state is ChannelState.CONNECTED, 30, "the live connection"))

    lab.kill()
    try:
        run(until(window.banner.isVisible, 30, "the banner"))
        assert "Connection lost" in window.banner.text.text()
        run(shot(window, "connection-lost-banner"))
    finally:
        lab.start()
    run(until(lambda: not window.banner.isVisible(), 60, "the banner to go"), 70)
    assert workspace.live.state.state is ChannelState.CONNECTED and window.workspace is workspace


def test_a_session_ended_on_the_server_asks_to_sign_in_again(
    qtbot: QtBot, run: Run, window: QtMainWindow, lab: LabServer
) -> None:
    _sign_in(qtbot, run, window, PASSWORD)
    run(until(lambda: window.workspace is not None, 30, "the lab workspace"))
    workspace = window.workspace
    assert workspace is not None
    created = run(workspace.client.call("CreateProject", name="Ended"))["createProject"]

    async def follow(task: Task) -> None:
        async for _ in workspace.live.subscribe("ProjectEvents", projectId=created["project"]["id"]):
            pass

    window.tasks.start("Following project Ended", follow)
    run(until(lambda: workspace.live.state.state is ChannelState.CONNECTED, 30, "the live connection"))

    async def sign_out_elsewhere() -> None:  # an admin ended the session, or it was used to log out
        async with LabClient(lab.url, token=workspace.user.token) as other:
            await other.logout()

    run(sign_out_elsewhere())
    run(until(window.banner.sign_in.isVisible, 30, "the sign-in offer"))  # the server ended the work
    assert "Signed out" in window.banner.text.text()
    run(shot(window, "signed-out-banner"))

    qtbot.mouseClick(window.banner.sign_in, Qt.MouseButton.LeftButton)
    run(until(lambda: window.stack.currentWidget() is window.start_screen, 30, "the start screen"))
    assert window.workspace is None and window.mode_label.text() == "Not connected"
    assert window.sessions.token_for(lab.url) is None  # the ended session is not offered again
