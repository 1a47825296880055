"""The notebook after the run, in JupyterLab 4 and Notebook 7 (Debian's Chromium, Playwright).

A notebook runs the model panel, a compare view (with a progress bar) and a pipeline view, is saved,
its kernel shut down, and the page reloaded:

* saved with JupyterLab's defaults (no widget state), every specnb output shows its static snapshot,
  led by the hint to re-run the cell, and no output reads "Error displaying widget" — also in
  Notebook 7, opening the same file;
* saved with "Save Widget State Automatically", the reopened compare view draws its charts and keeps
  the chosen chart tab, and the model panel's Unload buttons say they need a running kernel.

The README's screenshots of the reopened notebook are written to build/screenshots/.
"""

from __future__ import annotations

import json

import pytest
from lab_support import (
    API_S,
    ROOT,
    SCREENSHOTS,
    TIMEOUT_MS,
    VIEWPORT,
    LabServer,
    NotebookPage,
    dump_on_failure,
    write_notebook,
)

pytestmark = pytest.mark.browser

GUESS = ('import specnb\nspecnb.config.progress_delay = 0  # a progress bar for every run\n'
         'specnb.load(lambda texts: ["en" if " the " in f" {t} " else "fr" for t in texts], alias="guess", '
         'task="langid")')
LOAD_EXT, LOAD_LANGID, LOAD_GUESS, PANEL, DATA, COMPARE, PIPE = range(7)
CELLS = [
    "%load_ext specnb",
    "%specnb load langid",
    GUESS,
    "%specnb models",
    "from specnb.datasets import langid_sentences\ndf = langid_sentences()\nmixed = df.sample(40, random_state=1)",
    "%specnb compare langid --models langid,guess --data df --text text --label label",
    "%%specnb pipe triage --sample mixed\nlang = langid(text)\n"
    "route lang: en -> lang2 = langid(text); fr, de -> skip; * -> skip",
]
#: The cells whose output is a specnb widget, and the snapshot each must fall back to.
SNAPSHOTS = {PANEL: "ModelPanel", COMPARE: "CompareView", PIPE: "PipelineView"}
HINT = "Saved snapshot · re-run this cell for the live view"
WIDGET_SETTINGS = "/lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin"
LABEXTENSION = ROOT / ".venv" / "share" / "jupyter" / "labextensions" / "specnb"


# chromium, lab and browser: tests/conftest.py

@pytest.fixture
def page_factory(browser, request):
    contexts = []

    def new(label: str) -> NotebookPage:
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return NotebookPage(context.new_page(), f"{request.node.name}-{label}")

    try:
        yield new
    finally:
        for context in contexts:
            context.close()


def _save_widget_state(lab: LabServer, on: bool) -> None:
    """JupyterLab's "Save Widget State Automatically" (read by a page when it loads)."""
    import urllib.request

    body = json.dumps({"raw": json.dumps({"saveState": on})}).encode()
    req = urllib.request.Request(f"{lab.url}{WIDGET_SETTINGS}", data=body, method="PUT",
                                 headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=API_S) as r:
        assert r.status in (200, 204)


def _open(nb: NotebookPage, url: str) -> None:
    nb.open(url)
    assert nb.page.evaluate("() => window.jupyterapp.hasPlugin('specnb:saved-snapshots')"), (
        f"specnb's JupyterLab extension is not installed in this environment (make install builds it and links "
        f"it to {LABEXTENSION})")


def _run_and_save(lab: LabServer, nb: NotebookPage, url: str) -> dict:
    _open(nb, url)
    nb.page.evaluate("() => window.jupyterapp.shell.collapseLeft && window.jupyterapp.shell.collapseLeft()")
    for index in range(len(CELLS)):
        nb.run(index)
    for index in SNAPSHOTS:  # every view is live before the save
        nb.output(index).locator(".specnb").first.wait_for(state="visible")
    nb.command("docmanager:save")
    nb.page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
    lab.shutdown_kernels()
    return json.loads(nb.path.read_text(encoding="utf-8"))


