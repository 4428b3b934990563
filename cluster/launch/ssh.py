"""The ``ssh`` backend: a scheduler on the first host and workers on the others, started over SSH.

This is Dask's ``SSHCluster`` with one refinement: on a GPU host every GPU gets its own worker process,
pinned with ``CUDA_VISIBLE_DEVICES`` and offering ``GPU=1``. A host names its GPU count as ``gpu1:4``;
otherwise ``SshOptions.gpus_per_host`` applies. Without GPUs each worker host runs ``spec.workers`` worker
processes (default 1), each in its own SSH session, so scaling down retires single workers. The remote
hosts need Python with this package installed (``remote_python``).
"""

from __future__ import annotations

from typing import Any

from cluster.exceptions import ClusterSpecError
from cluster.launch.deployment import Deployment
from cluster.launch.gpus import gpu_worker_env, gpu_worker_resources
from cluster.launch.spec import ClusterSpec, SshOptions
from cluster.launch.tuning import apply_worker_config

__all__ = ["parse_host", "ssh_cluster_specs", "start"]


def parse_host(entry: str, default_gpus: int) -> tuple[str, int]:
    """Split ``"host:4"`` into ``("host", 4)``; a bare host has ``default_gpus``."""
    host, sep, count = entry.rpartition(":")
    if not sep or not count.isdigit():
        return entry, default_gpus
    return host, int(count)


def _connect_options(ssh: SshOptions) -> dict[str, Any]:
    options: dict[str, Any] = {"port": ssh.port}
    if ssh.username:
        options["username"] = ssh.username
    if ssh.known_hosts:
        options["known_hosts"] = ssh.known_hosts
    if ssh.client_keys:
        options["client_keys"] = list(ssh.client_keys)
    return options


def ssh_cluster_specs(spec: ClusterSpec) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The scheduler spec and worker specs (Dask ``SpecCluster`` form) that ``spec`` asks for."""
    from distributed.deploy.ssh import Scheduler, Worker

    if spec.ssh is None or len(spec.ssh.hosts) < 2:
        raise ClusterSpecError("the 'ssh' backend needs a scheduler host and at least one worker host")
    ssh = spec.ssh
    connect = _connect_options(ssh)
    scheduler_host, _ = parse_host(ssh.hosts[0], 0)
    scheduler = {
        "cls": Scheduler,
        "options": {
            "address": scheduler_host,
            "connect_options": connect,
            "kwargs": {
                "port": spec.scheduler_port,
                "dashboard_address": f":{spec.dashboard_port}",
                "allowed_failures": spec.worker_deaths - 1,
            },
            "remote_python": ssh.remote_python,
        },
    }
    base: dict[str, Any] = {"nthreads": spec.threads_per_worker, "memory_limit": spec.memory_limit}
    if spec.env:
        base["env"] = spec.environment
    workers: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(ssh.hosts[1:]):
        host, gpus = parse_host(entry, ssh.gpus_per_host if spec.gpus else 0)
        if spec.gpus and gpus < 1:
            raise ClusterSpecError(f"host {host!r} has no GPUs to give workers (write it as {host}:N)")
        slots = [str(device) for device in range(gpus)] if spec.gpus else [None] * (spec.workers or 1)
        for slot, device in enumerate(slots):
            kwargs = dict(base)
            if device is not None:
                kwargs["env"] = {**base.get("env", {}), **gpu_worker_env(device)}
                kwargs["resources"] = gpu_worker_resources()
            name = f"{host}-{index}-gpu{device}" if device is not None else f"{host}-{index}-{slot}"
            kwargs["name"] = name
            workers[name] = {
                "cls": Worker,
                "options": {
                    "address": host,
                    "connect_options": connect,
                    "kwargs": kwargs,
                    "worker_class": "distributed.Nanny",
                    "remote_python": ssh.remote_python,
                    "name": name,
                },
            }
    return scheduler, workers


async def start(spec: ClusterSpec) -> Deployment:
    """Start the scheduler and workers over SSH and wait until the workers have joined."""
    try:
        import asyncssh  # noqa: F401
    except ImportError as exc:
        raise ClusterSpecError("the 'ssh' backend needs asyncssh: pip install asyncssh") from exc
    from distributed import SpecCluster

    scheduler, workers = ssh_cluster_specs(spec)
    apply_worker_config()  # the SSH commands carry this process's Dask config to the hosts
    cluster = await SpecCluster(  # type: ignore[no-untyped-call]
        workers, scheduler, name="SSHCluster", asynchronous=True
    )
    return Deployment(
        spec=spec,
        scheduler_address=cluster.scheduler_address,
        dashboard_link=cluster.dashboard_link,
        cluster=cluster,
        max_workers=len(workers),
    )
