"""Device and dtype choice, through the fake device layer for the GPU branches."""

import pytest

import specnb
from specnb.backends import device as dev

from fakes import FakeDevices


@pytest.fixture
def fake(monkeypatch):
    def install(**kwargs):
        fake = FakeDevices(**kwargs)
        monkeypatch.setattr(dev, "devices", fake)
        return fake

    return install


def test_auto_prefers_cuda_then_mps_then_cpu(fake):
    fake(cuda=True, mps=True)
    assert dev.choose_device("auto") == "cuda:0"
    fake(cuda=False, mps=True)
    assert dev.choose_device("auto") == "mps"
    fake(cuda=False, mps=False)
    assert dev.choose_device("auto") == "cpu"


def test_auto_is_cpu_for_cpu_only_backends_even_with_a_gpu(fake):
    fake(cuda=True)
    assert dev.choose_device("auto", cpu_only=True) == "cpu"


def test_explicit_devices_are_checked(fake):
    fake(cuda=True, cuda_count=2)
    assert dev.choose_device("cuda") == "cuda:0"
    assert dev.choose_device("CUDA:1") == "cuda:1"
    with pytest.raises(specnb.DeviceError, match=r"cuda:0\.\.cuda:1"):
        dev.choose_device("cuda:2")
    with pytest.raises(specnb.DeviceError, match="valid devices"):
        dev.choose_device("tpu")
    with pytest.raises(specnb.DeviceError, match="CPU only"):
        dev.choose_device("cuda", cpu_only=True)


def test_missing_gpus_are_reported(fake):
    fake(cuda=False, mps=False)
    with pytest.raises(specnb.DeviceError, match="no CUDA GPU"):
        dev.choose_device("cuda")
    with pytest.raises(specnb.DeviceError, match="not available"):
        dev.choose_device("mps")


def test_auto_dtype_is_bf16_on_cuda_when_supported_else_fp16(fake):
    fake(cuda=True, bf16=True)
    assert dev.choose_dtype("auto", "cuda:0") == "bfloat16"
    fake(cuda=True, bf16=False)
    assert dev.choose_dtype("auto", "cuda:0") == "float16"


def test_auto_dtype_is_fp16_on_mps_and_fp32_on_cpu(fake):
    fake(mps=True)
    assert dev.choose_dtype("auto", "mps") == "float16"
    assert dev.choose_dtype("auto", "cpu") == "float32"


def test_explicit_dtypes_and_aliases(fake):
    fake()
    assert dev.choose_dtype("bf16", "cpu") == "bfloat16"
    assert dev.choose_dtype("torch.float16", "cpu") == "float16"
    with pytest.raises(specnb.DeviceError, match="valid dtypes"):
        dev.choose_dtype("int3", "cpu")


def test_real_layer_on_this_machine_answers_consistently():
    # Whatever the machine, 'auto' resolves to something the layer itself reports as present.
    chosen = dev.choose_device("auto")
    assert chosen == "cpu" or dev.devices.cuda_available() or dev.devices.mps_available()
    assert dev.devices.total("cpu") > 0
    assert dev.devices.allocated("cpu") > 0
