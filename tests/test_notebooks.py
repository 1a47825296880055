"""The notebooks in notebooks/ run headless in a real kernel, top to bottom, without errors."""

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
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
}


def test_every_notebook_has_expectations():
    assert sorted(EXPECTED) == sorted(p.name for p in NOTEBOOKS)


@pytest.mark.real
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_a_kernel(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", "")) for o in outputs)
    for expected in EXPECTED[path.name]:
        assert expected in text, expected
