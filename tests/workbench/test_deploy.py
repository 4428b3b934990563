"""Deploying a cluster from the desktop: the form's command line is ``spheroseg cluster deploy``'s own, it
runs for real, and the offline server is pointed at what it deployed (a real Dask scheduler and worker,
started here as processes; no SSH server or SLURM exists on the test machines, so those backends are
checked up to where they reach the network)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spheroseg_testing.dask_cluster import running_scheduler
from tests.server.processes import disc_png
from tests.workbench.cluster_support import NO_POLL, until
from workbench.clusters import ClusterModel, ClusterState
from workbench.deploy import (
    DeployError,
    DeployForm,
    deploy_command,
    run_deploy,
    stop_deployed,
    use_scheduler,
)
from workbench.jobs import follow_job, start_segmentation
from workbench.uploads import import_files
from workbench.workspace import Workspace, open_offline

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

SSH_FORM = DeployForm(
    backend="ssh",
    workers=2,
    gpus=True,
    threads_per_worker=2,
    memory_limit="8GB",
    adapt=(1, 4),
    ssh_hosts=("head", "gpu1:4", "gpu2:4"),
    ssh_user="ana",
    ssh_port=2222,
    ssh_keys=("~/.ssh/id_ed25519",),
    known_hosts="~/.ssh/known_hosts",
    remote_python="/opt/spheroseg/bin/python",
    env=("OMP_NUM_THREADS=1",),
    timeout=30,
)
SLURM_FORM = DeployForm(
    backend="slurm",
    workers=8,
    gpus=True,
    host="0.0.0.0",
    partition="gpu",
    account="lab42",
    walltime="04:00:00",
    job_cores=8,
    job_memory="32GB",
    gpus_per_job=2,
    job_extra=("--constraint=a100",),
    prologue=("module load cuda/12.4",),
)


def _environment(tmp_path: Path) -> dict[str, str]:
    kept = {name: value for name, value in os.environ.items() if not name.startswith("SPHEROSEG_")}
    return {
        **kept,
        "SPHEROSEG_PASSWORD_MEMORY_KIB": "1024",
        "SPHEROSEG_CLUSTER_WORKERS": "1",
        "SPHEROSEG_CLUSTER_STATE": str(tmp_path / "cluster.json"),
    }


@pytest.fixture
async def offline(tmp_path: Path) -> AsyncIterator[Workspace]:
    workspace = await open_offline(
        tmp_path / "data", cache_dir=tmp_path / "cache", environment=_environment(tmp_path)
    )
    try:
        yield workspace
    finally:
        await workspace.close()


def test_the_form_speaks_the_deploy_command_s_own_options() -> None:
    help_text = subprocess.run(
        [*deploy_command(DeployForm())[:5], "--help"], capture_output=True, text=True, check=True
    ).stdout
    for form in (SSH_FORM, SLURM_FORM):
        options = {arg.split("=")[0] for arg in form.arguments() if arg.startswith("--")}
        assert options and options <= set(re.findall(r"--[a-z-]+", help_text))
    assert SSH_FORM.arguments()[:2] == ["--backend", "ssh"]
    assert "--ssh-host head --ssh-host gpu1:4 --ssh-host gpu2:4" in " ".join(SSH_FORM.arguments())
    assert "--partition gpu --account lab42 --walltime 04:00:00" in " ".join(SLURM_FORM.arguments())
    assert deploy_command(SSH_FORM)[:5] == [sys.executable, "-m", "cluster.cli", "cluster", "deploy"]


def test_the_form_names_what_to_correct() -> None:
    assert SSH_FORM.problems() == {} and SLURM_FORM.problems() == {}
    wrong = DeployForm(backend="ssh", ssh_hosts=("head",), memory_limit="lots", env=("no equals",))
    assert set(wrong.problems()) == {"ssh_hosts", "memory_limit", "env"}
    assert set(DeployForm(backend="slurm", walltime="4 hours").problems()) == {"walltime"}
    assert set(DeployForm(backend="address", scheduler="head").problems()) == {"scheduler"}


async def test_an_ssh_deploy_that_cannot_connect_says_why(tmp_path: Path) -> None:
    lines: list[str] = []
    # nothing listens on port 1: the real command runs until the SSH connection is refused
    form = DeployForm(backend="ssh", ssh_hosts=("127.0.0.1", "127.0.0.1"), ssh_port=1, timeout=60)
    with pytest.raises(DeployError, match="Connect call failed") as failed:
        await run_deploy(form, _environment(tmp_path), lines.append)
    assert failed.value.output == lines and any("did not start" in line for line in lines)
    assert not (tmp_path / "cluster.json").exists()  # nothing recorded as deployed


async def test_the_offline_server_runs_jobs_on_the_deployed_scheduler(
    offline: Workspace, tmp_path: Path
) -> None:
    model = ClusterModel(offline, poll_seconds=NO_POLL)
    model.watch()
    try:
        await until(model, lambda view: view.state is ClusterState.STOPPED)
        url = offline.url
        with running_scheduler(tmp_path / "dask") as scheduler:
            form = DeployForm(backend="address", scheduler=scheduler.address)
            address = await run_deploy(form, offline.offline.environment if offline.offline else {})
            assert address == scheduler.address
            await use_scheduler(offline, "deployed")
            assert offline.url == url  # same server address: every view carries on

            # the live channel reconnected by itself, and the model read the status again
            remote = await until(
                model, lambda view: view.state is ClusterState.RUNNING and not view.launched_here
            )
            assert (remote.address, remote.workers, remote.launched_here) == (scheduler.address, 1, False)
            assert [worker.name for worker in remote.worker_list] == ["remote-0"]
            assert remote.dashboard is not None and remote.dashboard.startswith("http://127.0.0.1:")
            assert model.control_refusal is not None and scheduler.address in model.control_refusal

            # and the server's jobs run there
            (tmp_path / "well.png").write_bytes(disc_png(seed=3))
            project = (await offline.client.call("CreateProject", name="Plate"))["createProject"]["project"]
            await import_files(offline.client, project["id"], [tmp_path / "well.png"])
            job_id = await start_segmentation(offline.client, project["id"], method="classical")
            final = await follow_job(offline.client, offline.live, job_id, lambda _state: None)
            assert (final.status, final.done) == ("DONE", 1)

            await use_scheduler(offline, None)  # back to the server's own cluster
            own = await until(model, lambda view: view.location == "this server")
            assert own.state is ClusterState.STOPPED and own.launched_here
    finally:
        model.close()


async def test_a_cluster_deployed_here_runs_until_stopped_then_the_panel_says_unreachable(
    offline: Workspace, tmp_path: Path
) -> None:
    """The daemon path SSH and SLURM take too: ``deploy`` leaves a process keeping the cluster up."""
    assert offline.offline is not None
    environment = offline.offline.environment
    model = ClusterModel(offline, poll_seconds=NO_POLL)
    model.watch()
    try:
        address = await run_deploy(DeployForm(backend="local", workers=2), environment)
        assert address is not None and (tmp_path / "cluster.json").exists()
        await use_scheduler(offline, "deployed")
        deployed = await until(
            model, lambda view: view.state is ClusterState.RUNNING and not view.launched_here
        )
        assert (deployed.address, deployed.workers) == (address, 2)

        lines: list[str] = []
        await stop_deployed(environment, lines.append)
        assert any("stopped the cluster" in line for line in lines)
        await model.refresh()  # a named scheduler that went away has no event: the next reading says so
        assert model.view.state is ClusterState.UNREACHABLE and model.view.problem
        assert "deploy" in model.view.problem  # what to do: deploy again (or go back to this computer)
    finally:
        model.close()
        await use_scheduler(offline, None)
