"""The demo's evidence notebook, executed and written as HTML, and the demo's closing block.

`run_notebook_demo` executes ``notebooks/specialist-vs-generalist.ipynb`` headless in a real kernel
(nbclient, kernel ``python3``, in a temporary folder) and writes it with nbconvert as one self-contained
HTML page (`notebook_html`): widgets show as their static snapshots (the ``text/html`` every specnb widget
carries), each plotly figure gets a ``text/html`` drawing that calls plotly.js, which is inlined once, and
the page loads nothing from the network (no require.js, MathJax, mermaid or widget manager from a CDN).
`closing_block` is the text the demo ends with: what ran, where the pages are, one verdict per model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .errors import InputError, MissingDependencyError

__all__ = ["NOTEBOOK", "NOTEBOOK_HTML", "NOTEBOOK_EXECUTED", "execute_notebook", "notebook_html", "write_notebook_html",
           "run_notebook_demo", "closing_block"]

#: The evidence notebook, in the checkout (notebooks/ does not ship in the wheel).
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "specialist-vs-generalist.ipynb"
#: What `run_notebook_demo` writes under the demo's folder: the page, and the executed notebook beside it.
NOTEBOOK_HTML = "specialist-vs-generalist.html"
NOTEBOOK_EXECUTED = "specialist-vs-generalist.ipynb"

_PLOTLY_MIME = "application/vnd.plotly.v1+json"
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# The lab template, without the scripts it would fetch from CDNs, with plotly.js inlined when a figure needs it.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}
{{ super() }}
{%- if resources.specnb_plotly_js %}
<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>
<script>{{ resources.specnb_plotly_js }}</script>
{%- endif %}
{%- endblock html_head_css -%}
"""
_TEMPLATE_NAME = "specnb_notebook.html.j2"


def _needs(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(f"the evidence notebook needs {', '.join(missing)}: "
                                     "pip install nbclient nbconvert ipykernel (or pip install 'specnb[test]')")


def execute_notebook(path=NOTEBOOK, *, cwd=None, timeout: int = 900):
    """Run the notebook at ``path`` top to bottom in a fresh ``python3`` kernel (in ``cwd``, default a new
    temporary folder) and return it with its outputs (an nbformat node). A failing cell raises nbclient's
    ``CellExecutionError`` naming the cell."""
    _needs("nbclient", "nbformat", "ipykernel")
    import tempfile

    import nbclient
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no notebook at {path}")
    notebook = nbformat.read(path, as_version=4)
    cwd = Path(cwd) if cwd is not None else Path(tempfile.mkdtemp(prefix="specnb-notebook-"))
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3", store_widget_state=False,
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return notebook


def _figure_html(figure: dict, number: int) -> str:
    from ._compare.report import _PLOTLY_CONFIG, _script_json

    div = f"specnb-notebook-figure-{number}"
    return (f'<div id="{div}" class="specnb-figure" style="min-height:450px"></div><script>(function () {{ '
            f"var figure = {_script_json(json.dumps(figure))}; Plotly.newPlot(\"{div}\", figure.data || [], "
            f"figure.layout || {{}}, {_PLOTLY_CONFIG}); }})();</script>")


def _static_outputs(notebook) -> int:
    """Each output as a page without a kernel shows it, in place: a widget by its ``text/html`` snapshot (the
    live view's model is not in the page), a plotly figure by a ``text/html`` drawing. Returns the figures."""
    figures = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not data:
                continue
            if _WIDGET_MIME in data and ("text/html" in data or "text/plain" in data):
                del data[_WIDGET_MIME]
            if _PLOTLY_MIME in data:
                figures += 1
                data["text/html"] = _figure_html(data.pop(_PLOTLY_MIME), figures)
    return figures


def notebook_html(notebook, *, title: str | None = None) -> str:
    """An executed notebook (nbformat node) as one self-contained HTML page that works offline (see the
    module notes). The node is not changed."""
    _needs("nbconvert", "nbformat")
    import copy

    import jinja2
    from nbconvert import HTMLExporter

    notebook = copy.deepcopy(notebook)
    notebook.metadata.pop("widgets", None)  # the live widgets' state: their snapshots stand in for them
    if title is not None:
        notebook.metadata["title"] = title
    figures = _static_outputs(notebook)
    resources = {"specnb_plotly_js": ""}
    if figures:
        from ._compare.charts import plotly_js

        resources["specnb_plotly_js"] = plotly_js()
    exporter = HTMLExporter(template_name="lab", extra_loaders=[jinja2.DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
                            template_file=_TEMPLATE_NAME)
    page, _ = exporter.from_notebook_node(notebook, resources=resources)
    return page


def write_notebook_html(notebook, path, *, title: str | None = None) -> Path:
    """Write `notebook_html` of ``notebook`` to ``path`` (folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(notebook_html(notebook, title=title), encoding="utf-8")
    return path


def run_notebook_demo(out, *, notebook=NOTEBOOK, say=print) -> Path | None:
    """Execute the evidence notebook and write it as ``<out>/specialist-vs-generalist.html``, with the executed
    notebook beside it (``.ipynb``, to open in Jupyter: the live widgets' state is not kept). Returns the
    page's path, or None (after saying why) when the notebook is not there (an installed wheel) or
    nbclient / nbconvert are missing."""
    notebook = Path(notebook)
    say(f"\n== Evidence notebook: {notebook.name}, executed headless")
    if not notebook.is_file():
        say(f"skipped: no notebook at {notebook} (it is in specnb's source checkout, not in the wheel)")
        return None
    try:
        _needs("nbclient", "nbconvert", "nbformat", "ipykernel")
    except MissingDependencyError as exc:
        say(f"skipped: {exc}")
        return None
    start = time.perf_counter()
    executed = execute_notebook(notebook)
    path = write_notebook_html(executed, Path(out) / NOTEBOOK_HTML, title="specnb: specialist vs generalist")
    import nbformat

    nbformat.write(executed, Path(out) / NOTEBOOK_EXECUTED)
    cells = sum(1 for c in executed.cells if c.cell_type == "code")
    say(f"{cells} code cells ran in {time.perf_counter() - start:.0f} s; notebook: {path}")
    return path


def _job(comparison) -> str:
    return f"{comparison.name or comparison.task} ({len(comparison.done)} items: {', '.join(comparison.models)})"


def closing_block(comparisons, *, report, notebook=None, pipeline: str | None = None) -> str:
    """The demo's last words: what ran (each comparison's name, items and models; the pipeline), where
    the report and the notebook's HTML are, and `Comparison.verdicts` of every comparison, one a line."""
    lines = ["", "== Done", "ran:"]
    lines += [f"  {_job(c)}" for c in comparisons]
    if pipeline:
        lines.append(f"  {pipeline}")
    lines.append("  evidence notebook" + ("" if notebook else ": skipped"))
    lines.append(f"report:   {report}")
    if notebook:
        lines.append(f"notebook: {notebook}")
    lines.append("verdicts (95 %, against each comparison's reference specialist):")
    for comparison in comparisons:
        found = comparison.verdicts() if comparison.quality_column is not None else []
        lines += [f"  {line}" for line in found] or [f"  {comparison.name or comparison.task}: no gold labels"]
    return "\n".join(lines)
