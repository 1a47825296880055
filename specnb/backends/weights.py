"""Identical weights held once across loaded models.

A head trained on a frozen encoder (``specnb.specialize(..., method="head")``) is a copy of that
encoder plus one linear layer; the same checkpoint loaded for two tasks is two copies of one set of
weights. When a torch model loads, `share_weights` looks for each of its parameters among the
parameters of the models already loaded on the same device and, where one holds exactly the same
values (same dtype and shape, every element equal: ``torch.equal``), points the new parameter at that
tensor and lets its own copy go. Nothing is approximated: a shared parameter holds the same numbers
as the one the model loaded (up to the sign of a zero). The models run in inference mode, so no step
writes to a shared tensor.

Unloading a model frees only what no other loaded model uses (reference counting does the rest);
`unique_bytes` and `resident_bytes` give the memory figures the budget works with.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

__all__ = ["share_weights", "share_frozen_base", "torch_parameters", "is_torch", "shared_bytes", "resident_bytes", "MIN_SHARED_BYTES"]

#: Parameters smaller than this are not looked up (LayerNorm vectors, biases): what sharing them saves is not
#: worth the comparisons.
MIN_SHARED_BYTES = 64 * 1024


def torch_parameters(backend) -> list:
    """The distinct parameters of a backend's torch module (tied weights once); [] for other backends or once
    unloaded. Never imports torch."""
    torch = sys.modules.get("torch")
    module = getattr(backend, "model", None) if backend is not None else None
    if torch is None or not isinstance(module, torch.nn.Module):
        return []
    return list(module.parameters())


def is_torch(backend) -> bool:
    """Whether ``backend`` runs a torch module (never imports torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(getattr(backend, "model", None), torch.nn.Module)


def _eligible(param) -> bool:
    import torch

    return (not param.is_meta and param.is_floating_point() and param.layout == torch.strided
            and param.numel() * param.element_size() >= MIN_SHARED_BYTES)


def _fingerprint(tensor) -> tuple:
    """Device, dtype, shape and four elements: equal tensors have equal fingerprints, and different weights
    of the same shape almost never do, so ``torch.equal`` runs about once per shared parameter."""
    flat = tensor.detach().reshape(-1)
    n = flat.numel()
    picks = flat[[0, n // 3, (2 * n) // 3, n - 1]].float().tolist()
    return str(tensor.device), tensor.dtype, tuple(tensor.shape), tuple(picks)


def share_weights(backend, others: Iterable) -> int:
    """Point each parameter of ``backend``'s torch module that equals a parameter of one of ``others`` (loaded
    backends on the same device) at that parameter's tensor. Returns the bytes no longer held twice."""
    import torch

    params = [p for p in torch_parameters(backend) if _eligible(p)]
    if not params:
        return 0
    index: dict[tuple, list] = {}
    for other in others:
        if other is backend:
            continue
        for param in torch_parameters(other):
            if _eligible(param):
                index.setdefault(_fingerprint(param), []).append(param)
    if not index:
        return 0
    saved, shared = 0, set()
    files = _MappedFiles()
    with torch.no_grad():
        for param in params:
            for candidate in index.get(_fingerprint(param), ()):
                if candidate.data_ptr() == param.data_ptr():
                    break
                if files.equal(candidate, param):
                    param.data = candidate.data
                    saved += param.numel() * param.element_size()
                    shared.add(id(param))
                    break
        rest = [p for p in torch_parameters(backend) if id(p) not in shared]
        if saved and saved >= sum(p.numel() * p.element_size() for p in rest):
            # Weights loaded from safetensors are views of one memory map of the file: while any of them lives,
            # the whole file stays mapped and the pages read above stay resident. The few tensors the model
            # keeps of its own (a head, norms, buffers) are copied so that the map is let go.
            for param in rest:
                param.data = param.data.clone()
            module = backend.model
            for owner in module.modules():
                for name, buffer in list(owner._buffers.items()):
                    if buffer is not None:
                        owner._buffers[name] = buffer.clone()
    files.close()
    return saved


class _MappedFiles:
    """Compares a tensor with a parameter that is still a memory map of its weights file by reading the file
    (``os.pread``), not the map: the map's pages are never touched, so a parameter about to be shared never
    becomes resident in this process (a MiniLM head would add 87 MB for the moment of the comparison).
    Elsewhere (a GPU, tensors in anonymous memory, no ``/proc/self/maps``) it is ``torch.equal``."""

    CHUNK = 4 << 20

    def __init__(self):
        self._regions = None  # sorted (start, end, file offset, path) of this process's file mappings
        self._fds: dict[str, int] = {}

    def equal(self, candidate, param) -> bool:
        import torch

        if param.device.type != "cpu" or candidate.device.type != "cpu" or not param.is_contiguous():
            return torch.equal(candidate, param)
        where = self._file_of(param.data_ptr(), param.numel() * param.element_size())
        if where is None:
            return torch.equal(candidate, param)
        return self._equal_to_file(candidate, *where)

    def _file_of(self, address: int, size: int):
        import bisect

        if self._regions is None:
            self._regions = _file_mappings()
        i = bisect.bisect_right(self._regions, (address, float("inf"))) - 1
        if i < 0:
            return None
        start, end, offset, path = self._regions[i]
        if not (start <= address and address + size <= end):
            return None
        return path, offset + (address - start), size

    def _equal_to_file(self, candidate, path: str, offset: int, size: int) -> bool:
        import numpy as np
        import torch

        if candidate.numel() * candidate.element_size() != size:
            return False
        mine = candidate.detach().contiguous().reshape(-1).view(torch.uint8).numpy()
        try:
            fd = self._fds.get(path)
            if fd is None:
                fd = self._fds[path] = os.open(path, os.O_RDONLY)
            for at in range(0, size, self.CHUNK):
                want = min(self.CHUNK, size - at)
                chunk = os.pread(fd, want, offset + at)
                if len(chunk) != want or not np.array_equal(np.frombuffer(chunk, dtype=np.uint8), mine[at : at + want]):
                    return False
        except OSError:
            return False
        return True

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _file_mappings() -> list:
    """(start, end, file offset, path) of every file this process maps, sorted; [] where /proc is missing."""
    regions = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            text = maps.read()
    except OSError:
        return []
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].startswith("/") and not parts[5].endswith(" (deleted)"):
            start, end = (int(x, 16) for x in parts[0].split("-"))
            regions.append((start, end, int(parts[2], 16), parts[5]))
    regions.sort()
    return regions


def share_frozen_base(module, base) -> int:
    """`share_weights` for a module built from ``base``'s checkpoint whose encoder stays frozen (features for a
    head, a learning curve): its encoder becomes the loaded base's tensors. 0 when ``config.share_weights`` is
    off."""
    from types import SimpleNamespace

    from ..settings import config

    return share_weights(SimpleNamespace(model=module), [base]) if config.share_weights else 0


def _storages(params) -> dict[int, int]:
    """Data address -> bytes, over ``params`` (a parameter shared between models has one address; parameters
    that are views into one memory-mapped file have one each)."""
    return {param.data_ptr(): param.numel() * param.element_size() for param in params}


def shared_bytes(backend, others: Iterable) -> int:
    """Bytes of ``backend``'s parameters that one of ``others`` holds too (unloading it alone does not free
    them)."""
    mine = _storages(torch_parameters(backend))
    if not mine:
        return 0
    theirs = set()
    for other in others:
        if other is not backend:
            theirs.update(_storages(torch_parameters(other)))
    return sum(size for ptr, size in mine.items() if ptr in theirs)


def resident_bytes(models) -> int:
    """The weights of ``models`` as held in memory: torch tensors shared between models counted once; other
    backends by their ``weight_bytes``."""
    storages: dict[int, int] = {}
    total = 0
    for model in models:
        params = torch_parameters(model._backend)
        if params:
            storages.update(_storages(params))
            # what weight_bytes counts beyond torch parameters (int8-packed weights, buffers) stays the model's own
            total += max(0, (model.weight_bytes or 0) - sum(p.numel() * p.element_size() for p in params))
        else:
            total += model.weight_bytes or 0
    return total + sum(storages.values())
