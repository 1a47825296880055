"""The command line and the demo."""

import os
import subprocess
import sys

import pytest

from specnb.cli import main


def test_catalog_command_prints_every_name(capsys):
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    for name in ["minilm", "langid", "ner", "vader", "smollm2", "qwen2.5-0.5b"]:
        assert name in out


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_library_errors_print_one_line_and_exit_2(capsys):
    assert main(["demo", "--device", "tpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("specnb: DeviceError: unknown device 'tpu'") and err.count("\n") == 1


@pytest.mark.real
def test_demo_prints_a_table_of_every_embedded_model_offline():
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-m", "specnb", "demo"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    header = next(line for line in out.stdout.splitlines() if "load s" in line)
    for column in ["model", "task", "device", "load s", "memory", "sample output"]:
        assert column in header
    assert "fr (0." in out.stdout and "Paris" in out.stdout
    for name in ["minilm", "langid", "ner", "vader", "smollm2"]:
        assert f"\n{name}:" in out.stdout
