"""The ``slurm`` backend: workers as SLURM jobs through dask-jobqueue; the scheduler runs here.

Each job asks for ``--gres=gpu:N`` and runs one worker per GPU (``GPU=1`` each, pinned by
:mod:`cluster.launch.gpu_worker`), or one CPU worker. Workers get a ``--lifetime`` shorter than the wall
time, staggered so they do not all leave at once: they retire gracefully (their work moves) before SLURM
kills the job, and the cluster submits replacement jobs to keep the count.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from cluster.exceptions import ClusterSpecError
from cluster.launch.deployment import Deployment
from cluster.launch.gpus import GPU_RESOURCE
from cluster.launch.spec import ClusterSpec, SlurmOptions
from cluster.launch.tuning import worker_config_environment

__all__ = [
    "DEFAULT_MARGIN_S",
    "default_lifetime",
    "parse_duration",
    "parse_walltime",
    "slurm_cluster_options",
    "start",
]

DEFAULT_MARGIN_S = 300
"""Seconds between a worker's latest retirement and the end of its job's wall time."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_walltime(text: str) -> int:
    """Seconds in a SLURM time: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise ClusterSpecError(f"wall time {text!r} is not a SLURM time such as 01:00:00 or 1-12:00:00")
    days, first, second, third = match.groups()
    numbers = [int(v) for v in (first, second, third) if v is not None]
    if days is not None:
        hours, minutes, seconds = [*numbers, 0, 0][:3]
        return int(days) * 86400 + hours * 3600 + minutes * 60 + seconds
    if len(numbers) == 1:
        return numbers[0] * 60
    if len(numbers) == 2:
        return numbers[0] * 60 + numbers[1]
    return numbers[0] * 3600 + numbers[1] * 60 + numbers[2]


def parse_duration(text: str) -> int:
    """Seconds in a Dask duration such as ``4m``, ``90s``, ``1h``."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text.strip())
    if not match:
        raise ClusterSpecError(f"duration {text!r} is not a number with s, m, h or d")
    return int(float(match.group(1)) * _UNITS[match.group(2) or "s"])


def default_lifetime(options: SlurmOptions) -> int:
    """Worker lifetime in seconds: wall time minus the stagger and a safety margin."""
    walltime = parse_walltime(options.walltime)
    lifetime = walltime - parse_duration(options.lifetime_stagger) - DEFAULT_MARGIN_S
    if lifetime < 60:
        raise ClusterSpecError(
            f"wall time {options.walltime} leaves workers under a minute after the "
            f"{options.lifetime_stagger} stagger and a {DEFAULT_MARGIN_S} s margin; ask for more"
        )
    return lifetime


def slurm_cluster_options(spec: ClusterSpec) -> dict[str, Any]:
    """Keyword arguments of ``dask_jobqueue.SLURMCluster`` for ``spec``."""
    options = spec.slurm or SlurmOptions()
    env = {**worker_config_environment(), **spec.environment}
    lifetime = parse_duration(options.lifetime) if options.lifetime else default_lifetime(options)
    worker_args = ["--lifetime", f"{lifetime}s", "--lifetime-stagger", options.lifetime_stagger]
    directives = list(options.job_extra)
    kwargs: dict[str, Any] = {
        "cores": options.cores,
        "memory": options.memory,
        "walltime": options.walltime,
        "queue": options.partition,
        "account": options.account,
        "scheduler_options": spec.scheduler_options,
        "job_script_prologue": list(options.prologue)
        + [f"export {k}={shlex.quote(v)}" for k, v in env.items()],
        "asynchronous": True,
    }
    if spec.gpus:
        if options.gpus_per_job < 1:
            raise ClusterSpecError("a GPU job needs gpus_per_job >= 1")
        directives.append(f"--gres=gpu:{options.gpus_per_job}")
        worker_args += ["--resources", f"{GPU_RESOURCE}=1"]
        kwargs["processes"] = options.gpus_per_job
        kwargs["worker_command"] = "cluster.launch.gpu_worker"
    else:
        kwargs["processes"] = 1
    kwargs["worker_extra_args"] = worker_args
    kwargs["job_extra_directives"] = directives
    if options.python:
        kwargs["python"] = options.python
    if options.log_directory:
        kwargs["log_directory"] = options.log_directory
    return kwargs


async def start(spec: ClusterSpec) -> Deployment:
    """Start the scheduler here and submit jobs for ``spec.workers`` workers (or adapt)."""
    try:
        from dask_jobqueue.slurm import SLURMCluster
    except ImportError as exc:
        raise ClusterSpecError("the 'slurm' backend needs dask-jobqueue: pip install dask-jobqueue") from exc
    cluster = await SLURMCluster(**slurm_cluster_options(spec))
    deployment = Deployment.started(spec, cluster, replace_retired=True)
    if not spec.adaptive:
        # Workers leave at the end of their lifetime: adapting to a fixed count submits replacements.
        deployment.adapt(spec.workers or 1, spec.workers or 1)
    return deployment
