"""The demo's evidence notebook as an offline HTML page, and the demo's closing block (specnb.demo_notebook).

The full demo (`specnb demo`) runs once, in tests/test_cli.py; the evidence notebook itself runs in
tests/test_notebooks.py, which also checks its HTML page. These tests cover the pieces on small inputs."""

import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

import specnb
from specnb.demo_notebook import NOTEBOOK, NOTEBOOK_HTML, closing_block, notebook_html, run_notebook_demo
from specnb.widgets._base import SAVED_HINT, SNAPSHOT_MARKER

TEXTS = ["I love this phone", "terrible battery, awful", "the screen is great", "worst purchase ever",
         "quite nice overall", "bad bad bad", "love love love", "awful"]
GOLD = ["pos", "neg", "pos", "neg", "pos", "neg", "pos", "neg"]
#: Any script element that loads its code from elsewhere.
REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc\s*=", re.IGNORECASE)


def keyword_model(texts):
    return [("pos", 0.9) if any(w in t for w in ("love", "great")) else ("neg", 0.6) for t in texts]


def always_neg(texts):
    return [("neg", 0.5) for _ in texts]


def offline_checks(page: str) -> None:
    """What every page `notebook_html` writes must hold: nothing fetched from the network, no widget
    placeholder waiting for a widget manager (plotly.js's own text, inlined, aside: it names map tiles
    that no chart here draws)."""
    from specnb._compare.charts import plotly_js

    page = page.replace(plotly_js(), "")
    assert not REMOTE_SCRIPT.search(page), REMOTE_SCRIPT.search(page)
    assert "cdn.jsdelivr" not in page and "unpkg.com" not in page and "cdnjs" not in page
    assert "application/vnd.jupyter.widget-view+json" not in page and "Error displaying widget" not in page


def test_the_evidence_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert notebook.nbformat == 4 and notebook.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


def test_a_page_shows_widget_snapshots_and_plotly_figures_without_the_network():
    snapshot = f'<div class="specnb-saved" {SNAPSHOT_MARKER}="CompareView">summary table here</div>'
    widget = new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 1},
        "text/html": snapshot, "text/plain": "CompareView(...)"})
    figure = new_output("display_data", data={
        "application/vnd.plotly.v1+json": {"data": [{"type": "bar", "x": ["a"], "y": [1]}],
                                           "layout": {"title": {"text": "Reliability </script><b>"}}},
        "text/plain": "Figure"})
    notebook = new_notebook(cells=[new_markdown_cell("# Evidence\n\nUSD 0.10 per hour"),
                                   new_code_cell("view", outputs=[widget]), new_code_cell("fig", outputs=[figure])],
                            metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}})
    page = notebook_html(notebook, title="evidence")
    offline_checks(page)
    assert "summary table here" in page and "<title>evidence</title>" in page
    assert page.count("Plotly.newPlot(") == 1 and 'id="specnb-notebook-figure-1"' in page
    assert "Reliability \\u003c/script\\u003e\\u003cb\\u003e" in page  # the figure's text cannot close the script
    from specnb._compare.charts import plotly_js

    assert plotly_js()[-2000:] in page  # plotly.js inlined, once
    assert page.count(plotly_js()[-2000:]) == 1
    assert "application/vnd.plotly.v1+json" in notebook.cells[2].outputs[0].data  # the node is left as it was


def test_a_page_without_figures_carries_no_plotly_js():
    notebook = new_notebook(cells=[new_code_cell("1 + 1", outputs=[new_output(
        "execute_result", data={"text/plain": "2"}, execution_count=1)])])
    page = notebook_html(notebook)
    offline_checks(page)
    assert "Plotly" not in page and len(page) < 1_000_000


@pytest.mark.real
def test_run_notebook_demo_executes_a_notebook_in_a_kernel_and_writes_its_page(tmp_path):
    """A compare view (the widget) and a plotly figure, run in a real kernel, then written offline."""
    path = tmp_path / "small.ipynb"
    nbformat.write(new_notebook(cells=[
        new_markdown_cell("A small comparison"),
        new_code_cell("import specnb\n"
                      "def keywords(texts):\n"
                      "    return [('pos', 0.9) if 'love' in t else ('neg', 0.6) for t in texts]\n"
                      f"cmp = specnb.compare('classify', {TEXTS!r}, [keywords], labels={GOLD!r}, store=False)\n"
                      "cmp"),
        new_code_cell("cmp.figures()['quality_vs_latency']"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}), path)
    said = []
    page = run_notebook_demo(tmp_path / "out", notebook=path, say=said.append)
    assert page == tmp_path / "out" / NOTEBOOK_HTML and page.is_file()
    assert re.search(r"2 code cells ran in \d+ s; notebook: .*specialist-vs-generalist\.html", said[-1])
    text = page.read_text(encoding="utf-8")
    offline_checks(text)
    assert f'{SNAPSHOT_MARKER}="CompareView"' in text and SAVED_HINT in text  # the view's static snapshot
    assert text.count("Plotly.newPlot(") == 1


def test_run_notebook_demo_skips_a_missing_notebook_with_a_note(tmp_path):
    said = []
    assert run_notebook_demo(tmp_path, notebook=tmp_path / "absent.ipynb", say=said.append) is None
    assert said[-1].startswith("skipped: no notebook at") and not list(tmp_path.iterdir())


def test_the_closing_block_says_what_ran_where_the_pages_are_and_each_verdict(tmp_path):
    models = [specnb.load(keyword_model, task="classify", alias="keywords"),
              specnb.load(always_neg, task="classify", alias="constant")]
    first = specnb.compare("classify", TEXTS, models, labels=GOLD, name="demo: words", progress=False, store=False)
    second = specnb.compare("classify", TEXTS[:6], models, labels=GOLD[:6], progress=False, store=False)
    text = closing_block([first, second], report=tmp_path / "report.html", notebook=tmp_path / NOTEBOOK_HTML,
                         pipeline="pipeline triage (80 texts)")
    lines = text.splitlines()
    assert lines[1] == "== Done"
    assert "  demo: words (8 items: keywords, constant)" in lines and "  classify (6 items: keywords, constant)" in lines
    assert "  pipeline triage (80 texts)" in lines
    assert f"report:   {tmp_path / 'report.html'}" in lines and f"notebook: {tmp_path / NOTEBOOK_HTML}" in lines
    verdicts = [line.strip() for line in lines[lines.index(next(x for x in lines if x.startswith("verdicts"))) + 1:]]
    assert verdicts == first.verdicts() + second.verdicts() and len(verdicts) == 2
    assert verdicts[0].startswith("demo: words: constant vs keywords — ")
    skipped = closing_block([first], report="report.html", notebook=None)
    assert "  evidence notebook: skipped" in skipped and "notebook:" not in skipped.replace("evidence notebook:", "")
