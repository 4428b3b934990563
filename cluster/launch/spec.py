"""What cluster to run: a frozen, JSON-round-trippable description that every launcher takes.

One spec covers the four backends; the fields a backend does not use are ignored by it::

    ClusterSpec()                                              # local, one worker per core (or per GPU)
    ClusterSpec(workers=2, gpus=True)                          # local, two GPU workers if two GPUs exist
    ClusterSpec(backend="address", address="tls://head:8786", tls=TlsFiles(ca, cert, key))
    ClusterSpec(backend="ssh", ssh=SshOptions(hosts=("head", "gpu1", "gpu2")), gpus=True)
    ClusterSpec(backend="slurm", workers=4, gpus=True, slurm=SlurmOptions(partition="gpu"))

A spec is validated when it is made, so a launcher never starts half a cluster from a bad one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

from cluster.exceptions import ClusterSpecError

__all__ = ["BACKENDS", "Backend", "ClusterSpec", "SlurmOptions", "SshOptions", "TlsFiles"]

Backend = Literal["local", "address", "ssh", "slurm"]
BACKENDS: tuple[str, ...] = get_args(Backend)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS connection to the scheduler (``tls://`` addresses)."""

    ca_file: str
    cert: str
    key: str | None = None


@dataclass(frozen=True)
class SshOptions:
    """Hosts reached over SSH. The first runs the scheduler, the others one worker per GPU (or one).

    A host may say how many GPUs it has, ``"gpu1:4"``; otherwise ``gpus_per_host`` applies when the
    spec asks for GPUs.
    """

    hosts: tuple[str, ...] = ()
    username: str | None = None
    port: int = 22
    known_hosts: str | None = None
    """Path of a known_hosts file; ``None`` uses the user's own (``~/.ssh/known_hosts``)."""
    client_keys: tuple[str, ...] = ()
    remote_python: str | None = None
    """Python on the remote hosts (with this package installed); default: the same path as here."""
    gpus_per_host: int = 1


@dataclass(frozen=True)
class SlurmOptions:
    """A SLURM partition: one job per worker, each with its GPUs, retiring before the wall time ends."""

    partition: str | None = None
    account: str | None = None
    walltime: str = "01:00:00"
    cores: int = 4
    memory: str = "16GB"
    gpus_per_job: int = 1
    lifetime: str | None = None
    """Worker lifetime; default: the wall time minus ``lifetime_stagger`` and a 5-minute margin."""
    lifetime_stagger: str = "4m"
    job_extra: tuple[str, ...] = ()
    """More ``#SBATCH`` directives, e.g. ``("--constraint=a100",)``."""
    prologue: tuple[str, ...] = ()
    """Shell lines run before the worker starts, e.g. ``("module load cuda/12.4",)``."""
    python: str | None = None
    log_directory: str | None = None


@dataclass(frozen=True)
class ClusterSpec:
    """A cluster to launch or reach. ``workers=None`` sizes a local cluster to the machine."""

    backend: Backend = "local"
    workers: int | None = None
    gpus: bool = False
    """Give each worker one GPU (pinned, ``GPU=1`` resource); local: one worker per GPU found."""
    gpu_devices: tuple[str, ...] = ()
    """Device ids to use instead of detecting them (``CUDA_VISIBLE_DEVICES`` values; tests use fakes)."""
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    minimum: int | None = None
    maximum: int | None = None
    """With both set, the cluster scales itself between them (adaptive)."""
    address: str | None = None
    """The existing scheduler, for the ``address`` backend."""
    tls: TlsFiles | None = None
    host: str = "127.0.0.1"
    """Where a scheduler we start listens (local, slurm); ``0.0.0.0`` to accept other machines."""
    scheduler_port: int = 0
    dashboard_port: int = 0
    ssh: SshOptions | None = None
    slurm: SlurmOptions | None = None
    env: tuple[tuple[str, str], ...] = field(default=())
    """Environment variables set in every worker (e.g. ``SPHEROSEG_S3_ENDPOINT_URL``)."""
    worker_deaths: int = 3
    """Deaths of workers running a task after which the task fails (Dask's allowed-failures + 1)."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ClusterSpecError(f"backend {self.backend!r} is not one of: {', '.join(BACKENDS)}")
        if self.workers is not None and self.workers < 0:
            raise ClusterSpecError(f"workers must be 0 or more, not {self.workers}")
        if self.worker_deaths < 1:
            raise ClusterSpecError(f"worker_deaths must be at least 1, not {self.worker_deaths}")
        if self.threads_per_worker < 1:
            raise ClusterSpecError(f"threads_per_worker must be at least 1, not {self.threads_per_worker}")
        if (self.minimum is None) != (self.maximum is None):
            raise ClusterSpecError("adaptive scaling needs both a minimum and a maximum")
        if self.minimum is not None and self.maximum is not None and not 0 <= self.minimum <= self.maximum:
            raise ClusterSpecError(f"adaptive range {self.minimum}..{self.maximum} is not 0 <= min <= max")
        if self.backend == "address" and not self.address:
            raise ClusterSpecError("the 'address' backend needs the scheduler's address (--scheduler ADDR)")
        if self.backend == "ssh" and (self.ssh is None or len(self.ssh.hosts) < 2):
            raise ClusterSpecError(
                "the 'ssh' backend needs at least two hosts: the scheduler's, then one or more workers' "
                "(repeat the first host to run a worker next to the scheduler)"
            )
        if self.address and self.address.startswith("tls://") and self.tls is None:
            raise ClusterSpecError(f"{self.address} is a TLS address: give the CA, certificate and key files")

    @property
    def adaptive(self) -> bool:
        return self.minimum is not None and self.maximum is not None

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def scheduler_options(self) -> dict[str, Any]:
        """Options of a scheduler we start (host, ports, how many worker deaths a task survives)."""
        return {
            "host": self.host,
            "port": self.scheduler_port,
            "dashboard_address": f"{self.host}:{self.dashboard_port}",
            "allowed_failures": self.worker_deaths - 1,
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterSpec:
        """Rebuild a spec from :meth:`to_json`'s output (lists back to tuples, nested options back)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ClusterSpecError(f"unknown cluster spec field(s): {', '.join(unknown)}")
        values = dict(data)
        for name, kind in (("tls", TlsFiles), ("ssh", SshOptions), ("slurm", SlurmOptions)):
            if values.get(name) is not None:
                values[name] = kind(**_tuples(values[name]))
        values["gpu_devices"] = tuple(str(d) for d in values.get("gpu_devices", ()))
        values["env"] = tuple((str(k), str(v)) for k, v in values.get("env", ()))
        try:
            return cls(**values)
        except TypeError as exc:
            raise ClusterSpecError(f"bad cluster spec: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> ClusterSpec:
        return cls.from_dict(json.loads(text))


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
