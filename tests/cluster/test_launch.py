"""Launchers: specs and state files, GPU detection and pinning, and the commands SSH and SLURM would run.

What cannot run here (SSH hosts, a SLURM partition) is checked through the commands and job scripts the
launchers generate, and those commands are then run on this machine: the SSH cluster through a stand-in
SSH connection that executes its commands locally, the SLURM job's worker line against a real scheduler.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest

from cluster.exceptions import ClusterNotFoundError, ClusterSpecError
from cluster.launch import ClusterSpec, SlurmOptions, SshOptions, TlsFiles, connect, launch
from cluster.launch.deployment import close_client, rpc
from cluster.launch.gpus import detect_gpus, parse_nvidia_smi, parse_visible_devices
from cluster.launch.slurm import default_lifetime, parse_walltime, slurm_cluster_options
from cluster.launch.ssh import parse_host, ssh_cluster_specs
from cluster.launch.state import ClusterState, clear_state, load_state, save_state
from tests.cluster.cluster_fakes import env_var

# ---- specs, state, GPU detection: no processes -------------------------------------------------------


def test_a_spec_survives_json_and_bad_specs_say_what_is_wrong() -> None:
    spec = ClusterSpec(
        backend="ssh",
        gpus=True,
        ssh=SshOptions(hosts=("head", "gpu1:4"), client_keys=("~/.ssh/id",)),
        tls=TlsFiles("ca.pem", "cert.pem"),
        env=(("SPHEROSEG_S3_ENDPOINT_URL", "http://s3:9000"),),
        minimum=1,
        maximum=4,
    )
    assert ClusterSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ClusterSpecError, match="at least two hosts"):
        ClusterSpec(backend="ssh", ssh=SshOptions(hosts=("head",)))
    with pytest.raises(ClusterSpecError, match="needs the scheduler's address"):
        ClusterSpec(backend="address")
    with pytest.raises(ClusterSpecError, match="TLS address"):
        ClusterSpec(backend="address", address="tls://head:8786")
    with pytest.raises(ClusterSpecError, match="both a minimum and a maximum"):
        ClusterSpec(minimum=1)
    with pytest.raises(ClusterSpecError, match="unknown cluster spec field"):
        ClusterSpec.from_dict({"backend": "local", "wokers": 2})


def test_the_state_file_round_trips_and_a_missing_one_says_how_to_deploy(tmp_path: Path) -> None:
    path = tmp_path / "state" / "cluster.json"
    with pytest.raises(ClusterNotFoundError, match="spheroseg cluster deploy"):
        load_state(path)
    state = ClusterState("tcp://127.0.0.1:8786", ClusterSpec(workers=2), pid=123, log_file="x.log")
    save_state(state, path)
    assert load_state(path) == state
    clear_state(path, pid=999)  # another daemon's record is left alone
    assert path.exists()
    clear_state(path, pid=123)
    assert not path.exists()
    path.write_text("{not json")
    with pytest.raises(ClusterNotFoundError, match="damaged"):
        load_state(path)


@pytest.mark.skipif(sys.platform != "linux", reason="XDG_DATA_HOME is the Linux data folder")
def test_a_cluster_recorded_where_earlier_versions_kept_it_is_still_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPHEROSEG_CLUSTER_STATE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    state = ClusterState("tcp://127.0.0.1:8786", ClusterSpec(workers=2), pid=123)
    save_state(state, tmp_path / "spheroseg" / "cluster.json")  # the path earlier versions wrote
    assert load_state() == state
    clear_state()
    assert not (tmp_path / "spheroseg" / "cluster.json").exists()


def test_gpus_come_from_cuda_visible_devices_or_nvidia_smi() -> None:
    assert parse_visible_devices("0,2") == ("0", "2")
    assert parse_visible_devices("") == ()
    assert parse_visible_devices("-1") == ()
    assert parse_nvidia_smi("0\n1\n\n") == ("0", "1")
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "3"}) == ("3",)
    assert detect_gpus({"PATH": ""}) == ()  # no nvidia-smi on this PATH: no GPUs


def test_slurm_lifetime_leaves_time_before_the_wall_time() -> None:
    assert parse_walltime("01:00:00") == 3600
    assert parse_walltime("1-12:00:00") == 129600
    assert parse_walltime("90") == 5400
    assert parse_walltime("30:00") == 1800
    assert default_lifetime(SlurmOptions(walltime="01:00:00", lifetime_stagger="4m")) == 3600 - 240 - 300
    with pytest.raises(ClusterSpecError, match="under a minute"):
        default_lifetime(SlurmOptions(walltime="00:05:00"))


def test_ssh_specs_give_each_gpu_its_own_pinned_worker() -> None:
    assert parse_host("gpu1:4", 1) == ("gpu1", 4)
    assert parse_host("gpu1", 2) == ("gpu1", 2)
    spec = ClusterSpec(
        backend="ssh", gpus=True, ssh=SshOptions(hosts=("head", "gpu1:2", "gpu2"), username="lab")
    )
    scheduler, workers = ssh_cluster_specs(spec)
    assert scheduler["options"]["address"] == "head"
    assert scheduler["options"]["kwargs"]["allowed_failures"] == 2
    pinned = {name: w["options"]["kwargs"]["env"]["CUDA_VISIBLE_DEVICES"] for name, w in workers.items()}
    assert pinned == {"gpu1-0-gpu0": "0", "gpu1-0-gpu1": "1", "gpu2-1-gpu0": "0"}
    assert all(w["options"]["kwargs"]["resources"] == {"GPU": 1} for w in workers.values())
    assert all(w["options"]["connect_options"]["username"] == "lab" for w in workers.values())
    cpu = ClusterSpec(backend="ssh", workers=3, ssh=SshOptions(hosts=("head", "node")))
    assert len(ssh_cluster_specs(cpu)[1]) == 3


# ---- real processes ------------------------------------------------------------------------------------


async def _worker_facts(client: Any) -> dict[str, tuple[str | None, dict[str, float]]]:
    env = await client.run(env_var, "CUDA_VISIBLE_DEVICES")
    workers = (await rpc(client).identity())["workers"]
    return {str(workers[a]["name"]): (env[a], workers[a]["resources"]) for a in workers}


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_local_gpu_workers_are_pinned_one_per_device_with_fake_gpus() -> None:
    async def main() -> tuple[dict[str, Any], int, set[int]]:
        deployment = await launch(ClusterSpec(gpus=True, gpu_devices=("0", "1")))
        client = await connect(deployment.scheduler_address)
        try:
            facts = await _worker_facts(client)
            workers = (await rpc(client).identity())["workers"].values()
            limits = {int(worker["memory_limit"]) for worker in workers}
            trim = await client.run(env_var, "MALLOC_TRIM_THRESHOLD_")
            assert set(trim.values()) == {None}, "workers keep glibc's adaptive malloc (see tuning.py)"
            asked = await deployment.scale(5)  # there are only two GPUs
            return facts, asked, limits
        finally:
            await close_client(client)
            await deployment.close()

    facts, asked, limits = asyncio.run(main())
    assert facts == {"gpu-0": ("0", {"GPU": 1}), "gpu-1": ("1", {"GPU": 1})}
    assert asked == 2
    assert limits == {psutil.virtual_memory().total // 2}  # the machine's memory shared by its GPU workers


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_local_cluster_deployed_with_a_range_starts_its_minimum_and_stays_within_its_maximum() -> None:
    async def main() -> tuple[int, int]:
        deployment = await launch(ClusterSpec(gpus=True, gpu_devices=("0", "1", "2"), minimum=1, maximum=2))
        client = await connect(deployment.scheduler_address)
        try:
            await client.wait_for_workers(1, timeout=30)
            adaptive = deployment.cluster._adaptive  # what Dask's adapt() left running
            return adaptive.minimum, adaptive.maximum
        finally:
            await close_client(client)
            await deployment.close()

    assert asyncio.run(main()) == (1, 2)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_the_slurm_job_script_asks_for_gpus_and_its_worker_line_starts_pinned_workers(tmp_path: Path) -> None:
    from dask_jobqueue.slurm import SLURMCluster

    options = SlurmOptions(partition="gpu", account="lab", gpus_per_job=2, prologue=("module load cuda",))
    spec = ClusterSpec(backend="slurm", gpus=True, workers=4, slurm=options)

    async def scripts() -> tuple[str, str]:
        gpu_cluster = SLURMCluster(**slurm_cluster_options(spec))
        cpu_cluster = SLURMCluster(**slurm_cluster_options(ClusterSpec(backend="slurm")))
        try:
            return gpu_cluster.job_script(), cpu_cluster.job_script()
        finally:
            await gpu_cluster.close()
            await cpu_cluster.close()

    gpu_script, cpu_script = asyncio.run(scripts())
    for line in (
        "#SBATCH -p gpu",
        "#SBATCH -A lab",
        "#SBATCH -t 01:00:00",
        "#SBATCH --gres=gpu:2",
        "module load cuda",
        """export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON='{"MALLOC_TRIM_THRESHOLD_": None}'""",
    ):
        assert line in gpu_script
    worker_line = gpu_script.strip().splitlines()[-1]
    assert " -m cluster.launch.gpu_worker " in worker_line
    for part in ("--resources GPU=1", "--lifetime 3060s", "--lifetime-stagger 4m", "--nthreads 2"):
        assert part in worker_line
    assert "--gres" not in cpu_script and "distributed.cli.dask_worker" in cpu_script
    assert "--lifetime 3060s" in cpu_script

    async def run_worker_line() -> dict[str, Any]:
        from distributed import Scheduler

        async with Scheduler(host="127.0.0.1", port=0, dashboard_address=":0") as scheduler:
            argv = shlex.split(
                worker_line.replace("tcp://<insert-scheduler-address-here>:8786", scheduler.address)
            )
            argv[argv.index("--name") + 1] = "job7"
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": "3,5"}  # what SLURM shows a job with two GPUs
            process = subprocess.Popen(argv, env=env, start_new_session=True)
            try:
                client = await connect(scheduler.address)
                await client.wait_for_workers(2, timeout=40)
                facts = await _worker_facts(client)
                await close_client(client)
                return facts
            finally:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)

    facts = asyncio.run(run_worker_line())
    assert facts == {"job7-0": ("3", {"GPU": 1}), "job7-1": ("5", {"GPU": 1})}


class _LocalProcess:
    """What asyncssh's create_process returns, for a command run on this machine."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        self.stderr = self
        self._drain = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self._process.stderr is not None
        async for line in self._process.stderr:
            self._lines.put_nowait(line.decode())
        self._lines.put_nowait("")

    async def readline(self) -> str:
        return await self._lines.get()

    def kill(self) -> None:
        if self._process.returncode is None:
            os.killpg(self._process.pid, signal.SIGKILL)

    async def wait(self) -> None:
        self.kill()
        await self._process.wait()
        await self._drain


