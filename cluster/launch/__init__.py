"""Launching Dask clusters for segmentation: one spec in, a running cluster with a scheduler address out.

Backends, each a small module with an async ``start(spec) -> Deployment``:

- ``local``: worker processes on this machine, one per core, or one per GPU pinned with
  ``CUDA_VISIBLE_DEVICES`` and offering ``GPU=1`` (:mod:`cluster.launch.local`);
- ``address``: an existing scheduler, TCP or TLS (:mod:`cluster.launch.address`);
- ``ssh``: Dask's SSH cluster, one worker per GPU on each host (:mod:`cluster.launch.ssh`);
- ``slurm``: dask-jobqueue jobs with ``--gres=gpu:N`` and staggered worker lifetimes
  (:mod:`cluster.launch.slurm`).

``spheroseg cluster deploy`` runs a deployment in a detached daemon (:mod:`cluster.launch.daemon`) and
records it in a state file (:mod:`cluster.launch.state`) so later commands find it::

    deployment = await launch(ClusterSpec(workers=2))
    ...  # Client(deployment.scheduler_address)
    await deployment.scale(1)
    await deployment.close()
"""

from __future__ import annotations

from importlib import import_module

from cluster.launch.deployment import Deployment, Launcher, connect, security_for
from cluster.launch.spec import BACKENDS, Backend, ClusterSpec, SlurmOptions, SshOptions, TlsFiles

__all__ = [
    "BACKENDS",
    "Backend",
    "ClusterSpec",
    "Deployment",
    "Launcher",
    "SlurmOptions",
    "SshOptions",
    "TlsFiles",
    "connect",
    "launch",
    "launcher_for",
    "security_for",
]


def launcher_for(backend: str) -> Launcher:
    """The start function of ``backend`` (its module is imported only now)."""
    module = import_module(f"cluster.launch.{backend}")
    start: Launcher = module.start
    return start


async def launch(spec: ClusterSpec) -> Deployment:
    """Start (or reach) the cluster ``spec`` describes."""
    return await launcher_for(spec.backend)(spec)
