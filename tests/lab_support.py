"""Helpers for the browser tests of the notebook layer: a JupyterLab server on a free port, Debian's
Chromium driven by Playwright, and a page object that runs notebook cells through ``window.jupyterapp``.

Everything the server, the kernel and the browser write goes under temp dirs (see conftest.py); the
screenshots and failure dumps go to build/screenshots/.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}
#: The limit of every wait on the page: a guard against a hang, never a speed requirement. Minutes: the machine
#: that runs `make test` may have 2 slow CPUs shared with other work, and JupyterLab in Chromium can take a
#: minute there to draw a notebook.
TIMEOUT_MS = 180_000
#: How long the JupyterLab server may take to answer once started (a hang guard too), and one API call.
START_S = 300
API_S = 120


def expect(locator, message: str | None = None):
    """Playwright's auto-retrying assertions with `TIMEOUT_MS` as their limit (Playwright's own default is 5 s,
    which a loaded machine passes; imported late: without playwright the browser modules skip)."""
    from playwright.sync_api import expect as _expect

    _expect.set_options(timeout=TIMEOUT_MS)
    return _expect(locator, message)


def chromium_or_skip() -> str:
    """Debian's Chromium; under CI=1 its absence fails the test, elsewhere it skips with the reason."""
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else (shutil.which("chromium") or shutil.which("chromium-browser"))
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser tests: .ci/run installs chromium")
        pytest.skip("no chromium found (apt-get install chromium); the JupyterLab browser tests did not run")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser tests: playwright (Python) is missing")
        pytest.skip("playwright for Python is not installed; the JupyterLab browser tests did not run")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the server ---------------------------------------------------------------------------------------

class LabServer:
    """``python -m jupyterlab`` (the venv's, so the kernel is the venv's too) on 127.0.0.1."""

    def __init__(self, root_dir: Path, config_dir: Path, log_path: Path):
        self.root_dir = root_dir
        self.config_dir = config_dir
        self.log_path = log_path
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def _write_config(self) -> None:
        # No "Jupyter news" pop-up (--LabApp.news_url=None is not enough).
        labconfig = self.config_dir / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        # Every cell in the DOM (no windowing), so locators find outputs of cells scrolled away.
        settings = self.config_dir / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))

    def start(self, timeout: float = START_S) -> LabServer:
        self._write_config()
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(self.config_dir), PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.root_dir}", "--LabApp.expose_app_in_browser=True",
               "--JupyterNotebookApp.expose_app_in_browser=True"]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=self.root_dir, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterlab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=API_S) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyterlab was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def api(self, method: str, path: str):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=API_S) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Stops every session's kernel (each test opens its notebook with a fresh one)."""
        for session in self.api("GET", "/api/sessions") or []:
            with contextlib.suppress(urllib.error.URLError, OSError):
                self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels") or []:
            with contextlib.suppress(urllib.error.URLError, OSError):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):  # lets the server stop its kernels itself
                self.shutdown_kernels()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        # Anything the server started in its session (kernels) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, 15)
        if self._log is not None:
            self._log.close()
        self.proc = None


# -- the notebook -------------------------------------------------------------------------------------

def write_notebook(path: Path, sources: list[str]) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)
    return path


# -- the page -----------------------------------------------------------------------------------------

_RUN_CELL = """async (index) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  const nb = panel.content;
  nb.activeCellIndex = index;
  nb.deselectAll();
  await app.commands.execute('notebook:run-cell');
  const cell = nb.widgets[index];
  // The command resolves when the kernel has answered; the outputs are in the model by then.
  const outputs = cell.model.outputs.toJSON().map((o) => ({
    type: o.output_type,
    text: o.output_type === 'stream' ? String(o.text) :
          o.output_type === 'error' ? `${o.ename}: ${o.evalue}` :
          String((o.data || {})['text/plain'] || ''),
    mimes: Object.keys(o.data || {}),
  }));
  return { count: cell.model.executionCount, outputs };
}"""

_KERNEL_READY = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) return false;
  await kernel.info;
  return kernel.status === 'idle';
}"""


class NotebookPage:
    """One Playwright page showing one notebook, with the cells run through ``window.jupyterapp``."""

    def __init__(self, page, name: str):
        self.page = page
        self.name = name
        self.path: Path | None = None  # the .ipynb on disk
        self.console: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.console.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"[pageerror] {e}"))

        def on_dialog(dialog):
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            with contextlib.suppress(Exception):
                dialog.dismiss()

        page.on("dialog", on_dialog)

    def open(self, url: str) -> None:
        self.page.goto(url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
        self.page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
            " && window.jupyterapp.shell.currentWidget.sessionContext"
            " && window.jupyterapp.shell.currentWidget.content"
            " && window.jupyterapp.shell.currentWidget.content.widgets.length > 0",
            timeout=TIMEOUT_MS, polling=200)
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not self.page.evaluate(_KERNEL_READY):
            if time.monotonic() > deadline:
                raise AssertionError("the notebook's kernel did not become idle")
            self.page.wait_for_timeout(200)

    def cell(self, index: int):
        """The cell's locator (every cell is in the DOM: windowing is off)."""
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def output(self, index: int):
        return self.cell(index).locator(".jp-OutputArea")

    def run(self, index: int, allow_error: bool = False) -> dict:
        """Runs cell ``index`` and waits for the kernel's answer; fails on an error output."""
        result = self.page.evaluate(_RUN_CELL, index)
        assert result["count"] is not None, f"cell {index} did not run: {result}"
        if not allow_error:
            errors = [o["text"] for o in result["outputs"] if o["type"] == "error"]
            assert not errors, f"cell {index} raised: {errors}"
        return result

    def command(self, name: str, args: dict | None = None):
        return self.page.evaluate("([n, a]) => window.jupyterapp.commands.execute(n, a || {})", [name, args])

    def dump(self, label: str) -> None:
        """A screenshot and the console of the page, for a failed test."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        stem = SCREENSHOTS / f"failure-{label}"
        with contextlib.suppress(Exception):
            self.page.screenshot(path=str(stem.with_suffix(".png")), full_page=True)
        text = "\n".join(self.console) + "\n\ndialogs:\n" + "\n".join(self.dialogs)
        stem.with_suffix(".txt").write_text(text)


@contextlib.contextmanager
def dump_on_failure(nbpage: NotebookPage, label: str, server: LabServer | None = None):
    try:
        yield
    except BaseException:
        nbpage.dump(label)
        if server is not None:
            with contextlib.suppress(OSError), open(SCREENSHOTS / f"failure-{label}.txt", "a") as f:
                f.write("\n\nserver log (tail):\n" + server.log_tail(8000))
        raise
