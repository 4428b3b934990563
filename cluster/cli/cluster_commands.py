"""``spheroseg cluster``: deploy, scale, inspect and stop the Dask cluster that segments images."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
from rich.console import Console

from cluster.cli.options import scheduler_option, tls_files, tls_options
from cluster.cli.reports import metrics_tables, status_table
from cluster.exceptions import ClusterError, SpherosegError
from cluster.launch.control import Target, deploy, resolve_target, send_control, stop
from cluster.launch.deployment import Deployment, close_client
from cluster.launch.spec import BACKENDS, ClusterSpec, SlurmOptions, SshOptions
from cluster.launch.state import default_state_path
from cluster.monitor import ClusterStatus, MetricsSummary, cluster_metrics, cluster_status

__all__ = ["cluster"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coroutine)
    except SpherosegError as exc:
        raise click.ClickException(str(exc)) from exc


def _parse_range(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    low, sep, high = value.partition(":")
    if not sep or not low.isdigit() or not high.isdigit():
        raise click.BadParameter(f"{value!r} is not MIN:MAX, e.g. 1:8")
    return int(low), int(high)


def _target_options(command: F) -> F:
    """``--scheduler`` and the TLS files, shared by the commands that talk to a running cluster."""
    with_tls: F = tls_options(command)
    return scheduler_option("Talk to this scheduler instead of the deployed cluster.")(with_tls)


def _target(
    scheduler: str | None, tls_ca_file: str | None, tls_cert: str | None, tls_key: str | None
) -> Target:
    try:
        return resolve_target(scheduler, tls_files(tls_ca_file, tls_cert, tls_key))
    except SpherosegError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def cluster() -> None:
    """Deploy, scale, inspect and stop the Dask cluster that segments images.

    A deployed cluster keeps running after `deploy` returns; the other commands find it through a state
    file in your data folder (SPHEROSEG_CLUSTER_STATE names another), or talk to any scheduler given with
    --scheduler ADDR.

    \b
    Examples:
      spheroseg cluster deploy --workers 2            # this machine, 2 worker processes
      spheroseg cluster deploy --gpus                 # one worker per GPU
      spheroseg cluster deploy --backend slurm --gpus --workers 8 --partition gpu --walltime 04:00:00
      spheroseg cluster deploy --backend ssh --ssh-host head --ssh-host gpu1:4 --ssh-host gpu2:4 --gpus
      spheroseg cluster scale 4
      spheroseg cluster status
      spheroseg segment plate1/ --out results/ --scheduler deployed
      spheroseg cluster stop
    """


@cluster.command("deploy")
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="local",
    show_default=True,
    help="local: this machine; address: an existing scheduler; ssh: hosts over SSH; slurm: jobs.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Workers to start (local default: one per core, or one per GPU with --gpus; "
    "ssh: per host; slurm: in total).",
)
@click.option("--gpus", is_flag=True, help="One worker per GPU, pinned to it, offering the GPU=1 resource.")
@click.option(
    "--adapt",
    "adapt",
    metavar="MIN:MAX",
    default=None,
    help="Scale automatically between MIN and MAX workers with the load.",
)
@click.option("--threads-per-worker", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--memory-limit", default="auto", show_default=True, help="Per worker, e.g. 8GB.")
@click.option(
    "--scheduler", "address", metavar="ADDR", default=None, help="The existing scheduler (--backend address)."
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface our scheduler listens on; 0.0.0.0 to let other machines in.",
)
@click.option("--port", type=click.IntRange(min=0), default=0, help="Scheduler port (default: any free).")
@click.option(
    "--dashboard-port", type=click.IntRange(min=0), default=0, help="Dashboard port (default: any)."
)
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="Environment of every worker.")
@click.option(
    "--ssh-host",
    "ssh_hosts",
    multiple=True,
    metavar="HOST[:GPUS]",
    help="ssh: the scheduler's host first, then worker hosts (repeat).",
)
@click.option("--ssh-user", default=None)
@click.option("--ssh-port", type=int, default=22, show_default=True)
@click.option("--ssh-key", "ssh_keys", multiple=True, help="Private key file (repeat).")
@click.option("--known-hosts", default=None, help="known_hosts file for the SSH hosts.")
@click.option("--remote-python", default=None, help="ssh: Python on the hosts (default: same path as here).")
@click.option("--partition", default=None, help="slurm: partition (queue).")
@click.option("--account", default=None, help="slurm: account to charge.")
@click.option("--walltime", default="01:00:00", show_default=True, help="slurm: wall time of each job.")
@click.option("--job-cores", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--job-memory", default="16GB", show_default=True)
@click.option("--gpus-per-job", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--lifetime",
    default=None,
    help="slurm: worker lifetime (default: wall time less the stagger and 5 minutes).",
)
@click.option("--lifetime-stagger", default="4m", show_default=True)
@click.option("--job-extra", multiple=True, help="slurm: extra #SBATCH directive (repeat).")
@click.option("--prologue", multiple=True, help="slurm: shell line before the worker starts (repeat).")
@tls_options
@click.option(
    "--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for the start."
)
def deploy_command(**options: Any) -> None:
    """Start a cluster that keeps running after this command returns."""
    spec = _spec_from_options(options)
    try:
        state = deploy(spec, timeout=options["timeout"])
    except SpherosegError as exc:
        raise click.ClickException(str(exc)) from exc
    out = Console()
    out.print(f"cluster ({spec.backend}) running at [bold]{state.scheduler_address}[/bold]")
    if state.dashboard_link:
        out.print(f"dashboard: {state.dashboard_link}")
    if state.log_file:
        out.print(f"log: {state.log_file}")
    out.print(f"state: {default_state_path()}")


def _spec_from_options(options: dict[str, Any]) -> ClusterSpec:
    adaptive = _parse_range(options["adapt"])
    env = []
    for item in options["env"]:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--env")
        env.append((key, value))
    ssh = None
    if options["ssh_hosts"]:
        ssh = SshOptions(
            hosts=tuple(options["ssh_hosts"]),
            username=options["ssh_user"],
            port=options["ssh_port"],
            known_hosts=options["known_hosts"],
            client_keys=tuple(options["ssh_keys"]),
            remote_python=options["remote_python"],
        )
    slurm = SlurmOptions(
        partition=options["partition"],
        account=options["account"],
        walltime=options["walltime"],
        cores=options["job_cores"],
        memory=options["job_memory"],
        gpus_per_job=options["gpus_per_job"],
        lifetime=options["lifetime"],
        lifetime_stagger=options["lifetime_stagger"],
        job_extra=tuple(options["job_extra"]),
        prologue=tuple(options["prologue"]),
    )
    try:
        return ClusterSpec(
            backend=options["backend"],
            workers=options["workers"],
            gpus=options["gpus"],
            threads_per_worker=options["threads_per_worker"],
            memory_limit=options["memory_limit"],
            minimum=adaptive[0] if adaptive else None,
            maximum=adaptive[1] if adaptive else None,
            address=options["address"],
            tls=tls_files(options["tls_ca_file"], options["tls_cert"], options["tls_key"]),
            host=options["host"],
            scheduler_port=options["port"],
            dashboard_port=options["dashboard_port"],
            ssh=ssh,
            slurm=slurm if options["backend"] == "slurm" else None,
            env=tuple(env),
        )
    except SpherosegError as exc:
        raise click.UsageError(str(exc)) from exc


@cluster.command("scale")
@click.argument("workers", type=click.IntRange(min=0), required=False)
@click.option(
    "--adapt",
    "adapt",
    metavar="MIN:MAX",
    default=None,
    help="Instead of a fixed number, scale automatically between MIN and MAX workers.",
)
@click.option(
    "--timeout",
    type=float,
    default=180.0,
    show_default=True,
    help="Seconds to wait (scaling down lets running images finish first).",
)
@_target_options
def scale_command(workers: int | None, adapt: str | None, timeout: float, **target_options: Any) -> None:
    """Scale the cluster to WORKERS workers; scaling down retires workers without losing work."""
    bounds = _parse_range(adapt)
    if (workers is None) == (bounds is None):
        raise click.UsageError("give either WORKERS or --adapt MIN:MAX")
    target = _target(**target_options)
    if target.state is None or target.state.pid is None:
        if workers is None:
            raise click.ClickException("only a cluster deployed with 'spheroseg cluster deploy' can adapt")
        spec = ClusterSpec(backend="address", address=target.address, tls=target.tls)
        deployment = Deployment(spec, target.address, security=target.security)
        n = _run(deployment.scale(workers, grace=timeout))
        Console().print(f"scaled to {n} workers")
        return
    message: dict[str, Any] = {"op": "scale", "n": workers}
    if bounds is not None:
        message = {"op": "adapt", "minimum": bounds[0], "maximum": bounds[1]}
    reply = _run(send_control(target, message, timeout=timeout))
    if not reply.get("ok"):
        raise click.ClickException(str(reply.get("message")))
    Console().print(str(reply.get("message")))


async def _status(target: Target) -> ClusterStatus:
    client = await target.client()
    try:
        return await cluster_status(client, target.address)
    finally:
        await close_client(client)


@cluster.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@_target_options
def status_command(as_json: bool, **target_options: Any) -> None:
    """Workers, their resources and devices, tasks processing and waiting, images per second."""
    target = _target(**target_options)
    status = _run(_status(target))
    if as_json:
        click.echo(json.dumps(status.as_dict(), indent=2, default=str))
        return
    out = Console()
    out.print(status_table(status))
    out.print(
        f"{len(status.workers)} workers; tasks processing {status.processing}, waiting {status.waiting}; "
        f"{status.images_per_second:.2f} images/s over the last minute"
    )
    if status.dashboard:
        out.print(f"dashboard: {status.dashboard}")


async def _metrics(target: Target) -> MetricsSummary:
    client = await target.client()
    try:
        return await cluster_metrics(client, target.address)
    finally:
        await close_client(client)


@cluster.command("metrics")
@click.option("--raw", is_flag=True, help="Print the Prometheus pages as they are.")
@_target_options
def metrics_command(raw: bool, **target_options: Any) -> None:
    """The scheduler's and workers' Prometheus metrics, summarised."""
    target = _target(**target_options)
    summary = _run(_metrics(target))
    if raw:
        for source, text in summary.raw.items():
            click.echo(f"# ---- {source}\n{text}")
        return
    out = Console()
    for table in metrics_tables(summary):
        out.print(table)
    out.print(
        f"{summary.total('spheroseg_worker_image_seconds_count'):g} images segmented by the current workers"
    )
    for source, error in summary.errors.items():
        out.print(f"[yellow]{source}[/yellow]: metrics unavailable ({error})")


@cluster.command("stop")
@click.option("--timeout", type=float, default=60.0, show_default=True)
def stop_command(timeout: float) -> None:
    """Stop the deployed cluster: workers retire, then the scheduler and its daemon exit."""
    try:
        state = stop(timeout=timeout)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    if state.pid is None:
        Console().print(f"forgot the scheduler at {state.scheduler_address} (it was not started by us)")
    else:
        Console().print(f"stopped the cluster at {state.scheduler_address}")
