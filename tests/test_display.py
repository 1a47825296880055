"""How results show: the core classes are text and HTML only; the notebook layer's display formatters make
them widgets in a real Jupyter kernel, with or without %load_ext, and register nothing outside one."""

from __future__ import annotations

import importlib

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import specnb
from specnb.widgets import display

WIDGET = "application/vnd.jupyter.widget-view+json"


def test_the_registered_type_names_are_the_core_classes():
    names = {(cls.__module__, cls.__qualname__) for cls in (specnb.Comparison, specnb.Pipeline,
                                                            specnb.compose.Sweep)}
    assert set(display.DISPLAYED_TYPES) == names
    for module, name in display.DISPLAYED_TYPES:
        assert getattr(importlib.import_module(module), name).__name__ == name


def test_the_core_classes_know_no_widget():
    for cls in (specnb.Comparison, specnb.Pipeline, specnb.compose.Sweep):
        assert not hasattr(cls, "widget") and not hasattr(cls, "_ipython_display_")
        assert "_repr_html_" in vars(cls) and "__repr__" in vars(cls)


@pytest.fixture
def terminal(specnb_home):
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell(config=config)
    yield shell
    shell.configurables.clear()


def test_outside_a_kernel_nothing_is_registered_and_ipython_shows_html_and_text(terminal):
    assert display.register(terminal) is False
    terminal.run_line_magic("load_ext", "specnb")  # the magics, but no widgets in a terminal
    model = specnb.load(lambda texts: ["en"] * len(texts), alias="always_en", task="langid")
    comparison = specnb.compare("langid", ["hello", "bonjour"], [model], labels=["en", "fr"], store=False,
                                progress=False)
    data, _ = terminal.display_formatter.format(comparison)
    assert WIDGET not in data
    assert data["text/plain"] == repr(comparison) and data["text/html"] == comparison._repr_html_()


CELLS = [
    # without %load_ext: importing specnb in the kernel is enough
    "import specnb\n"
    "lid = specnb.load(lambda texts: [('en', 0.9) if 'the' in t else ('fr', 0.4) for t in texts], alias='lid', "
    "task='langid')\n"
    "big = specnb.load(lambda texts: ['en' if 'the' in t else 'fr' for t in texts], alias='big', task='langid')\n"
    "texts = ['the cat', 'le chat', 'the dog', 'le chien']\n"
    "cmp = specnb.compare('langid', texts, [lid, big], labels=['en', 'fr', 'en', 'fr'], store=False, progress=False)",
    "cmp",
    "pipe = specnb.Pipeline([{'kind': 'cascade', 'field': 'lang', 'specialist': 'lid', 'fallback': 'big', "
    "'threshold': 0.5, 'input': 'text'}])\npipe(texts)\npipe",
    "pipe.sweep('lang', [0, 0.5, 1], ['en', 'fr', 'en', 'fr'], texts)",
    # progress bars from the first item on: each becomes a line of text (leave=False: empty) once done
    "specnb.config.progress_delay = 0\n"
    "_ = specnb.compare('langid', texts, [lid, big], labels=['en', 'fr', 'en', 'fr'], store=False)",
    "_ = lid.predict(texts, task='langid', progress=True)",
    "from specnb.widgets import display\ndisplay.unregister()\ncmp",
    "%load_ext specnb",
    "cmp",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    home = tmp_path_factory.mktemp("display")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPECNB_HOME", str(home / "specnb"))
        nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(home)}}).execute()
    return [cell.outputs for cell in notebook.cells]


def _bundles(outputs):
    assert not [o for o in outputs if o.output_type == "error"], outputs
    return [o.data for o in outputs if o.output_type in ("display_data", "execute_result")]


def test_in_a_kernel_a_comparison_is_the_compare_view_without_load_ext(executed):
    (bundle,) = _bundles(executed[1])
    assert WIDGET in bundle and "specnb-snapshot" in bundle["text/html"]
    assert "CompareView" in bundle["text/plain"]


def test_in_a_kernel_a_pipeline_is_the_pipeline_view_and_a_sweep_its_table_and_chart(executed):
    (pipeline,) = _bundles(executed[2])
    assert WIDGET in pipeline and "PipelineView" in pipeline["text/plain"]
    table, figure = _bundles(executed[3])
    assert "fallback_share" in table["text/html"] and "application/vnd.plotly.v1+json" in figure


def test_unregistered_it_is_the_html_summary_and_load_ext_brings_the_view_back(executed):
    (plain,) = _bundles(executed[6])
    assert WIDGET not in plain and 'class="specnb-summary"' in plain["text/html"]
    assert plain["text/plain"].startswith("<specnb.Comparison")
    (again,) = _bundles(executed[8])
    assert WIDGET in again


def test_in_a_kernel_a_finished_progress_bar_is_text_not_a_widget(executed):
    """A notebook saved without widget state reopens with the bars' last lines, not widget errors."""
    bars = _bundles(executed[4])
    assert [list(b) for b in bars] == [["text/plain"], ["text/plain"]], bars
    assert bars[0]["text/plain"].startswith("lid langid: 100%") and "4/4" in bars[0]["text/plain"]
    assert bars[1]["text/plain"].startswith("big langid: 100%")
    (engine_bar,) = _bundles(executed[5])  # the engine's bar is leave=False: nothing is left
    assert engine_bar == {"text/plain": ""}
