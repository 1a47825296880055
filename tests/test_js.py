"""The TypeScript front ends type-check, and the built bundles the widgets load are those of the sources."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "js"
STATIC = ROOT / "specnb" / "static"

#: Subprocess limits: guards against a hang only (tsc on 2 loaded CPUs takes a while).
HANG_S = 600


def _tool(name: str) -> Path:
    path = JS / "node_modules" / ".bin" / name
    if not path.exists() or shutil.which("node") is None:
        reason = f"{path} or node is missing: run `make js` (Node.js 18+ and npm)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def test_typescript_type_checks():
    result = subprocess.run([str(_tool("tsc")), "--noEmit", "-p", str(JS)], capture_output=True, text=True,
                            timeout=HANG_S)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bundles_are_built_from_the_current_sources(tmp_path):
    """`make js` output matches a fresh esbuild run of js/src (so a stale bundle cannot pass the tests)."""
    _tool("esbuild")
    env = {**os.environ, "SPECNB_STATIC_OUT": str(tmp_path)}
    result = subprocess.run(["node", "build.mjs"], cwd=JS, capture_output=True, text=True, timeout=HANG_S, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("model_panel.js", "compare_view.js", "pipeline_view.js", "training_view.js", "widgets.css"):
        assert (tmp_path / name).read_bytes() == (STATIC / name).read_bytes(), f"{name} is stale: run `make js`"


@pytest.mark.parametrize("name", ["model_panel.js", "compare_view.js", "pipeline_view.js", "training_view.js"])
def test_bundles_are_small_esm_without_html_injection(name):
    text = (STATIC / name).read_text(encoding="utf-8")
    assert len(text) < 60_000
    assert "export" in text and "render" in text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
        assert sink not in text, f"{name} uses {sink}: user and model text must reach the DOM as text"


LAB = JS / "lab"
LABEXTENSION = ROOT / "specnb" / "labextension"


def test_lab_extension_type_checks_and_is_built():
    """js/lab type-checks, and its build is what Jupyter loads: a federated extension named specnb."""
    tsc = LAB / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        reason = f"{tsc} is missing: run `make js`"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    result = subprocess.run([str(tsc), "--noEmit", "-p", str(LAB)], capture_output=True, text=True, timeout=HANG_S)
    assert result.returncode == 0, result.stdout + result.stderr
    import json

    meta = json.loads((LABEXTENSION / "package.json").read_text(encoding="utf-8"))
    assert meta["name"] == "specnb" and meta["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")
    assert (LABEXTENSION / meta["jupyterlab"]["_build"]["load"]).is_file()
    source = (LAB / "src" / "index.ts").read_text(encoding="utf-8")
    from specnb.widgets._base import SNAPSHOT_MARKER

    assert f'"{SNAPSHOT_MARKER}"' in source, "the extension looks for the marker the snapshots carry"
    assert "innerHTML" not in source, "the snapshot goes through JupyterLab's renderHTML (sanitised when untrusted)"
