"""What a saved notebook keeps of the widgets: a 100,000-item comparison run through the magics in a real
kernel (nbclient, widget state stored as JupyterLab stores it) stays under 1 MB on disk, its finished progress
bars are lines of text, and nbconvert's HTML shows the static snapshot without a kernel. The bars show from the
first item (``progress_delay = 0``), so what the cells output does not depend on how fast the machine is."""

from __future__ import annotations

import json

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

WIDGET = "application/vnd.jupyter.widget-view+json"

CELLS = [
    "%load_ext specnb",
    "import pandas as pd\nimport specnb\n"
    # a bar from the first item on, whatever the machine's speed (by default one shows once a run passes 2 s)
    "specnb.config.progress_delay = 0\n"
    "n = 100_000\n"
    "df = pd.DataFrame({'text': [f'item {i} <b>bold?</b> ' + 'x' * (i % 500) for i in range(n)],\n"
    "                   'label': [('en', 'fr', 'de')[i % 3] for i in range(n)]})\n"
    "specnb.load(lambda texts: ['en'] * len(texts), alias='always_en', task='langid')\n"
    "specnb.load(lambda texts: ['fr' if len(t) % 3 else 'de' for t in texts], alias='by_length', task='langid')\n"
    "None",
    "%specnb models",
    "%specnb compare langid --models always_en,by_length --data df --out big",
    "print(len(big.disagreements), 'disagreements')",
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPECNB_HOME", str(home / "specnb"))
        nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", store_widget_state=True,
                                resources={"metadata": {"path": str(home)}}).execute()
    path = home / "big.ipynb"
    nbformat.write(notebook, path)
    return path, notebook


def test_the_saved_notebook_stays_under_1_mb(saved):
    path, notebook = saved
    size = path.stat().st_size
    assert size < 1_000_000, f"{size:,} bytes"
    outputs = sum(len(json.dumps(cell.outputs)) for cell in notebook.cells)
    assert outputs < 100_000, f"{outputs:,} bytes of outputs"


def test_widget_outputs_carry_a_live_view_and_a_static_snapshot(saved):
    _, notebook = saved
    panel, view = notebook.cells[2].outputs, notebook.cells[3].outputs
    for outputs in (panel, view):
        (output,) = [o for o in outputs if WIDGET in o.get("data", {})]
        assert "text/html" in output.data
    html = view[-1].data["text/html"]
    # each model's finished bar is left as one line of text before the view, not a widget
    bars = [o.data for o in view if o.output_type == "display_data" and WIDGET not in o.data]
    assert [list(b) for b in bars] == [["text/plain"], ["text/plain"]], bars
    for alias, bar in zip(("always_en", "by_length"), bars):
        assert bar["text/plain"].startswith(f"{alias} langid: 100%") and "100000/100000" in bar["text/plain"]
    assert "specnb-snapshot" in html and "always_en" in html and "100,000" in html
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html and "<b>bold?</b>" not in html
    state = notebook.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    views = [s["state"] for s in state.values() if s["state"].get("_anywidget_id", "").endswith("CompareView")]
    assert len(views) == 1
    (saved_view,) = views
    assert saved_view["n_items"] == 100_000 and len(saved_view["rows"]) == 20  # one page, not 100,000 rows
    printed = "".join(o.get("text", "") for o in notebook.cells[4].outputs)
    assert printed == f"{saved_view['n_disagreements']} disagreements\n" and saved_view["total"] == saved_view[
        "n_disagreements"]


def test_nbconvert_html_shows_the_snapshot_without_a_kernel(saved):
    """JupyterLab saves no widget state unless asked ("Save Widget State Automatically" is off by default);
    nbconvert then shows the ``text/html`` snapshot. (With saved state it embeds the live widget instead,
    drawn by the widgets HTML manager, which it loads from a CDN.)"""
    nbconvert = pytest.importorskip("nbconvert")
    _, notebook = saved
    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
    notebook.metadata.pop("widgets")
    body, _ = nbconvert.HTMLExporter().from_notebook_node(notebook)
    assert body.count("specnb-snapshot") >= 1 and "by_length" in body and "always_en" in body
    assert "&lt;b&gt;bold?&lt;/b&gt;" in body and "<b>bold?</b>" not in body
