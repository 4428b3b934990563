"""Which CUDA GPUs a machine has, and how a worker is pinned to one of them.

A GPU worker sees exactly one device (``CUDA_VISIBLE_DEVICES=<id>``, so inside it the GPU is always
``cuda:0``) and offers the Dask resource ``GPU=1``, which GPU tasks ask for. Detection never imports torch:
it honours ``CUDA_VISIBLE_DEVICES`` when the administrator set it, else asks ``nvidia-smi``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping

__all__ = [
    "GPU_RESOURCE",
    "detect_gpus",
    "gpu_worker_env",
    "gpu_worker_resources",
    "parse_nvidia_smi",
    "parse_visible_devices",
]

log = logging.getLogger(__name__)

GPU_RESOURCE = "GPU"
"""The Dask worker resource a GPU worker offers (one unit) and a GPU task asks for."""


def parse_visible_devices(value: str) -> tuple[str, ...]:
    """Device ids in a ``CUDA_VISIBLE_DEVICES`` value; empty, ``-1`` or ``none`` mean no device."""
    devices = tuple(part.strip() for part in value.split(",") if part.strip())
    if not devices or devices[0] in {"-1", "none", "NoDevFiles"}:
        return ()
    return devices


def parse_nvidia_smi(output: str) -> tuple[str, ...]:
    """Device indices from ``nvidia-smi --query-gpu=index --format=csv,noheader`` output."""
    return tuple(line.strip() for line in output.splitlines() if line.strip().isdigit())


def detect_gpus(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The CUDA device ids this machine offers to workers; ``()`` on a machine without GPUs."""
    environ = os.environ if environ is None else environ
    if "CUDA_VISIBLE_DEVICES" in environ:
        return parse_visible_devices(environ["CUDA_VISIBLE_DEVICES"])
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        result = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("nvidia-smi did not answer (%s); assuming no GPUs", exc)
        return ()
    if result.returncode != 0:
        log.warning("nvidia-smi failed (%s); assuming no GPUs", result.stderr.strip())
        return ()
    return parse_nvidia_smi(result.stdout)


def gpu_worker_env(device: str) -> dict[str, str]:
    """Environment that pins a worker process to ``device``."""
    return {"CUDA_VISIBLE_DEVICES": str(device)}


def gpu_worker_resources() -> dict[str, float]:
    """Resources a GPU worker offers."""
    return {GPU_RESOURCE: 1}
