"""A fake device layer: lets tests take the CUDA and MPS branches on a CPU-only machine."""

from __future__ import annotations


class FakeDevices:
    """Stands in for `specnb.backends.device.TorchDevices`.

    ``allocated`` returns the values of ``readings`` in turn (then repeats the last), so a test
    can script what the memory meter sees before and after a load.
    """

    def __init__(self, *, cuda=False, cuda_count=1, bf16=True, mps=False, total=16 * 2**30, readings=None):
        self.cuda, self.count, self.bf16, self.mps, self._total = cuda, cuda_count, bf16, mps, total
        self.readings = list(readings or [0])
        self.emptied: list[str] = []

    def cuda_available(self):
        return self.cuda

    def cuda_count(self):
        return self.count if self.cuda else 0

    def cuda_bf16_supported(self, device):
        return self.bf16

    def mps_available(self):
        return self.mps

    def allocated(self, device):
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]

    def total(self, device):
        return self._total

    def empty_cache(self, device):
        self.emptied.append(device)
