"""Choosing where and how the network runs: device, autocast precision, memory format, threads.

``device="auto"`` takes CUDA, then Apple MPS, then the CPU. ``precision="auto"`` takes bf16 autocast on
CUDA GPUs that support it (fp16 otherwise), bf16 on CPUs with AMX tiles, and fp32 on every other CPU:
emulated bf16 is many times slower, and even native AVX-512 BF16 alone was no faster than fp32 for this
network (a 2-core AMD EPYC: 10.5 against 9.3 ms per 1024² image, benchmarks/segment_model.py).
channels_last is used on the CPU (much faster oneDNN convolutions) and on CUDA.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from cluster.model.exceptions import DeviceError

__all__ = ["PRECISIONS", "Placement", "choose_placement", "cpu_has_amx", "cpu_supports_bf16"]

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Placement:
    """Where the network runs and with which autocast dtype (``None``: plain fp32)."""

    device: torch.device
    autocast_dtype: torch.dtype | None
    channels_last: bool

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def describe(self) -> str:
        layout = ", channels_last" if self.channels_last else ""
        return f"{self.device.type} {self.precision}{layout}"


def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bf16 convolutions natively (oneDNN's own check)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX bf16 tiles (Linux reports it in /proc/cpuinfo; elsewhere: assume not)."""
    try:
        with Path("/proc/cpuinfo").open(encoding="ascii", errors="replace") as info:
            return any(line.startswith("flags") and " amx_bf16" in line for line in info)
    except OSError:
        return False


def _auto_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def choose_placement(device: str = "auto", precision: str = "auto") -> Placement:
    """Resolve ``device`` ("auto", "cpu", "cuda", "cuda:1", "mps") and ``precision`` (see PRECISIONS)."""
    if precision not in PRECISIONS:
        raise DeviceError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    try:
        chosen = _auto_device() if device == "auto" else torch.device(device)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {device!r} ({exc})") from exc
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} asked for, but CUDA is not available on this machine")
    if chosen.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise DeviceError(f"device {device!r} asked for, but Apple MPS is not available on this machine")
    dtype = _autocast_dtype(chosen, precision)
    return Placement(chosen, dtype, channels_last=chosen.type in ("cpu", "cuda"))


def _autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    if precision == "fp32":
        return None
    if device.type == "cuda":
        if precision == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if precision == "bf16" else torch.float16
    if device.type == "mps":
        return torch.float16 if precision in ("auto", "fp16") else torch.bfloat16
    if precision == "fp16":
        raise DeviceError("fp16 autocast is for GPUs; on the CPU use bf16 or fp32")
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if cpu_supports_bf16() and cpu_has_amx() else None


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads (unchanged when ``None``), restoring the previous count."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
