"""Binder, verified here: what mybinder.org builds from binder/ runs every notebook, within its memory.

The module fixture emulates repo2docker on a copy of the working tree (tracked and untracked files that git
does not ignore: what a push would publish, without .venv, node_modules or build output):

1. a fresh ``python -m venv``, its bin/ first on PATH, and ``pip install -r binder/requirements.txt`` run
   from the repository root (so ``-e .[...]`` is that copy), with nothing from the test environment;
2. ``bash binder/postBuild`` from the repository root, with the same PATH (the env's python, pip, npm);
3. HOME is a fresh folder and none of the variables conftest.py points elsewhere (SPECNB_HOME, HF_HOME, XDG_*,
   JUPYTER_*, IPYTHONDIR, MPLCONFIGDIR) is set, as on Binder: the cache postBuild warms is the one the
   kernel reads. pip's and npm's caches go to build/binder-cache/ (kept across runs, never in ~).

Then each notebook in notebooks/ runs in that environment's own kernel (tests/binder_run.py, started with
the env's python), top to bottom, in the notebook's folder as on Binder: no cell may fail, the outputs must
show what tests/test_notebooks.py expects of the same notebook, and the kernel's peak resident set
(getrusage RUSAGE_CHILDREN ru_maxrss, cross-checked with /proc VmHWM) must stay under 1.5e9 bytes: Binder's
limit is 2 GiB (2,147,483,648 bytes) for the whole container, Jupyter server included. The figures go to stdout
and to binder-memory.json in this module's temp folder.

Where download.pytorch.org cannot be reached (this machine: only PyPI), pip is told not to retry
(PIP_RETRIES=0): the requirements' --extra-index-url line, which mybinder.org needs for the CPU torch, then
costs one failed lookup per package instead of five with back-off; torch==2.13.0+cpu comes from pip's
find-links.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_notebooks import EXPECTED

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
DRIVER = Path(__file__).with_name("binder_run.py")
CACHE = ROOT / "build" / "binder-cache"
#: Binder gives the container 2 GiB (mybinder.org's "2G" is JupyterHub's 1024-based G); 1.5e9 bytes (1.40 GiB)
#: for the heaviest kernel leaves some 650 MB to the Jupyter server and the rest of the container.
PEAK_RSS_LIMIT = 1.5e9
#: Hang guards only (the cells have their own 1800 s guard in binder_run.py).
INSTALL_TIMEOUT_S = 3600
NOTEBOOK_TIMEOUT_S = 3 * 3600

pytestmark = [pytest.mark.real, pytest.mark.binder]

# What conftest.py (or the caller's shell) redirects; on Binder none is set and all follow HOME.
_UNSET = ("SPECNB_HOME", "HF_HOME", "IPYTHONDIR", "MPLCONFIGDIR", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME",
          "CONDA_PREFIX", "PIP_CACHE_DIR", "PIP_TARGET", "PIP_PREFIX", "PIP_USER", "npm_config_cache",
          "NPM_CONFIG_CACHE", "npm_config_prefix", "NPM_CONFIG_PREFIX")
_UNSET_PREFIXES = ("XDG_", "JUPYTER_", "HF_HUB_", "TRANSFORMERS_", "TORCH_HOME")


def _reachable(host: str, port: int = 443, timeout: float = 5.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _copy_tree(dest: Path) -> None:
    """The files a push would publish: tracked ones that still exist, and untracked ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def _binder_env(venv: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in _UNSET and not k.startswith(_UNSET_PREFIXES)}
    env.update(HOME=str(home), VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
               PIP_CACHE_DIR=str(CACHE / "pip"), npm_config_cache=str(CACHE / "npm"), PYTHONUNBUFFERED="1")
    if not _reachable("download.pytorch.org"):
        env["PIP_RETRIES"] = "0"
    return env


def _run_logged(cmd: list[str], *, cwd: Path, env: dict, log: Path, timeout: float) -> float:
    start = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    took = time.monotonic() - start
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode} (log {log}):\n{log.read_text()[-6000:]}")
    return took


def _report(config: pytest.Config, line: str) -> None:
    """A line in the test output, whether or not pytest captures it (-s not needed)."""
    capman = config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        print(f"\n[binder] {line}", flush=True)


