"""The notebooks in notebooks/ run headless in a real kernel, top to bottom, without errors.

The evidence notebook (specialist-vs-generalist.ipynb, ~8 minutes on 2 cores) runs in `make demo` and so in
tests/test_cli.py's demo test, which checks its outputs against EXPECTED and its HTML page with
`check_offline_page`. The Binder test (tests/test_binder.py) runs every notebook in the Binder env and checks the
same EXPECTED outputs; where it is selected (as in `make test`), conftest.py skips the run here, so each
notebook runs once a session."""

import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
EVIDENCE = "specialist-vs-generalist.ipynb"
# What each notebook's outputs must show.
EXPECTED = {
    "quickstart.ipynb": ["'fr'", "'de'", "unloaded"],  # the budget cell evicted something and said so
    "compare.ipynb": ["accuracy", "same summary: True", "KiB", "quality_vs_latency"],
    "pipelines.ipynb": ["PipelineView", "topic:by", "fallback_share", "usd_per_1m", "kind: cascade"],
    "magics.ipynb": ["%%specnb compare", "ModelPanel", "CompareView", "specnb.Model 'smollm2'", "items_per_s",
                     "unloaded smollm2", "task=langid items=60"],
    "specialize.ipynb": ["TrainingWidget: bbc-finetune", "held-out accuracy", "best epoch", "student agrees with SmolLM2",
                         "second call: asked 0", "examples per class", "Learning curve:", "kinds: ['compare', 'train']",
                         "model.safetensors", "training.json", "same labels: True", "specnb.Model 'bbc-magic'"],
    # every section: the verdicts with their paired intervals, speed and cost, calibration, the cascade sweep,
    # trained and distilled specialists, the learning curve's crossovers, the endpoint note, the claim table
    "specialist-vs-generalist.ipynb": [
        "CompareView of <specnb.Comparison", "reference: langid", "evidence: langid: smollm2 vs langid — ",
        "McNemar p", "reference_only", "evidence: bbc topics: smollm2 vs minilm — ", "spaCy on all 150 sentences: F1",
        "evidence: ner: smollm2 vs ner — ", "as many items per second as smollm2", "per 1M items", "ece",
        "Reliability", "cascade sweep: minilm alone", "TrainingWidget: bbc-head", "distilled from",
        "evidence: trained specialists: ", "Learning curve", "crossover vs minilm (", "crossover vs smollm2 (",
        "endpoint generalist: skipped", "difference [95% CI]", "the generalist is worse at 95 % on", "ran in"],
}
#: Environment variables that would make the evidence notebook call an endpoint instead of noting the skip.
ENDPOINT_VARIABLES = ("OPENAI_BASE_URL", "SPECNB_ENDPOINT_MODEL")


def test_every_notebook_has_expectations():
    assert sorted(EXPECTED) == sorted(p.name for p in NOTEBOOKS)


@pytest.mark.real
@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name != EVIDENCE], ids=lambda p: p.name)
def test_notebook_runs_in_a_kernel(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    for name in ENDPOINT_VARIABLES:  # the kernel inherits the environment
        monkeypatch.delenv(name, raising=False)
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    check_outputs(notebook, path.name)


def check_outputs(notebook, name: str) -> None:
    """The executed notebook's outputs (text/plain and streams) show each of EXPECTED[name]."""
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", "")) for o in outputs)
    missing = [expected for expected in EXPECTED[name] if expected not in text]
    assert not missing, f"{name}: the outputs do not show {missing}"


def check_offline_page(notebook, page: str):
    """``page``: the executed evidence notebook as `make demo` writes it (`notebook_html`): plotly figures drawn
    by plotly.js inlined once, widgets as their static snapshots, nothing loaded from the network."""
    from specnb._compare.charts import plotly_js
    from specnb.widgets._base import SNAPSHOT_MARKER

    figures = sum("application/vnd.plotly.v1+json" in o.get("data", {}) for c in notebook.cells
                  for o in c.get("outputs", []))
    assert figures >= 3 and page.count("Plotly.newPlot(") == figures  # reliability, sweep, learning curve
    assert page.count(plotly_js()[-2000:]) == 1
    for view in ["CompareView", "TrainingWidget"]:
        assert f'{SNAPSHOT_MARKER}="{view}"' in page, view
    rest = page.replace(plotly_js(), "")
    assert not re.search(r"<script[^>]*\bsrc\s*=", rest, flags=re.I) and "Error displaying widget" not in rest
    assert "application/vnd.jupyter.widget-view+json" not in rest
