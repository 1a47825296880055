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


def _recording_comm_class():
    from comm.base_comm import BaseComm

    class RecordingComm(BaseComm):
        """A comm whose messages to the front end are kept in ``sent`` (no kernel needed)."""

        def __init__(self, **kwargs):
            self.sent: list[tuple[str, dict]] = []
            super().__init__(**kwargs)

        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
            self.sent.append((msg_type, data or {}))

    return RecordingComm


def record_comms(monkeypatch) -> None:
    """Make every widget's comm a recording one (for an autouse fixture of a widget test module)."""
    import comm

    recording = _recording_comm_class()
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: recording(**kwargs))


def assert_same_weights(first, second) -> None:
    """Two ``model.safetensors`` files hold bit-identical tensors under the same names."""
    import torch
    from safetensors.torch import load_file

    a, b = load_file(first), load_file(second)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
