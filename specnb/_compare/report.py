"""HTML views of a `Comparison`: the notebook summary (`summary_html`) and the offline report (`write_html`).

Every text that comes from a user or a model (inputs, labels, aliases, sources, run names, error
messages) goes through `html.escape` before it reaches HTML; figure JSON inside ``<script>`` has
``<``, ``>`` and ``&`` written as ``\\u003c``, ``\\u003e`` and ``\\u0026``. plotly is imported only when
a report is written, and only through `specnb._compare.charts`.
"""

from __future__ import annotations

import datetime
import html
import math
import os
from pathlib import Path

from ..errors import InputError
from ..presentation import (
    finite_or_nan,
    format_bytes,
    format_count,
    format_value,
    plural,
    summary_cells,
    summary_columns,
)
from ..tasks.base import is_missing
from .paired import p_text

__all__ = ["summary_html", "snapshot_html", "write_html", "DISAGREEMENT_ROWS", "INPUT_CHARS"]

#: Rows of the disagreement table a report shows.
DISAGREEMENT_ROWS = 200
#: Characters of an input a report shows before cutting it short.
INPUT_CHARS = 400
#: Labels of the label space the run metadata lists.
_LABELS_SHOWN = 100

_PLOTLY_CONFIG = '{"displaylogo": false, "responsive": true}'
_CHART_TITLES = {
    "quality_vs_latency": "Quality vs latency",
    "quality_vs_cost": "Quality vs cost",
    "latency": "Latency per item",
    "confusion": "Confusion matrices",
    "reliability": "Calibration: reliability diagram",
    "memory": "Memory",
}

_CSS = """
.specnb-summary, .specnb-report { color: #1f2937;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.specnb-table { border-collapse: collapse; margin: 0.4em 0 0.8em; font-size: 13px; }
.specnb-table th, .specnb-table td { border: 1px solid #e5e7eb; padding: 3px 8px; vertical-align: top;
  text-align: left; }
.specnb-table th { background: #f9fafb; font-weight: 600; }
.specnb-table td.num, .specnb-table th.num { text-align: right; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
.specnb-table td.best { background: #ecfdf5; }
.specnb-table td.wrong { background: #fef2f2; }
.specnb-table td.diag { background: #eff6ff; font-weight: 600; }
.specnb-table td.zero { color: #9ca3af; }
.specnb-summary .specnb-table { margin-left: 0; margin-right: 0; }
.specnb-summary .specnb-table td:not(.num), .specnb-summary .specnb-table th:not(.num) { text-align: left; }
.specnb-muted { color: #6b7280; font-size: 0.92em; }
.specnb-err { color: #b91c1c; font-size: 0.92em; }
"""

_PAGE_CSS = """
body { margin: 0; background: #fff; }
.specnb-report { max-width: 1200px; margin: 0 auto; padding: 24px 28px 60px; line-height: 1.45; }
.specnb-report h1 { font-size: 1.6em; margin: 0 0 0.3em; }
.specnb-report h2 { font-size: 1.25em; margin: 1.6em 0 0.4em; border-bottom: 1px solid #e5e7eb; padding-bottom: 0.2em; }
.specnb-report h3 { font-size: 1.05em; margin: 1.2em 0 0.3em; }
.specnb-report .chart { width: 100%; min-height: 420px; }
.specnb-report .scroll { overflow-x: auto; }
.specnb-report dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0.5em 0; }
.specnb-report dt { color: #6b7280; }
.specnb-report dd { margin: 0; }
"""


def _e(value) -> str:
    """``value`` as HTML text, every character that could start markup or end an attribute escaped."""
    return html.escape("" if value is None else str(value), quote=True)


