"""bench/gpu.py, the GPU benchmark, runs end to end in its tiny CPU smoke mode."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from specnb._catalog import ENTRIES

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["gpu_encoder_vs_pipeline", "gpu_rank_vs_generate", "oom_retries", "oom_labels_equal", "gpu_finetune_vs_trainer",
        "gpu_finetune_vs_trainer_bf16"]


@pytest.mark.skipif(
    ENTRIES["minilm"].local_path() is None or ENTRIES["smollm2"].local_path() is None,
    reason="needs the embedded MiniLM and SmolLM2 packages for their tokenizers",
)
def test_gpu_bench_smoke(tmp_path):
    # The session's environment (conftest: SPECNB_HOME in build/, caches in a temp dir), with this
    # test's own Hugging Face home; the script reads SPECNB_HOME and writes nothing there.
    env = dict(os.environ)
    env["HF_HOME"] = str(tmp_path / "hf")
    env["HF_HUB_OFFLINE"] = "1"
    out = tmp_path / "gpu.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu.py"), "--smoke", "--device", "cpu", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,  # a hang guard
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + "\n" + proc.stderr[-4000:]
    last = proc.stdout.strip().splitlines()[-1]
    fields = dict(part.split("=", 1) for part in last.split())
    assert list(fields) == KEYS, last
    for key in [*KEYS[:2], *KEYS[4:]]:
        value = float(fields[key])
        assert math.isfinite(value) and value > 0, last
    assert fields["oom_retries"] == fields["oom_labels_equal"] == "skipped", last
    assert "FAILED" not in proc.stdout
    assert out.read_text().strip().splitlines()[-1] == last
