"""The one place that decides device and dtype, and measures memory.

Everything that asks torch about devices goes through ``devices`` (a `TorchDevices`); tests swap
it for a fake to exercise the CUDA and MPS branches on a CPU-only machine.
"""

from __future__ import annotations

import gc
import os

from ..errors import DeviceError

__all__ = ["TorchDevices", "devices", "choose_device", "choose_dtype", "device_kind", "DTYPES"]

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
        """Total memory of ``device`` in bytes (system RAM for the CPU and MPS)."""
        if device_kind(device) == "cuda":
            import torch

            return torch.cuda.get_device_properties(device).total_memory
        import psutil

        return psutil.virtual_memory().total

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


devices = TorchDevices()


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