def _summary_table(comparison) -> str:
    summary = comparison.summary
    models = comparison.models
    rows = {m: summary.loc[m].to_dict() for m in models}
    columns = summary_columns(comparison.quality_column)
    head = "".join(f'<th class="num">{_e(column.label)}</th>' for column in columns)
    cells: dict[str, list[str]] = {m: [] for m in models}
    for m, row in zip(models, summary_cells([rows[m] for m in models], columns)):
        for column, cell in zip(columns, row):
            text = _e(cell["text"])
            if cell["note"] and column.interval:
                text += _e(cell["note"])  # the bounds read with the value
            elif cell["note"]:
                text += f' <span class="specnb-muted">{_e(cell["note"].strip())}</span>'
            if cell["best"]:
                cells[m].append(f'<td class="num best"><strong>{text}</strong></td>')
            else:
                cells[m].append(f'<td class="num">{text}</td>')
    body = []
    for m in models:
        row = rows[m]
        device = row.get("device") or "-"
        dtype = row.get("dtype")
        if dtype and dtype != "-":
            device = f"{device} {dtype}"
        body.append(f"<tr><th>{_e(m)}</th><td>{_e(row.get('role') or '-')}</td><td>{_e(device)}</td>"
                    + "".join(cells[m]) + "</tr>")
    return ('<div style="overflow-x:auto">'
            f'<table class="specnb-table"><thead><tr><th>model</th><th>role</th><th>device</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _run_line(comparison) -> str:
    n, done = len(comparison.inputs), len(comparison.done)
    items = plural(n, "item") if done == n else f"{done:,} of {plural(n, 'item')} answered by every model"
    parts = [f"run {comparison.run_id or '(not stored)'}", comparison.status, comparison.task, items]
    if comparison.name:  # the run's name leads, as in the compare view's title
        parts.insert(0, f"“{comparison.name}”")
    if comparison.quality_column is None:
        parts.append("no gold labels: no quality scores")
    return " · ".join(_e(p) for p in parts)


def summary_html(comparison) -> str:
    """The comparison's summary as an HTML fragment (what a notebook shows for a `Comparison`).

    One row per model: quality with its 95 % bootstrap interval (with gold labels), validity,
    latency, throughput, load time, memory and cost; the best value of each column in bold.
    """
    return (f'<div class="specnb-summary"><style>{_CSS}</style>{_summary_table(comparison)}'
            f'<div class="specnb-muted">{_run_line(comparison)}</div></div>')


def snapshot_html(comparison, rows: int = 10) -> str:
    """What a saved notebook shows for a compare view without a kernel: the title, the summary and the
    first ``rows`` disagreements (inputs cut to 200 characters). A few KB whatever the run's size."""
    title = f"specnb comparison · {comparison.run_id or 'not stored'}"
    if comparison.name:  # the run's name leads, as in the live view's title
        title = f"{comparison.name} · {title}"
    return (f'<div class="specnb-summary specnb-snapshot"><style>{_CSS}</style>'
            f'<div><strong>{_e(title)}</strong></div>{_summary_table(comparison)}'
            f'<div class="specnb-muted">{_run_line(comparison)}</div>'
            f"{_disagreements(comparison, limit=rows, chars=200)}"
            '<div class="specnb-muted">Every item, with the charts, in a file of its own: Comparison.to_html(path).'
            "</div></div>")


# -- the report ---------------------------------------------------------------------------------------
def _script_json(text: str) -> str:
    """JSON made safe inside ``<script>``: no character of it can close the element or start markup."""
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _created(created) -> str:
    value = finite_or_nan(created)
    if math.isnan(value):
        return "-"
    return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _metadata(comparison) -> str:
    space = list(comparison.label_space)
    labels = ", ".join(space[:_LABELS_SHOWN]) + (f", … ({len(space)} in all)" if len(space) > _LABELS_SHOWN else "")
    n, done = len(comparison.inputs), len(comparison.done)
    entries = [
        ("run id", comparison.run_id or "(not stored)"),
        ("name", comparison.name or "-"),
        ("task", comparison.task),
        ("status", comparison.status),
        ("created", _created(comparison.created)),
        ("items", f"{n:,}" if done == n else f"{done:,} of {n:,} answered by every model"),
        ("gold labels", "yes" if comparison.labels is not None else "no"),
        ("entity types" if comparison.ner else "label space", labels or "-"),
        ("seed", comparison.seed),
    ]
    facts = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in entries)
    head = ["model", "role", "source", "version", "backend", "device", "dtype", "parameters", "weights", "load s",
            "$/hour"]
    rows = []
    for m in comparison.models:
        info = comparison.model_info.get(m, {})
        price = finite_or_nan(comparison.model_stats.get(m, {}).get("price_per_hour"))
        cells = [info.get("role"), info.get("source"), info.get("version"), info.get("backend"), info.get("device"),
                 info.get("dtype")]
        numbers = [format_count(info.get("parameters")), format_bytes(info.get("weight_bytes")),
                   format_value(info.get("load_seconds"), "seconds"), format_value(price, "price")]
        rows.append(f"<tr><th>{_e(m)}</th>" + "".join(f"<td>{_e('-' if c is None else c)}</td>" for c in cells)
                    + "".join(f'<td class="num">{_e(c)}</td>' for c in numbers) + "</tr>")
    header = "".join(f'<th class="num">{_e(h)}</th>' if i >= 7 else f"<th>{_e(h)}</th>" for i, h in enumerate(head))
    return (f"<dl>{facts}</dl>"
            f'<div class="scroll"><table class="specnb-table"><thead><tr>{header}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _agreement(comparison) -> str:
    summary = comparison.summary
    models = comparison.models
    head = "".join(f'<th class="num">{_e(m)}</th>' for m in models)
    rows = []
    for m in models:
        cells = "".join(f'<td class="num">{_e(format_value(summary.at[m, f"agree:{o}"], "percent"))}</td>'
                        for o in models)
        rows.append(f"<tr><th>{_e(m)}</th>{cells}</tr>")
    return (f'<table class="specnb-table"><thead><tr><th></th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>'
            '<p class="specnb-muted">Share of items on which two models give the same valid answer.</p>')


def _paired(comparison) -> str:
    """Each model against the reference: differences with paired intervals, McNemar's test, the verdict."""
    table = comparison.paired()
    metrics = ["f1"] if comparison.ner else ["accuracy", "macro_f1"]
    names = {"f1": "Δ F1", "accuracy": "Δ accuracy", "macro_f1": "Δ macro-F1"}
    head = "".join(f'<th class="num">{_e(names[k])} [95 % CI]</th>' for k in metrics)
    if not comparison.ner:
        head += '<th class="num">only reference right</th><th class="num">only model right</th><th class="num">McNemar p</th>'
    rows = []
    for m, row in table.iterrows():
        cells = "".join(
            f'<td class="num">{_e(format_value(row[f"{k}_delta"], "delta"))} '
            f'[{_e(format_value(row[f"{k}_delta_low"], "delta"))}, {_e(format_value(row[f"{k}_delta_high"], "delta"))}]</td>'
            for k in metrics)
        if not comparison.ner:
            cells += (f'<td class="num">{int(row["reference_only"]):,}</td><td class="num">{int(row["model_only"]):,}</td>'
                      f'<td class="num">{_e(p_text(row["p_value"]).removeprefix("p = "))}</td>')
        rows.append(f"<tr><th>{_e(m)}</th>{cells}<td>{_e(row['verdict'])}</td></tr>")
    test = ("the verdict follows McNemar's exact test on the items only one of the two got right (p < 0.05)"
            if not comparison.ner else "the verdict follows the F1 difference's interval (excluding 0)")
    return (f'<div class="scroll"><table class="specnb-table"><thead><tr><th>model</th>{head}<th>verdict</th></tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table></div>'
            f'<p class="specnb-muted">Against the reference {_e(comparison.reference)}, on the same items. Intervals: '
            f"95 % paired bootstrap (the summary's resamples); {test}.</p>"
            + "".join(f"<p>{_e(line)}</p>" for line in comparison.verdicts()))


def _short(value, limit: int = INPUT_CHARS) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)"


