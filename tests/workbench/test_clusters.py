"""The cluster as the desktop sees it, against a real offline server and its real local Dask cluster:
read once, then kept current by ``clusterEvents`` alone (the load poll is switched off here, so only
events can move the figures)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.workbench.cluster_support import NO_POLL, until
from workbench.api import ForbiddenError
from workbench.clusters import ClusterModel, ClusterState, ClusterView
from workbench.workspace import Workspace, open_lab, open_offline

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]


def _environment() -> dict[str, str]:
    kept = {name: value for name, value in os.environ.items() if not name.startswith("SPHEROSEG_")}
    return {**kept, "SPHEROSEG_PASSWORD_MEMORY_KIB": "1024", "SPHEROSEG_CLUSTER_WORKERS": "1"}


@pytest.fixture
async def offline(tmp_path: Path) -> AsyncIterator[Workspace]:
    workspace = await open_offline(
        tmp_path / "data", cache_dir=tmp_path / "cache", environment=_environment()
    )
    try:
        yield workspace
    finally:
        await workspace.close()


async def test_start_scale_and_stop_arrive_as_events(offline: Workspace) -> None:
    model = ClusterModel(offline, poll_seconds=NO_POLL)
    seen: list[ClusterView] = []
    model.changed.connect(seen.append)
    model.watch()
    try:
        stopped = await until(model, lambda view: view.state is not ClusterState.UNKNOWN)
        assert (stopped.state, stopped.workers, stopped.location) == (ClusterState.STOPPED, 0, "this server")
        assert stopped.launched_here and model.control_refusal is None  # the local user is an admin

        assert await model.start() is True
        running = await until(model, lambda view: view.state is ClusterState.RUNNING and view.workers == 1)
        assert running.dashboard is not None and running.dashboard.startswith("http://")
        assert [worker.status for worker in running.worker_list] == ["running"]

        assert await model.scale(2) == 2
        scaled = await until(model, lambda view: view.workers == 2 and len(view.worker_list) == 2)
        assert scaled.state is ClusterState.RUNNING

        assert await model.stop() is True
        ended = await until(model, lambda view: view.state is ClusterState.STOPPED)
        assert ended.workers == 0 and ended.dashboard is None
    finally:
        model.close()
    worker_counts = [view.workers for view in seen]
    assert 1 in worker_counts and 2 in worker_counts  # the figures moved through each step


async def test_a_member_sees_the_summary_but_may_not_scale(offline: Workspace, tmp_path: Path) -> None:
    password = "a long enough password"
    subprocess.run(
        [sys.executable, "-m", "cluster.cli", "server", "create-user", "ana", "--password-stdin"],
        input=password,
        text=True,
        check=True,
        capture_output=True,
        env={**_environment(), "SPHEROSEG_DATA_DIR": str(tmp_path / "data")},
    )
    admin = ClusterModel(offline, poll_seconds=NO_POLL)
    await admin.start(1)
    member_workspace = await open_lab(offline.url, "ana", password)
    member = ClusterModel(member_workspace, poll_seconds=NO_POLL)
    try:
        view = await member.refresh()
        assert (view.state, view.workers) == (ClusterState.RUNNING, 1)
        assert view.address is None and view.dashboard is None and view.worker_list == ()  # admins only
        assert member.control_refusal is not None and "administrator" in member.control_refusal
        with pytest.raises(ForbiddenError):
            await member.scale(3)  # the server enforces it, whatever a client offers
    finally:
        await member_workspace.close()
        await admin.stop()
