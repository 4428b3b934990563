"""``python -m cluster.launch.gpu_worker SCHEDULER``: one pinned worker per GPU of this node.

The worker command of a SLURM job that holds several GPUs (``--gres=gpu:N``). SLURM shows the job its GPUs
through ``CUDA_VISIBLE_DEVICES`` (or, failing that, nvidia-smi lists them); this starts one nanny per device
with ``CUDA_VISIBLE_DEVICES=<that device>`` and ``GPU=1``, named ``<name>-<i>`` as dask-jobqueue expects of
a job with several worker processes. It takes the options dask-jobqueue passes to ``dask worker``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Any

from cluster.launch.gpus import GPU_RESOURCE, detect_gpus, gpu_worker_env
from cluster.launch.tuning import apply_worker_config

__all__ = ["main", "nanny_options", "parse_args"]

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cluster.launch.gpu_worker", description=__doc__)
    parser.add_argument("scheduler")
    parser.add_argument("--name", default="gpu")
    parser.add_argument("--nthreads", type=int, default=1)
    parser.add_argument("--memory-limit", default="auto")
    parser.add_argument("--resources", default="", help="extra resources, e.g. 'GPU=1 SSD=1'")
    parser.add_argument("--lifetime", default=None)
    parser.add_argument("--lifetime-stagger", default="0s")
    parser.add_argument("--death-timeout", default=None)
    parser.add_argument("--local-directory", default=None)
    parser.add_argument("--interface", default=None)
    parser.add_argument("--protocol", default=None)
    parser.add_argument("--devices", default=None, help="device ids to use (default: this node's GPUs)")
    return parser.parse_args(argv)


def _resources(text: str) -> dict[str, float]:
    resources: dict[str, float] = {}
    for item in text.replace(",", " ").split():
        key, _, value = item.partition("=")
        resources[key] = float(value or 1)
    resources[GPU_RESOURCE] = 1
    return resources


def nanny_options(args: argparse.Namespace, devices: Sequence[str]) -> list[dict[str, Any]]:
    """Keyword arguments of one :class:`distributed.Nanny` per device."""
    common: dict[str, Any] = {
        "nthreads": args.nthreads,
        "memory_limit": args.memory_limit,
        "resources": _resources(args.resources),
    }
    for option in ("lifetime", "death_timeout", "local_directory", "interface", "protocol"):
        if getattr(args, option) is not None:
            common[option] = getattr(args, option)
    if args.lifetime is not None:
        common["lifetime_stagger"] = args.lifetime_stagger
    return [
        {**common, "name": f"{args.name}-{index}", "env": gpu_worker_env(device)}
        for index, device in enumerate(devices)
    ]


async def _serve(args: argparse.Namespace, devices: Sequence[str]) -> None:
    from distributed import Nanny

    nannies = [Nanny(args.scheduler, **options) for options in nanny_options(args, devices)]
    await asyncio.gather(*nannies)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    finished = asyncio.ensure_future(_all_finished(nannies))
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait({finished, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    finished.cancel()
    await asyncio.gather(*(nanny.close() for nanny in nannies), return_exceptions=True)


async def _all_finished(nannies: Sequence[Any]) -> None:
    await asyncio.gather(*(nanny.finished() for nanny in nannies))


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    devices = tuple(d for d in (args.devices or "").split(",") if d) or detect_gpus()
    if not devices:
        log.error("no GPU is visible to this job (CUDA_VISIBLE_DEVICES, nvidia-smi); nothing to start")
        return 1
    apply_worker_config()
    log.info("starting %d GPU workers (devices %s) for %s", len(devices), ",".join(devices), args.scheduler)
    asyncio.run(_serve(args, devices))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