@pytest.fixture(scope="module")
def binder(tmp_path_factory, pytestconfig):
    """The built Binder environment: ``.python``, ``.repo`` (the copy), ``.env``, ``.out``, ``.results``."""
    if shutil.which("npm") is None or shutil.which("git") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the Binder test: npm and git are needed (repo2docker images ship Node.js)")
        pytest.skip("npm or git is missing; the Binder build (binder/postBuild runs npm ci) did not run")
    base = tmp_path_factory.mktemp("binder")
    repo, venv, home, out = base / "repo", base / "venv", base / "home", base / "out"
    for folder in (repo, home, out):
        folder.mkdir()
    _copy_tree(repo)
    env = _binder_env(venv, home)
    py = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    install_s = _run_logged([str(py), "-m", "pip", "install", "-r", "binder/requirements.txt"], cwd=repo, env=env,
                            log=out / "pip-install.log", timeout=INSTALL_TIMEOUT_S)
    postbuild_s = _run_logged(["bash", "binder/postBuild"], cwd=repo, env=env, log=out / "postBuild.log",
                              timeout=INSTALL_TIMEOUT_S)
    _report(pytestconfig, f"pip install -r binder/requirements.txt: {install_s:.0f} s; binder/postBuild: {postbuild_s:.0f} s "
            f"(logs in {out})")

    class Binder:
        pass

    b = Binder()
    b.python, b.repo, b.env, b.out, b.results = py, repo, env, out, {}
    b.timings = {"pip_install_s": round(install_s, 1), "postbuild_s": round(postbuild_s, 1)}
    try:
        yield b
    finally:
        # Gigabytes (torch, node_modules, the model cache): keep only the logs, results and executed notebooks.
        for folder in (venv, repo, home):
            shutil.rmtree(folder, ignore_errors=True)


def test_binder_env_serves_the_lab_extension(binder):
    """postBuild built the widget bundles and linked the JupyterLab extension where the env's Jupyter finds it."""
    assert sorted(p.name for p in (binder.repo / "specnb" / "static").glob("*.js"))
    listing = subprocess.run([str(binder.python), "-m", "jupyter", "labextension", "list"], cwd=binder.repo,
                             env=binder.env, capture_output=True, text=True, timeout=300)
    text = listing.stdout + listing.stderr
    line = next((ln for ln in text.splitlines() if "specnb" in ln), "")
    assert "enabled" in line and "OK" in line, text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_the_binder_env(binder, path, pytestconfig):
    name = path.name
    notebook = binder.repo / "notebooks" / name
    result_json = binder.out / f"{path.stem}.json"
    _run_logged([str(binder.python), str(DRIVER), str(notebook), str(notebook.parent), str(result_json),
                 str(binder.out / name)], cwd=notebook.parent, env=binder.env, log=binder.out / f"{path.stem}.log",
                timeout=NOTEBOOK_TIMEOUT_S)
    result = json.loads(result_json.read_text())
    binder.results[name] = {k: v for k, v in result.items() if k != "cells"}
    summary = binder.out / "binder-memory.json"
    summary.write_text(json.dumps({"limit_bytes": PEAK_RSS_LIMIT, **binder.timings, "notebooks": binder.results},
                                  indent=2))
    peak = result["peak_rss_bytes"]
    _report(pytestconfig, f"{name}: peak RSS {peak / 2**20:,.0f} MiB ({peak / 1e9:.2f} GB; anonymous {result['peak_anon_bytes'] / 2**20:,.0f}"
            f" MiB, file-backed {result['peak_file_bytes'] / 2**20:,.0f} MiB), {result['wall_s']:.0f} s -> {summary}")

    assert result["error"] is None, result["error"]
    assert result["kernel_argv0"] == str(binder.python), "the kernel was not the Binder env's python"
    executed = json.loads((binder.out / name).read_text())
    outputs = [o for cell in executed["cells"] if cell["cell_type"] == "code" for o in cell["outputs"]]
    text = "".join("".join(o.get("data", {}).get("text/plain", "")) + "".join(o.get("text", "")) for o in outputs)
    for expected in EXPECTED.get(name, []):
        assert expected in text, expected


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_fits_in_binder_memory(binder, path):
    """The kernel's peak resident set stays under `PEAK_RSS_LIMIT` (measured by the run above)."""
    result = binder.results.get(path.name)
    if result is None:
        pytest.fail(f"{path.name} did not run in the Binder env (see test_notebook_runs_in_the_binder_env)")
    peak = result["peak_rss_bytes"]
    cells = json.loads((binder.out / f"{path.stem}.json").read_text()).get("cells", [])
    heaviest = max(cells, key=lambda c: c.get("sampled_rss", 0), default={})
    assert 0 < peak < PEAK_RSS_LIMIT, (f"{path.name}: the kernel peaked at {peak:,} bytes, over {PEAK_RSS_LIMIT:,.0f}; "
                                       f"heaviest cell {heaviest.get('cell')} ({heaviest})")