class _LocalConnection:
    """A stand-in SSH connection: runs the commands SSHCluster sends on this machine, and records them."""

    commands: ClassVar[list[tuple[str, str]]] = []
    processes: ClassVar[list[_LocalProcess]] = []

    def __init__(self, host: str) -> None:
        self.host = host

    async def run(self, command: str) -> Any:
        process = await asyncio.create_subprocess_shell(command, stdout=subprocess.DEVNULL)
        return type("Result", (), {"exit_status": await process.wait()})

    async def create_process(self, command: str) -> _LocalProcess:
        self.commands.append((self.host, command))
        process = await asyncio.create_subprocess_shell(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        self.processes.append(_LocalProcess(process))
        return self.processes[-1]

    def close(self) -> None:
        pass


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_the_ssh_backend_starts_pinned_gpu_workers_through_its_ssh_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncssh

    async def fake_connect(host: str, **options: Any) -> _LocalConnection:
        assert options == {"port": 22, "username": "lab"}
        return _LocalConnection(host)

    monkeypatch.setattr(asyncssh, "connect", fake_connect)
    _LocalConnection.commands = []
    _LocalConnection.processes = []
    ssh = SshOptions(hosts=("127.0.0.1", "127.0.0.1:2"), username="lab", remote_python=sys.executable)
    spec = ClusterSpec(backend="ssh", gpus=True, memory_limit="1GB", ssh=ssh)

    async def main() -> dict[str, Any]:
        deployment = await launch(spec)
        client = await connect(deployment.scheduler_address)
        try:
            await client.wait_for_workers(2, timeout=40)
            return await _worker_facts(client)
        finally:
            await close_client(client)
            await deployment.close()
            for process in _LocalConnection.processes:  # reap them while the loop still runs
                await process.wait()

    facts = asyncio.run(main())
    assert facts == {"127.0.0.1-0-gpu0": ("0", {"GPU": 1}), "127.0.0.1-0-gpu1": ("1", {"GPU": 1})}
    commands = [command for _, command in _LocalConnection.commands]
    assert "distributed.cli.dask_spec --spec" in commands[0] and '"allowed_failures": 2' in commands[0]
    assert all('"CUDA_VISIBLE_DEVICES": "' in command for command in commands[1:])


def _self_signed(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 that is its own CA (PEM cert, PEM key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spheroseg test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


@pytest.mark.timeout(60)
def test_an_existing_scheduler_is_reached_over_tls(tmp_path: Path) -> None:
    from distributed import Scheduler
    from distributed.security import Security

    cert, key = _self_signed(tmp_path)
    server = Security(
        tls_ca_file=cert, tls_scheduler_cert=cert, tls_scheduler_key=key, require_encryption=True
    )

    async def main() -> tuple[str, int]:
        async with Scheduler(
            security=server, protocol="tls", host="127.0.0.1", dashboard_address=":0"
        ) as sched:
            spec = ClusterSpec(backend="address", address=sched.address, tls=TlsFiles(cert, cert, key))
            deployment = await launch(spec)
            client = await connect(deployment.scheduler_address, deployment.security)
            try:
                return deployment.scheduler_address, len((await rpc(client).identity())["workers"])
            finally:
                await close_client(client)

    address, workers = asyncio.run(main())
    assert address.startswith("tls://127.0.0.1:") and workers == 0
