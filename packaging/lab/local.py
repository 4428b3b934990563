"""The lab deployment of ``compose.yaml``, started on this machine from Debian and PyPI packages.

    python packaging/lab/local.py [--root DIR] [--workers N] [--admin NAME]

Containers cannot be pulled everywhere (not on the project's own machines, nor on its CI), so this starts
the same topology as processes on 127.0.0.1 and keeps it up until Ctrl+C (or SIGTERM), then takes it all
down again:

=================  ===================================================================================
PostgreSQL 15      Debian's, initdb + pg_ctl on a free port (:mod:`spheroseg_testing.postgres`)
S3 store           moto's S3 server (``moto_server``; no S3 server is packaged here), with the bucket
Dask scheduler     ``dask scheduler``, its /metrics on the HTTP port
Dask workers       ``dask worker`` x N (CPU here; compose gives each GPU its own), /metrics each
server replicas    ``spheroseg server serve`` x 2 on one database, store and scheduler
nginx edge         the same ``nginx/spheroseg.conf.template`` compose mounts, filled in for loopback
Prometheus         Debian's, with the jobs of ``prometheus.yml``, pointed at the processes above
=================  ===================================================================================

The replicas read ``.env.example`` (the production rules: production mode, a fixed secret key, no
introspection), with only the addresses, the data folders and the secret key replaced, so running this
also proves that file. Every process logs to ``<root>/logs/<name>.log``.
tests/packaging/test_lab_local.py drives :class:`LocalLab` from Python.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout: spheroseg_testing and cluster import
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import yaml  # noqa: E402

from cluster.launch.tuning import worker_config_environment  # noqa: E402
from spheroseg_testing import Postgres, free_port, nginx_command, start_postgres  # noqa: E402

__all__ = ["LocalLab", "Process", "read_env_file"]

BIN = Path(sys.executable).parent
BUCKET = "spheroseg-lab"


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a compose env file; comments and blank lines skipped."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@dataclass
class Process:
    """One service's process (in a session of its own, so its children go with it) and its log."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or the kernel's out-of-memory killer would."""
        self._signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 20.0) -> None:
        self._signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._signal(signal.SIGKILL)  # anything of its session that outlived it (nanny's workers)

    def _signal(self, number: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, number)


@dataclass
class LocalLab:
    """The topology, started by :meth:`start` and taken down by :meth:`stop` (or a ``with`` block)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="spheroseg-lab-")))
    workers: int = 2
    postgres: Postgres | None = None
    processes: list[Process] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def replicas(self) -> list[Process]:
        return [p for p in self.processes if p.name.startswith("server")]

    @property
    def dask_workers(self) -> list[Process]:
        return [p for p in self.processes if p.name.startswith("worker")]

    def url_of(self, name: str) -> str:
        return next(p.url for p in self.processes if p.name == name)

    @property
    def edge_url(self) -> str:
        return self.url_of("nginx")

    @property
    def prometheus_url(self) -> str:
        return self.url_of("prometheus")

    # -- up and down ------------------------------------------------------------------------------------

    def start(self) -> LocalLab:
        """Everything up; the slow starters (workers, replicas) start side by side and are waited for."""
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        try:
            self._start_database()
            self._start_store()
            scheduler = self._start_dask()
            edge_port = free_port()
            self.env = self._server_env(scheduler, f"http://127.0.0.1:{edge_port}")
            self.spheroseg("server", "migrate")
            for index in (1, 2):
                self._start_replica(index)
            for worker in self.dask_workers:
                _wait_for_http(worker.url + "/health", worker)
            for replica in self.replicas:
                _wait_for_http(replica.url + "/health/ready", replica)
            self._start_edge(edge_port)
            self._start_prometheus()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Everything down, newest first (the logs stay in ``root``)."""
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None

    def __enter__(self) -> LocalLab:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    # -- what an admin does with it ---------------------------------------------------------------------

    def spheroseg(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``spheroseg ARGS`` with the replicas' settings, as an admin runs it on a server machine."""
        return subprocess.run(
            [str(BIN / "spheroseg"), *args],
            env={**os.environ, **self.env},
            input=stdin,
            text=True,
            capture_output=True,
            check=True,
        )

    def create_user(self, name: str, password: str, admin: bool = False) -> None:
        self.spheroseg(
            "server",
            "create-user",
            name,
            "--password-stdin",
            *(["--admin"] if admin else []),
            stdin=password + "\n",
        )

    def dispatching_replica(self) -> Process | None:
        """The replica whose dispatcher leads (its ``spheroseg_dispatching`` metric reads 1)."""
        for replica in self.replicas:
            if replica.alive():
                metrics = httpx.get(replica.url + "/metrics", timeout=10).text
                if "\nspheroseg_dispatching 1.0" in metrics:
                    return replica
        return None

    # -- the services -----------------------------------------------------------------------------------

    def _start_database(self) -> None:
        self.postgres = start_postgres()
        self.postgres.psql("CREATE DATABASE spheroseg")

    def _start_store(self) -> None:
        port = free_port()
        self._launch(
            "s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], f"http://127.0.0.1:{port}"
        )
        _wait_for_port(port, self.processes[-1])
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="lab",
            aws_secret_access_key="lab-secret",
        )
        s3.create_bucket(Bucket=BUCKET)

    def _start_dask(self) -> str:
        """``dask scheduler`` and ``dask worker`` as compose and the systemd units run them (CPU here)."""
        port, http = free_port(), free_port()
        address = f"tcp://127.0.0.1:{port}"
        dask = str(BIN / "dask")
        scheduler = self._launch(
            "scheduler",
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                f"127.0.0.1:{http}",
            ],
            f"http://127.0.0.1:{http}",
        )
        _wait_for_http(scheduler.url + "/health", scheduler)
        for index in range(self.workers):
            http = free_port()
            self._launch(
                f"worker{index}",
                [
                    dask,
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--name",
                    f"cpu-{index}",
                    "--dashboard-address",
                    f"127.0.0.1:{http}",
                ],
                f"http://127.0.0.1:{http}",
                env=worker_config_environment(),
            )
        return address

    def _server_env(self, scheduler: str, public_url: str) -> dict[str, str]:
        assert self.postgres is not None
        env = read_env_file(HERE / ".env.example")
        env.update(
            SPHEROSEG_SECRET_KEY=secrets.token_urlsafe(48),
            SPHEROSEG_DATABASE_URL=self.postgres.url("spheroseg"),
            SPHEROSEG_STORAGE_URL=f"s3://{BUCKET}/images",
            SPHEROSEG_S3_ENDPOINT_URL=self.url_of("s3"),
            SPHEROSEG_S3_ACCESS_KEY_ID="lab",
            SPHEROSEG_S3_SECRET_ACCESS_KEY="lab-secret",
            SPHEROSEG_SCHEDULER=scheduler,
            SPHEROSEG_PUBLIC_URL=public_url,
            SPHEROSEG_FORWARDED_ALLOW_IPS="127.0.0.1",
            SPHEROSEG_DELIVERY_NGINX_CACHE_PATH=str(self.root / "nginx" / "cache"),
            SPHEROSEG_DATA_DIR=str(self.root / "admin"),
            SPHEROSEG_DELIVERY_BACKGROUND_PROCESSES="0",  # two cores here: renders in the replicas' threads
        )
        return env

    def _start_replica(self, index: int) -> None:
        port = free_port()
        self._launch(
            f"server{index}",
            [str(BIN / "spheroseg"), "server", "serve", "--host", "127.0.0.1", "--port", str(port)],
            f"http://127.0.0.1:{port}",
            env={**self.env, "SPHEROSEG_DATA_DIR": str(self.root / f"server{index}")},
        )

    def _start_edge(self, port: int) -> None:
        """nginx as :mod:`spheroseg_testing.nginx` runs it, serving compose's site template."""
        root = self.root / "nginx"
        (root / "cache").mkdir(parents=True, exist_ok=True)
        site = string.Template((HERE / "nginx" / "spheroseg.conf.template").read_text()).safe_substitute(
            SPHEROSEG_EDGE_LISTEN=f"127.0.0.1:{port}",
            SPHEROSEG_REPLICA_1=self.replicas[0].url.removeprefix("http://"),
            SPHEROSEG_REPLICA_2=self.replicas[1].url.removeprefix("http://"),
            SPHEROSEG_EDGE_CACHE=str(root / "cache"),
        )
        edge = self._launch("nginx", nginx_command(root, site), f"http://127.0.0.1:{port}")
        _wait_for_http(edge.url + "/health/live", edge)

    def _start_prometheus(self) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise FileNotFoundError("Prometheus is not installed here (apt-get install prometheus)")
        config: dict[str, Any] = yaml.safe_load((HERE / "prometheus.yml").read_text())
        config["global"]["scrape_interval"] = "1s"  # the test waits for the first scrapes and alerts
        config["global"]["evaluation_interval"] = "1s"
        config["rule_files"] = [str(HERE / name) for name in config.get("rule_files", [])]
        here = {
            "spheroseg-server": [p.url for p in self.replicas],
            "dask-scheduler": [self.url_of("scheduler")],
            "dask-worker": [p.url for p in self.dask_workers],
        }
        for job in config["scrape_configs"]:
            job["static_configs"] = [{"targets": [u.removeprefix("http://") for u in here[job["job_name"]]]}]
        root = self.root / "prometheus"
        root.mkdir(parents=True, exist_ok=True)
        (root / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        prometheus = self._launch(
            "prometheus",
            [
                binary,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            f"http://127.0.0.1:{port}",
        )
        _wait_for_http(prometheus.url + "/-/ready", prometheus)

    def _launch(self, name: str, command: list[str], url: str, env: dict[str, str] | None = None) -> Process:
        log = self.root / "logs" / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        process = Process(name, popen, log, url)
        self.processes.append(process)
        return process


def _wait_for_port(port: int, process: Process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(process)
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{process.name} did not listen on {port} within {timeout:.0f} s; see {process.log}")


def _wait_for_http(url: str, process: Process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(process)
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s; see {process.log}")


def _check_alive(process: Process) -> None:
    if not process.alive():
        tail = process.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{process.name} exited with {process.popen.returncode}:\n{tail}")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--root", type=Path, default=None, help="folder for logs and data (default: a new one)"
    )
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (default: 2)")
    parser.add_argument("--admin", default=None, help="make this administrator (password read from stdin)")
    args = parser.parse_args(argv)
    lab = LocalLab(workers=args.workers) if args.root is None else LocalLab(args.root, args.workers)
    stop = False

    def _on_signal(number: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with lab:
        if args.admin:
            lab.create_user(args.admin, sys.stdin.readline().rstrip("\n"), admin=True)
        for process in lab.processes:
            _say(f"{process.name:<11} {process.url:<24} log {process.log}")
        _say(f"The lab answers at {lab.edge_url}; Ctrl+C takes it down.")
        while not stop and all(p.alive() for p in lab.processes):
            time.sleep(0.5)
        for process in lab.processes:
            if not process.alive():
                _say(f"{process.name} stopped; taking the lab down (see {process.log})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