def _disagreements(comparison, limit: int = DISAGREEMENT_ROWS, chars: int = INPUT_CHARS) -> str:
    frame = comparison.disagreements
    total = len(frame)
    if not total:
        return "<p>Every model gave the same valid answer on every item" + (
            ", and it was right." if comparison.labels is not None else ".") + "</p>"
    shown = frame.head(limit)
    gold = "label" in shown.columns
    head = ["item", "input", *(["gold"] if gold else []), *comparison.models]
    rows = []
    for item, row in shown.iterrows():
        cells = [f'<td class="num">{_e(item)}</td>',
                 f"<td>{_e(_short(row['input'], chars)) if not is_missing(row['input']) else '<i>(none)</i>'}</td>"]
        if gold:
            cells.append(f"<td>{_e(_short(row['label']))}</td>")
        for m in comparison.models:
            answer, error = row[m], row[f"{m}:error"]
            correct = row.get(f"{m}:correct")
            if is_missing(answer):
                text = "<i>(invalid)</i>"
            else:
                empty = "<i>(no entities)</i>" if comparison.ner else "<i>(empty)</i>"
                text = _e(_short(answer)) if answer != "" else empty
            score = finite_or_nan(row.get(f"{m}:score"))
            if not math.isnan(score):
                text += f' <span class="specnb-muted">{score:.2f}</span>'
            if not is_missing(error):
                text += f'<div class="specnb-err">{_e(_short(error, 200))}</div>'
            wrong = gold and correct is not None and not is_missing(correct) and not bool(correct)
            cells.append(f'<td class="wrong">{text}</td>' if wrong else f"<td>{text}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    note = f"All {total:,} items" if total <= limit else f"The first {limit:,} of {total:,} items"
    if gold:
        what = "where the models differ, an answer is invalid or any model is wrong"
    else:
        what = "where the models differ or an answer is invalid"
    marked = " Wrong answers are shaded." if gold else ""
    return (f'<p class="specnb-muted">{_e(note)} {_e(what)}.{marked}</p><div class="scroll">'
            f'<table class="specnb-table"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def _confusion_tables(comparison) -> str:
    parts = []
    what = "entities matched on exact offsets" if comparison.ner else "items"
    parts.append(f'<p class="specnb-muted">Gold labels (rows) against each model\'s answers (columns), '
                 f"counts of {_e(what)}.</p>")
    for m in comparison.models:
        frame = comparison.confusion(m)
        head = "".join(f'<th class="num">{_e(c)}</th>' for c in frame.columns)
        rows = []
        for gold, counts in frame.iterrows():
            cells = []
            for column, count in counts.items():
                cls = "num diag" if column == gold else ("num zero" if count == 0 else "num")
                cells.append(f'<td class="{cls}">{_e(int(count))}</td>')
            rows.append(f"<tr><th>{_e(gold)}</th>{''.join(cells)}</tr>")
        parts.append(f"<h3>{_e(m)}</h3><div class=\"scroll\"><table class=\"specnb-table\"><thead><tr>"
                     f"<th>gold \\ answer</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    return "".join(parts)


def _charts(figures: dict) -> str:
    parts = []
    for key, figure in figures.items():
        div = f"specnb-chart-{key}"  # keys are ours, never user text
        data = _script_json(figure.to_json())
        parts.append(f'<h3>{_e(_CHART_TITLES.get(key, key))}</h3><div id="{_e(div)}" class="chart"></div>'
                     f'<script>(function () {{ var figure = {data}; '
                     f'Plotly.newPlot("{_e(div)}", figure.data, figure.layout, {_PLOTLY_CONFIG}); }})();</script>')
    return "".join(parts)


def write_html(comparison, path) -> Path:
    """Write a self-contained report of the comparison: one HTML file that works offline.

    Parameters
    ----------
    comparison : Comparison
    path : str or os.PathLike
        Where to write; missing parent folders are created.

    Returns
    -------
    pathlib.Path
        The file written. It holds run metadata, the summary table, the charts (plotly.js inlined
        once), the disagreements (first `DISAGREEMENT_ROWS`) and each model's confusion matrix.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path must be a str or a path, got {type(path).__name__}")
    path = Path(path)
    from . import charts

    title = f"specnb · {comparison.task} · {comparison.name or comparison.run_id or 'comparison'}"
    sections = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="specnb-muted">{_run_line(comparison)}</p>',
        "<h2>Run</h2>", _metadata(comparison),
        "<h2>Summary</h2>",
        f'<div class="scroll">{_summary_table(comparison)}</div>',
        '<p class="specnb-muted">Intervals: 95 % bootstrap over items. Best value per column in bold. '
        "Cost: the price per device-hour assumed for each model over its measured throughput.</p>"
        if comparison.quality_column is not None else
        '<p class="specnb-muted">Best value per column in bold. Cost: the price per device-hour assumed for each '
        "model over its measured throughput.</p>",
    ]
    if comparison.quality_column is not None:
        sections += ["<h2>Verdicts</h2>", _paired(comparison)]
    sections += ["<h2>Charts</h2>", _charts(charts.figures(comparison))]
    if len(comparison.models) > 1:
        sections += ["<h2>Agreement</h2>", _agreement(comparison)]
    sections += ["<h2>Disagreements</h2>", _disagreements(comparison)]
    if comparison.labels is not None:
        sections += ["<h2>Confusion matrices</h2>", _confusion_tables(comparison)]
    document = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}{_PAGE_CSS}</style>\n"
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
        f"<script>{charts.plotly_js()}</script>\n</head>\n"
        f'<body>\n<main class="specnb-report">\n{"".join(sections)}\n</main>\n</body>\n</html>\n'
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    return path
