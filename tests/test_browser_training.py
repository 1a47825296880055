"""The live training view in JupyterLab 4 (Debian's Chromium, Playwright), with a real fine-tune of a tiny BERT.

* ``%specnb specialize ... --method finetune`` with thousands of epochs: the view draws the loss as it comes;
  its Stop button, clicked while the cell runs, ends training after the current step — the cell finishes
  and the view says "stopped";
* the same through ``specnb.specialize`` and a kernel interrupt (■): stopped too, with the event listed;
* a short run to the end (held-out accuracy and macro-F1 per epoch), the notebook saved with JupyterLab's
  defaults (no widget state), the kernel shut down and the page reloaded: the output shows the static
  snapshot — the final charts as SVG and the figures — led by the hint to re-run the cell.

Screenshots go to build/screenshots/ (training_view.png, training_stopped.png, reopened_training.png).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lab_support import SCREENSHOTS, TIMEOUT_MS, VIEWPORT, NotebookPage, dump_on_failure, expect, write_notebook

pytestmark = pytest.mark.browser

HINT = "Saved snapshot · re-run this cell for the live view"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: Far more steps than any machine runs before the test clicks Stop (30 training texts: 4 batches an epoch); the
#: patience is as long, so only Stop or an interrupt ends them.
LONG_EPOCHS = 5000
SETUP, STOP_CELL, INTERRUPT_CELL, SHORT_CELL, AFTER = range(5)


#: A folder name that is markup: the base shows in the view's title and the snapshot, as text.
HOSTILE = "base <img src=x onerror=window.__pwned=1>"


def cells(base: str, hostile: str, out: Path) -> list[str]:
    data = ("import pandas as pd\nimport specnb\n%load_ext specnb\n"
            "good = ['great lovely superb', 'wonderful happy bright', 'kind warm sunny', 'fine brilliant joyful']\n"
            "bad = ['awful grim sad', 'dreadful cold bleak', 'gloomy nasty harsh', 'terrible dull bitter']\n"
            "reviews = pd.DataFrame({'text': [f'{w} day {i}' for i in range(5) for w in good + bad],\n"
            "                        'label': [y for i in range(5) for y in ['positive'] * 4 + ['negative'] * 4]})")
    return [
        data,
        f"%specnb specialize {base} --data reviews --task sentiment --as stopped --method finetune "
        f"--epochs {LONG_EPOCHS} --learning-rate 1e-3 --batch-size 8 --eval 0.25 --patience {LONG_EPOCHS} "
        f"--out {out / 'stopped'}",
        f"interrupted = specnb.specialize({base!r}, reviews, task='sentiment', alias='interrupted', "
        f"method='finetune', epochs={LONG_EPOCHS}, learning_rate=1e-3, batch_size=8, patience={LONG_EPOCHS}, "
        f"out={str(out / 'interrupted')!r})",
        f"short = specnb.specialize({hostile!r}, reviews, task='sentiment', alias='short', method='finetune', "
        f"epochs=3, learning_rate=1e-3, batch_size=8, eval=0.25, patience=5, out={str(out / 'short')!r})",
        "print(sorted(m.alias for m in specnb.registry), interrupted.training['stopped'])",
    ]


_START_CELL = """(index) => {
  const app = window.jupyterapp;
  const nb = app.shell.currentWidget.content;
  nb.activeCellIndex = index;
  nb.deselectAll();
  window.__specnbDone = false;
  app.commands.execute('notebook:run-cell').then(() => { window.__specnbDone = true; });
}"""


@pytest.fixture
def notebook(lab, browser, request, tiny_embed_dir, tmp_path):
    lab.shutdown_kernels()
    hostile = shutil.copytree(tiny_embed_dir, tmp_path / HOSTILE)
    path = write_notebook(lab.root_dir / "training_view.ipynb", cells(str(tiny_embed_dir), str(hostile), tmp_path / "out"))
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    nbpage = NotebookPage(context.new_page(), request.node.name)
    nbpage.path = path
    try:
        yield nbpage
    finally:
        context.close()


def _shot(nb: NotebookPage, locator, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(SCREENSHOTS / name), animations="disabled")


def _start(nb: NotebookPage, index: int):
    """Runs cell ``index`` without waiting for it; returns its training view once it shows a step."""
    nb.page.evaluate(_START_CELL, index)
    view = nb.output(index).locator(".specnb-training")
    expect(view.locator('[data-testid="progress"]')).to_contain_text("step ", timeout=TIMEOUT_MS)
    expect(view.locator('[data-testid="status"]')).to_have_attribute("data-status", "running")
    return view


def _text(value) -> str:
    """A saved output's text (nbformat may write it as a list of lines)."""
    return "".join(value) if isinstance(value, list) else value


def _not_pwned(nb: NotebookPage) -> None:
    assert nb.page.evaluate("() => window.__pwned") is None, "a text ran as code"
    assert nb.page.locator('.jp-OutputArea img[src="x"]').count() == 0, "a text became an element"


def _finished(nb: NotebookPage, index: int) -> None:
    """The cell's run ended (the kernel answered) and it raised nothing."""
    nb.page.wait_for_function("() => window.__specnbDone === true", timeout=TIMEOUT_MS)
    outputs = nb.page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.outputs"
                               ".toJSON().map((o) => o.output_type === 'error' ? o.ename + ': ' + o.evalue : '')", index)
    assert not any(outputs), outputs
    assert nb.page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.executionCount",
                            index) is not None