def _shot(nb: NotebookPage, locator, name: str) -> None:
    """A README screenshot of ``locator``, in a window tall enough to hold all of it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    nb.page.set_viewport_size({"width": VIEWPORT["width"], "height": 2400})
    try:
        locator.scroll_into_view_if_needed()
        locator.screenshot(path=str(SCREENSHOTS / name))
    finally:
        nb.page.set_viewport_size(VIEWPORT)


def _widget_texts(nb: NotebookPage) -> list[str]:
    return nb.page.locator(".jp-OutputArea-output").all_inner_texts()


def _assert_snapshots(nb: NotebookPage, where: str) -> None:
    """Each specnb output shows its snapshot (hint first), and no output reads as a widget error."""
    for index, kind in SNAPSHOTS.items():
        fallback = nb.output(index).locator(f'.specnb-saved-fallback [data-specnb-snapshot="{kind}"]')
        fallback.wait_for(state="visible")
        assert fallback.locator(".specnb-saved-hint").inner_text().strip() == HINT, where
    # The progress bars of the compare run were closed when they finished: their outputs hide.
    nb.page.wait_for_function(
        "() => ![...document.querySelectorAll('.jp-OutputArea-output')]"
        ".some((o) => o.offsetParent !== null && /Loading widget/.test(o.textContent))")
    broken = [t for t in _widget_texts(nb) if "Error displaying widget" in t]
    assert broken == [], f"{where}: {broken}"
    summary = nb.output(COMPARE).locator(".specnb-saved-fallback table").first
    assert "langid" in summary.inner_text() and "guess" in summary.inner_text(), where
    stages = nb.output(PIPE).locator(".specnb-saved-fallback").inner_text()
    assert "triage" in stages and "route" in stages, where


def test_saved_without_widget_state_reopens_with_snapshots(lab, page_factory):
    _save_widget_state(lab, False)
    lab.shutdown_kernels()
    nb = page_factory("lab")
    nb.path = write_notebook(lab.root_dir / "saved_default.ipynb", CELLS)
    url = f"{lab.url}/lab/tree/{nb.path.name}?token={lab.token}&reset"
    with dump_on_failure(nb, "saved-default", lab):
        saved = _run_and_save(lab, nb, url)
        assert "widgets" not in saved["metadata"], "JupyterLab's default saves no widget state"
        # the compare run showed progress bars; finished, none is left in the saved file as a widget
        compare_widgets = [o for o in saved["cells"][COMPARE]["outputs"]
                           if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert len(compare_widgets) == 1, "only the compare view (each finished progress bar was closed)"
        nb.page.reload(wait_until="domcontentloaded")
        _open(nb, url.replace("&reset", ""))
        _assert_snapshots(nb, "JupyterLab")
        _shot(nb, nb.output(COMPARE), "reopened_compare.png")
        # a re-run cell brings the live view back
        for index in (LOAD_EXT, LOAD_LANGID, LOAD_GUESS, DATA, COMPARE):
            nb.run(index)
        live = nb.output(COMPARE).locator('.specnb-compare [data-testid="summary"]')
        live.wait_for(state="visible")
        assert nb.output(COMPARE).locator(".specnb-saved-fallback").count() == 0

    lab.shutdown_kernels()
    nb7 = page_factory("nb7")
    nb7.path = nb.path
    with dump_on_failure(nb7, "saved-default-nb7", lab):
        # the file as saved above, before the re-run: reopen it from disk as saved
        nb7.path.write_text(json.dumps(saved), encoding="utf-8")
        _open(nb7, f"{lab.url}/notebooks/{nb.path.name}?token={lab.token}")
        assert nb7.page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"
        _assert_snapshots(nb7, "Notebook 7")


def test_saved_widget_state_draws_charts_and_marks_the_kernel_gone(lab, page_factory):
    _save_widget_state(lab, True)
    lab.shutdown_kernels()
    nb = page_factory("state")
    nb.path = write_notebook(lab.root_dir / "saved_state.ipynb", CELLS)
    url = f"{lab.url}/lab/tree/{nb.path.name}?token={lab.token}&reset"
    try:
        with dump_on_failure(nb, "saved-state", lab):
            _open(nb, url)
            nb.page.evaluate("() => window.jupyterapp.shell.collapseLeft && window.jupyterapp.shell.collapseLeft()")
            for index in range(len(CELLS)):
                nb.run(index)
            view = nb.output(COMPARE).locator(".specnb-compare")
            view.locator(".specnb-chart .main-svg").first.wait_for(state="visible")
            assert view.locator('[data-testid="offline"]').is_hidden(), "live: no kernel notice"
            tabs = view.locator('[role="tab"]')
            order = [tabs.nth(i).get_attribute("data-name") for i in range(tabs.count())]
            assert len(order) >= 2
            tabs.nth(1).click()
            view.locator(f'.specnb-chart[data-name="{order[1]}"] .main-svg').first.wait_for(state="visible")
            nb.command("docmanager:save")
            nb.page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
            saved = json.loads(nb.path.read_text(encoding="utf-8"))
            assert saved["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
            lab.shutdown_kernels()

            nb.page.reload(wait_until="domcontentloaded")
            _open(nb, url.replace("&reset", ""))
            view = nb.output(COMPARE).locator(".specnb-compare")
            view.wait_for(state="visible")
            tabs = view.locator('[role="tab"]')
            assert [tabs.nth(i).get_attribute("data-name") for i in range(tabs.count())] == order
            chosen = view.locator(f'.specnb-chart[data-name="{order[1]}"]')
            chosen.locator(".main-svg").first.wait_for(state="visible")  # drawn without the kernel
            assert tabs.nth(1).get_attribute("aria-selected") == "true"
            assert view.locator(".specnb-chart .specnb-error").count() == 0
            view.locator('[data-testid="offline"]').wait_for(state="visible")  # filters and pages need a kernel
            panel = nb.output(PANEL).locator(".specnb-model-panel")
            panel.locator('[data-testid="offline"]').wait_for(state="visible")
            for button in panel.locator('button[data-testid="unload"]').all():
                assert button.is_disabled()
                assert "running kernel" in (button.get_attribute("title") or "")
            _shot(nb, view, "reopened_state_compare.png")
        lab.shutdown_kernels()
        nb7 = page_factory("state-nb7")
        with dump_on_failure(nb7, "saved-state-nb7", lab):
            _open(nb7, f"{lab.url}/notebooks/{nb.path.name}?token={lab.token}")
            view = nb7.output(COMPARE).locator(".specnb-compare")
            view.locator(f'.specnb-chart[data-name="{order[1]}"] .main-svg').first.wait_for(state="visible")
            nb7.output(PANEL).locator('.specnb-model-panel [data-testid="offline"]').wait_for(state="visible")
    finally:
        _save_widget_state(lab, False)


PIPE_CELLS = [
    "%load_ext specnb\nimport pandas as pd\nimport specnb\n"
    "reviews = pd.DataFrame({'text': ['I love this phone.', 'It is a phone.', 'Worst purchase ever.']})",
    "%specnb load smollm2",
    "%specnb unload smollm2",
    "%%specnb pipe mood --sample reviews\nmood = cascade(vader, smollm2, threshold=0.9)(text)",
    "%specnb models",
    "llm = specnb.get('smollm2')\nanswer = llm.predict(['Name a colour.'])[0]\nprint(llm.task, type(answer).__name__)",
]


def test_a_pipeline_that_loads_a_generalist_leaves_its_task_alone(lab, page_factory):
    """A cascade stage asks smollm2 for sentiment per call: the model it loads stays a text generator."""
    lab.shutdown_kernels()
    nb = page_factory("pipe-task")
    nb.path = write_notebook(lab.root_dir / "pipe_task.ipynb", PIPE_CELLS)
    with dump_on_failure(nb, "pipe-task", lab):
        _open(nb, f"{lab.url}/lab/tree/{nb.path.name}?token={lab.token}&reset")
        for index in range(len(PIPE_CELLS)):
            nb.run(index)
        nb.output(3).locator(".specnb-pipeline").wait_for(state="visible")
        row = nb.output(4).locator('.specnb-model-panel tr[data-testid="model-row"][data-alias="smollm2"]')
        row.wait_for(state="visible")
        assert row.locator("td").nth(1).inner_text().strip() == "generate"
        out = nb.output(5).inner_text().strip()
        assert out == "generate Generation", out
