"""The offline server as the workbench runs it: a real ``spheroseg server serve --offline`` process on a
data folder of its own, signed into with its bootstrap token, reused by a second workbench, stopped, and
its failures reported with the server's own last log lines."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from workbench.api import LabClient
from workbench.offline import OfflineServer, OfflineServerError

pytestmark = pytest.mark.anyio


def _environment(**extra: str) -> dict[str, str]:
    """This environment without SPHEROSEG_* settings of the machine running the tests."""
    kept = {name: value for name, value in os.environ.items() if not name.startswith("SPHEROSEG_")}
    return {**kept, "SPHEROSEG_PASSWORD_MEMORY_KIB": "1024", **extra}


async def _me(url: str, bootstrap_token: str) -> str:
    async with LabClient(url) as client:
        signed_in = await client.exchange_bootstrap_token(bootstrap_token)
        me = await client.call("Me")
    assert me["me"]["username"] == signed_in.username
    return signed_in.role


async def test_start_sign_in_reuse_and_stop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = OfflineServer(data, environment=_environment())
    started = await first.start()
    try:
        assert started.url.startswith("http://127.0.0.1:") and not started.reused
        assert await _me(started.url, started.bootstrap_token) == "ADMIN"  # the user owns their machine
        assert (data / "server.lock").exists()

        second = OfflineServer(data, environment=_environment())
        reused = await second.start()
        assert (reused.url, reused.pid, reused.reused) == (started.url, started.pid, True)
        assert await _me(reused.url, reused.bootstrap_token) == "ADMIN"
        assert await second.stop() is None  # not its server to stop
        again = await OfflineServer(data, environment=_environment()).start()
        assert again.pid == started.pid  # still running
    finally:
        status = await first.stop()

    assert status == 0  # a clean shutdown, which removes the lock file
    assert not (data / "server.lock").exists()
    assert first.log_path == data / "server.log" and first.log_tail()
    # the requests it answered are in its log, but not in what the crash panel shows of it
    assert '"POST /graphql HTTP/1.1" 200' in first.log_path.read_text()
    assert not any('"POST /graphql HTTP/1.1" 200' in line for line in first.log_tail(1000))


async def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    broken = _environment(SPHEROSEG_DATABASE_URL="nosuchdb://nowhere")
    server = OfflineServer(tmp_path / "data", environment=broken, ready_timeout=60)

    with pytest.raises(OfflineServerError, match="stopped while starting") as failed:
        await server.start()

    assert any("nosuchdb" in line or "database" in line.lower() for line in failed.value.log_tail), (
        failed.value.log_tail
    )


async def test_a_server_that_dies_is_noticed_with_its_exit_status(tmp_path: Path) -> None:
    server = OfflineServer(tmp_path / "data", environment=_environment())
    started = await server.start()
    os.kill(started.pid, 9)

    assert await server.wait() == -9
    restarted = await server.start()  # the stale lock file is taken over
    try:
        assert not restarted.reused and restarted.pid != started.pid
        assert restarted.url == started.url  # the same address: the workbench's session carries on
    finally:
        await server.stop()


async def test_a_server_whose_port_was_taken_meanwhile_comes_back_on_another(tmp_path: Path) -> None:
    server = OfflineServer(tmp_path / "data", environment=_environment())
    started = await server.start()
    os.kill(started.pid, 9)
    await server.wait()
    port = int(started.url.rsplit(":", 1)[1])
    with socket.socket() as squatter:  # another program took the port while the crash panel showed
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        restarted = await server.start()
        try:
            assert restarted.url != started.url
            assert await _me(restarted.url, restarted.bootstrap_token) == "ADMIN"
        finally:
            await server.stop()


async def test_a_restart_with_new_settings_is_no_exit_to_whoever_waits_for_one(tmp_path: Path) -> None:
    """The window waits for the server's exit to show its crash panel; moving its jobs to a deployed
    cluster restarts the server on purpose, which must not look like a crash."""
    server = OfflineServer(tmp_path / "data", environment=_environment())
    started = await server.start()
    exited = asyncio.ensure_future(server.wait())
    try:
        restarted = await server.restart(_environment(SPHEROSEG_CLUSTER_WORKERS="1"))
        await asyncio.sleep(0.5)
        assert not exited.done() and restarted.url == started.url
        os.kill(restarted.pid, 9)  # a real death of the new one is an exit
        assert await asyncio.wait_for(exited, 30) == -9
    finally:
        exited.cancel()
        await server.stop()