def test_stop_and_interrupt_end_training_while_the_cell_runs_and_the_saved_notebook_keeps_the_charts(lab, notebook):
    nb, page = notebook, notebook.page
    with dump_on_failure(nb, "training", lab):
        nb.open(f"{lab.url}/lab/tree/{nb.path.name}?token={lab.token}&reset")
        page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
        nb.run(SETUP)

        # -- Stop, clicked while the magic's cell trains -----------------------------------------------
        view = _start(nb, STOP_CELL)
        stop = view.locator('button[data-testid="stop"]')
        expect(stop).to_be_enabled()
        assert "stopped · finetune of" in view.locator('[data-testid="title"]').inner_text()
        # two epochs drawn (a condition, not a time): then Stop
        view.locator('[data-testid="eval-chart"] circle').nth(3).wait_for(state="attached", timeout=3 * TIMEOUT_MS)
        view.locator('[data-testid="loss-chart"] polyline').wait_for(state="attached")
        _shot(nb, view, "training_running.png")
        stop.click()
        _finished(nb, STOP_CELL)
        view = nb.output(STOP_CELL).locator(".specnb-training")  # redisplayed at the end
        status = view.locator('[data-testid="status"]')
        expect(status).to_have_attribute("data-status", "stopped")
        expect(status).to_contain_text("stopped at step")
        assert view.locator('button[data-testid="stop"]').is_hidden()
        stopped_at = int(status.inner_text().rsplit(" ", 1)[-1].replace(",", ""))
        assert 0 < stopped_at < LONG_EPOCHS * 4
        _shot(nb, view, "training_stopped.png")

        # -- a kernel interrupt (■) while specnb.specialize trains -------------------------------------
        view = _start(nb, INTERRUPT_CELL)
        nb.command("notebook:interrupt-kernel")
        _finished(nb, INTERRUPT_CELL)
        view = nb.output(INTERRUPT_CELL).locator(".specnb-training")
        expect(view.locator('[data-testid="status"]')).to_have_attribute("data-status", "stopped")
        expect(view.locator('[data-testid="events"]')).to_contain_text("interrupt: stopping after this step")

        # -- a short run to its end, with held-out metrics ---------------------------------------------
        nb.run(SHORT_CELL)
        view = nb.output(SHORT_CELL).locator(".specnb-training")
        expect(view.locator('[data-testid="status"]')).to_have_attribute("data-status", "finished")
        title = view.locator('[data-testid="title"]').inner_text()
        assert title.startswith("short · finetune of ") and HOSTILE in title, title
        _not_pwned(nb)
        view.locator('[data-testid="eval-chart"] circle').first.wait_for(state="attached")
        assert view.locator('[data-testid="eval-chart"] polyline').count() == 2  # accuracy and macro-F1
        expect(view.locator('[data-testid="result"]')).to_contain_text("held-out accuracy")
        _shot(nb, view, "training_view.png")
        result = nb.run(AFTER)
        text = next(o["text"] for o in result["outputs"] if o["type"] == "stream")
        assert "'interrupted'" in text and "'stopped'" in text and text.strip().endswith("True")

        # -- saved with JupyterLab's defaults, reopened without a kernel ---------------------------------
        nb.command("docmanager:save")
        page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
        saved = json.loads(nb.path.read_text(encoding="utf-8"))
        assert "widgets" not in saved["metadata"]
        for index, status in ((STOP_CELL, "stopped"), (SHORT_CELL, "finished")):
            bundles = [o["data"] for o in saved["cells"][index]["outputs"] if WIDGET_VIEW in o.get("data", {})]
            assert len(bundles) == 1, f"cell {index}: one training view"
            snapshot = _text(bundles[0]["text/html"])
            assert 'data-specnb-snapshot="TrainingWidget"' in snapshot and f'data-status="{status}"' in snapshot
        short = _text(next(o["data"]["text/html"] for o in saved["cells"][SHORT_CELL]["outputs"]
                           if WIDGET_VIEW in o.get("data", {})))
        assert short.count("<svg") == 2 and "base &lt;img src=x" in short and "<img" not in short
        lab.shutdown_kernels()
        page.reload(wait_until="domcontentloaded")
        nb.open(f"{lab.url}/lab/tree/{nb.path.name}?token={lab.token}")
        assert page.evaluate("() => window.jupyterapp.hasPlugin('specnb:saved-snapshots')")
        fallback = nb.output(SHORT_CELL).locator('.specnb-saved-fallback [data-specnb-snapshot="TrainingWidget"]')
        fallback.wait_for(state="visible")
        assert fallback.locator(".specnb-saved-hint").inner_text().strip() == HINT
        assert fallback.locator("svg").count() == 2 and fallback.locator("svg polyline").count() == 3
        for words in ("short · finetune of", HOSTILE, "finished", "best held-out accuracy", "held-out accuracy"):
            assert words in fallback.inner_text(), words
        _not_pwned(nb)
        stopped = nb.output(STOP_CELL).locator('.specnb-saved-fallback [data-specnb-snapshot="TrainingWidget"]')
        stopped.wait_for(state="visible")
        assert "stopped at step" in stopped.inner_text() and stopped.locator("svg").count() == 2
        assert not [t for t in page.locator(".jp-OutputArea-output").all_inner_texts()
                    if "Error displaying widget" in t]
        _shot(nb, nb.output(SHORT_CELL), "reopened_training.png")
