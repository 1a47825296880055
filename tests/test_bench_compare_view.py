"""bench/compare_view.py runs end to end on a small comparison and prints its line of ratios. The sizes are
checked, not the speeds: how fast it ran is the bench's to report (bench/RESULTS.md), a test's to not depend on."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "compare_view.py"


def test_compare_view_bench_prints_its_figures(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--items", "25000"], capture_output=True, text=True,
                            timeout=900, env={**os.environ, "SPECNB_HOME": str(tmp_path)})  # a hang guard
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"patterns_vs_items=([\d.]+) view_build_s=([\d.]+) state_kb=([\d.]+) output_kb=([\d.]+) "
                         r"page_kb=([\d.]+) page_ms=([\d.]+)", last)
    assert match, last
    ratio, build_s, state_kb, output_kb, page_kb, page_ms = map(float, match.groups())
    assert all(math.isfinite(v) and v >= 0 for v in (ratio, build_s, page_ms))  # measured; how fast is no test's
    assert state_kb < 250 and output_kb < 20 and page_kb < 20
