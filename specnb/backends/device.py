"""The one place that decides device and dtype, and measures memory.

Everything that asks torch about devices goes through ``devices`` (a `TorchDevices`); tests swap
it for a fake to exercise the CUDA and MPS branches on a CPU-only machine.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

from ..errors import DeviceError

__all__ = ["TorchDevices", "devices", "cgroup_memory_limit", "trim_heap", "choose_device", "choose_dtype", "device_kind", "DTYPES"]

DTYPES = ("auto", "float32", "float16", "bfloat16", "int8")
_DTYPE_ALIASES = {"fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}


class TorchDevices:
    """What torch reports about the machine. Every method imports torch lazily."""

    def cuda_available(self) -> bool:
        import torch

        return torch.cuda.is_available()

    def cuda_count(self) -> int:
        import torch

        return torch.cuda.device_count()

    def cuda_bf16_supported(self, device: str) -> bool:
        import torch

        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported()

    def mps_available(self) -> bool:
        import torch

        backend = getattr(torch.backends, "mps", None)
        return bool(backend and backend.is_available())

    def allocated(self, device: str) -> int:
        """Bytes the process holds on ``device`` (CUDA allocator, MPS driver, or RSS for the CPU)."""
        kind = device_kind(device)
        if kind == "cuda":
            import torch

            return torch.cuda.memory_allocated(device)
        if kind == "mps":
            import torch

            return torch.mps.current_allocated_memory()
        import psutil

        return psutil.Process(os.getpid()).memory_info().rss

    def total(self, device: str) -> int | None:
        """Total memory of ``device`` in bytes: system RAM for the CPU and MPS, or the memory limit of the
        process's cgroup where that is lower (a container: Binder's 2 GB, a Kubernetes pod, ``docker -m``)."""
        if device_kind(device) == "cuda":
            import torch

            return torch.cuda.get_device_properties(device).total_memory
        import psutil

        ram = psutil.virtual_memory().total
        limit = cgroup_memory_limit()
        return min(ram, limit) if limit else ram

    def empty_cache(self, device: str) -> None:
        """Return freed blocks to the driver so other processes (and nvidia-smi) see them."""
        gc.collect()
        kind = device_kind(device)
        if kind == "cuda":
            import torch

            torch.cuda.empty_cache()
        elif kind == "mps":
            import torch

            torch.mps.empty_cache()
        else:
            trim_heap()


devices = TorchDevices()

_LIBC = []


def trim_heap() -> bool:
    """Give the C heap's free pages back to the operating system (glibc ``malloc_trim``).

    glibc keeps what a CPU forward pass freed (activations, per-thread arenas) for reuse, so after a run or
    an unload the resident set stays tens to hundreds of MB above what is in use; trimming makes an unloaded
    model's memory visible as free to the rest of the machine (and to a container's limit). Returns whether
    it ran (False off glibc)."""
    if not _LIBC:
        import ctypes
        import ctypes.util

        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.append(getattr(libc, "malloc_trim", None))
        except OSError:
            _LIBC.append(None)
    trim = _LIBC[0]
    if trim is None:
        return False
    trim(0)
    return True


#: Where cgroup v2 (unified) and v1 keep the memory limit, relative to the cgroup file system root.
_CGROUP_ROOT = "/sys/fs/cgroup"


def cgroup_memory_limit(root: str = _CGROUP_ROOT, proc_self_cgroup: str = "/proc/self/cgroup") -> int | None:
    """The memory limit in bytes of this process's cgroup (v2 ``memory.max``, else v1
    ``memory.limit_in_bytes``), or None where there is none, it reads ``max`` / a v1 "unlimited" value, or the
    files cannot be read. The process's own cgroup is tried first, then the root (a container sees its own
    cgroup as the root)."""
    paths = []
    try:
        for line in Path(proc_self_cgroup).read_text(encoding="utf-8").splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "":  # v2
                paths.append(os.path.join(root, path.lstrip("/"), "memory.max"))
            elif "memory" in controllers.split(","):  # v1
                paths.append(os.path.join(root, "memory", path.lstrip("/"), "memory.limit_in_bytes"))
    except (OSError, ValueError):
        pass
    paths += [os.path.join(root, "memory.max"), os.path.join(root, "memory", "memory.limit_in_bytes")]
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if text == "max":
            return None
        try:
            value = int(text)
        except ValueError:
            continue
        # cgroup v1 writes "no limit" as a huge page-rounded number (2**63 - 4096)
        return value if 0 < value < 2**60 else None
    return None


def device_kind(device: str) -> str:
    """``'cuda:1'`` -> ``'cuda'``."""
    return device.split(":", 1)[0]


def choose_device(requested: str = "auto", *, cpu_only: bool = False) -> str:
    """Resolve ``requested`` to a concrete device string.

    ``auto`` picks cuda, then mps, then cpu (cpu alone for CPU-only backends). Explicit choices
    are checked: asking for a GPU that is not there raises DeviceError.
    """
    if not isinstance(requested, str):
        requested = str(requested)
    requested = requested.strip().lower()
    if requested == "auto":
        if cpu_only:
            return "cpu"
        if devices.cuda_available():
            return "cuda:0"
        if devices.mps_available():
            return "mps"
        return "cpu"
    kind, _, index = requested.partition(":")
    if kind not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unknown device {requested!r}; valid devices: auto, cpu, cuda, cuda:N, mps")
    if cpu_only and kind != "cpu":
        raise DeviceError(f"this backend runs on the CPU only, not on {requested!r}; use device='cpu' or 'auto'")
    if kind == "cpu":
        return "cpu"
    if kind == "mps":
        if not devices.mps_available():
            raise DeviceError("device 'mps' is not available here (no Apple GPU seen by torch); use 'auto' or 'cpu'")
        return "mps"
    if not devices.cuda_available():
        raise DeviceError(f"device {requested!r} is not available: torch sees no CUDA GPU; use 'auto' or 'cpu'")
    n = int(index) if index.isdigit() else 0
    if index and not index.isdigit():
        raise DeviceError(f"device {requested!r}: the index after 'cuda:' must be a number")
    if n >= devices.cuda_count():
        raise DeviceError(f"device {requested!r} does not exist; this machine has cuda:0..cuda:{devices.cuda_count() - 1}")
    return f"cuda:{n}"


def choose_dtype(requested: str = "auto", device: str = "cpu") -> str:
    """Resolve ``requested`` to a dtype name for ``device``.

    ``auto``: bfloat16 on CUDA where supported, else float16 on CUDA and MPS; float32 on the CPU.
    ``int8``: float32 weights with Linear layers quantized dynamically, CPU encoders only.
    """
    name = str(requested).replace("torch.", "").strip().lower()
    name = _DTYPE_ALIASES.get(name, name)
    if name not in DTYPES:
        raise DeviceError(f"unknown dtype {requested!r}; valid dtypes: {', '.join(DTYPES)} (or fp32, fp16, bf16)")
    kind = device_kind(device)
    if name == "int8" and kind != "cpu":
        raise DeviceError(
            f"dtype='int8' is a CPU fast path (dynamic quantization of Linear layers), not for {device!r}; "
            "on a GPU use float16 or bfloat16"
        )
    if name == "auto":
        if kind == "cuda":
            return "bfloat16" if devices.cuda_bf16_supported(device) else "float16"
        if kind == "mps":
            return "float16"
        return "float32"
    return name
