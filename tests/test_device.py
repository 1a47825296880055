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


def test_cgroup_memory_limit_caps_the_cpu_total(tmp_path):
    """A container's memory limit (Binder: 2 GiB) is the CPU's total for the default budget, not the host's RAM."""
    from specnb.backends.device import cgroup_memory_limit

    # cgroup v2: the process's own cgroup, then the root
    (tmp_path / "v2" / "user.slice").mkdir(parents=True)
    (tmp_path / "v2" / "user.slice" / "memory.max").write_text("2147483648\n")
    (tmp_path / "v2.cgroup").write_text("0::/user.slice\n")
    assert cgroup_memory_limit(str(tmp_path / "v2"), str(tmp_path / "v2.cgroup")) == 2**31
    (tmp_path / "v2" / "user.slice" / "memory.max").write_text("max\n")
    assert cgroup_memory_limit(str(tmp_path / "v2"), str(tmp_path / "v2.cgroup")) is None
    # cgroup v1: "unlimited" is a huge page-rounded number; a container sees its cgroup at the root
    (tmp_path / "v1" / "memory").mkdir(parents=True)
    (tmp_path / "v1.cgroup").write_text("4:memory:/docker/abc\n0::/\n")
    (tmp_path / "v1" / "memory" / "memory.limit_in_bytes").write_text(str(2**63 - 4096))
    assert cgroup_memory_limit(str(tmp_path / "v1"), str(tmp_path / "v1.cgroup")) is None
    (tmp_path / "v1" / "memory" / "memory.limit_in_bytes").write_text("1073741824")
    assert cgroup_memory_limit(str(tmp_path / "v1"), str(tmp_path / "v1.cgroup")) == 2**30
    # nothing readable: no limit
    assert cgroup_memory_limit(str(tmp_path / "none"), str(tmp_path / "missing")) is None


def test_cpu_total_is_the_lower_of_ram_and_the_cgroup_limit(monkeypatch):
    import psutil

    from specnb.backends import device

    monkeypatch.setattr(device, "cgroup_memory_limit", lambda: 2**31)
    assert device.devices.total("cpu") == min(psutil.virtual_memory().total, 2**31)
    monkeypatch.setattr(device, "cgroup_memory_limit", lambda: None)
    assert device.devices.total("cpu") == psutil.virtual_memory().total
