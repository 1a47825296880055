"""The pipeline view: a `Pipeline`'s stages as a graph with each stage's share of the time, and the sample
table with every field the stages wrote.

The stage tree comes from ``pipeline.stages`` (the specs) joined with ``pipeline.last_profile`` (the last
run's statistics, by stage id: ``"1"``, ``"1.en.0"``, ``"1.*.0"``, see `specnb.compose.spec`); the table
from ``pipeline.last_preview`` (or the ``output`` DataFrame given). The numbers people read are formatted
here (`specnb.presentation`) and sent as text.
"""

from __future__ import annotations

import html
import math

import numpy as np
import traitlets as t

from ..compose.pipeline import Pipeline
from ..compose.spec import branch_prefix, branches, render, stage_field, stage_id, stage_model_names
from ..errors import InputError
from ..presentation import format_duration, plural, stage_stats, stage_texts
from ._base import Snapshot, json_value, static_file, widget_base

__all__ = ["PipelineView"]

#: Rows of the output the table carries, and characters of a string cell.
MAX_ROWS = 50
CELL_CHARS = 300
#: Rows the static snapshot shows.
SNAPSHOT_ROWS = 10
_STATS = ("items", "seconds", "items_per_s", "share", "weight_bytes", "fallback_share")


def _number(value):
    """A finite number as a Python int / float, else None (NaN, inf, NA, missing)."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(value):
    """A table value as JSON carries it (`json_value`): long strings cut, nesting kept to 8 levels."""
    return json_value(value, cut=CELL_CHARS, max_depth=8)


def stage_tree(stages: list, profile=None, prefix: str = "") -> list[dict]:
    """The stage specs as the view's tree, each node with the last run's statistics (None where it did not
    run) and their ``texts`` (`specnb.presentation.stage_texts`)."""
    nodes = []
    for position, spec in enumerate(stages):
        key = stage_id(prefix, position)
        row = profile.loc[key] if profile is not None and key in profile.index else None
        node = {"id": key, "text": render(spec), "kind": spec["kind"], "field": stage_field(spec),
                "models": stage_model_names(spec), **dict.fromkeys(_STATS)}
        if row is not None:
            for name in _STATS:
                if name in row.index:
                    node[name] = _number(row[name])
            if isinstance(node["items"], float):
                node["items"] = int(node["items"])
            models = row.get("models")
            if isinstance(models, str) and models:
                node["models"] = models
        node["texts"] = stage_texts(node["items"], node["items_per_s"], node["seconds"], node["share"],
                                    node["fallback_share"], node["weight_bytes"])
        node["children"] = [{"branch": value, "stages": stage_tree(inner, profile, branch_prefix(key, value))}
                            for value, inner in branches(spec)]
        nodes.append(node)
    return nodes


def _walk(nodes, depth: int = 0):
    """(depth, node, None) per stage and (depth, None, branch) per branch, in display order."""
    for node in nodes:
        yield depth, node, None
        for branch in node["children"]:
            yield depth + 1, None, branch
            yield from _walk(branch["stages"], depth + 2)


def _total_seconds(profile) -> float | None:
    if profile is None or len(profile) == 0:
        return None
    for _, row in profile.iterrows():  # share = seconds / the whole run's time
        seconds, share = _number(row.get("seconds")), _number(row.get("share"))
        if seconds is not None and share:
            return seconds / share
    total = sum(_number(s) or 0.0 for s in profile["seconds"]) if "seconds" in profile else 0.0
    return float(total)


def stage_summary(nodes: list[dict], total_seconds) -> str:
    """The view's title line: ``3 stages · 40 items · last run 1.23 s`` (or ``· not run yet``)."""
    parts = [plural(len(nodes), "stage")]
    first = next((n for n in nodes if n["items"] is not None), None)
    if first is not None:
        parts.append(plural(first["items"], "item"))
    parts.append("not run yet" if total_seconds is None else f"last run {format_duration(total_seconds)}")
    return " · ".join(parts)


class PipelineView(Snapshot, widget_base()):
    """A `Pipeline` in the notebook: its stages as a graph (routes with their branches side by side), each
    with its items, throughput and share of the last run's time, and the output of the preview run.

    Parameters
    ----------
    pipeline : Pipeline
        Shown as it is now; `refresh` reads it again.
    output : DataFrame, optional
        The table to show instead of ``pipeline.last_preview`` (e.g. what ``pipe(inputs)`` returned).
    """

    name = t.Unicode("").tag(sync=True)
    input = t.Unicode("text", help="The field holding each input's text.").tag(sync=True)
    stages = t.List(t.Dict(), help="The stage tree with the last run's statistics (see js/README.md).").tag(sync=True)
    columns = t.List(t.Unicode(), help="The sample table's columns, in order.").tag(sync=True)
    rows = t.List(t.List(), help=f"The sample table's first {MAX_ROWS} rows, one value per column.").tag(sync=True)
    n_rows = t.Int(0, help="Rows in the whole sample output.").tag(sync=True)
    total_seconds = t.Float(None, allow_none=True, help="The last run's time (None: it has not run).").tag(sync=True)
    summary = t.Unicode("", help="The title line: stages, items, the last run's time.").tag(sync=True)

    def __init__(self, pipeline: Pipeline, *, output=None, **kwargs):
        if not isinstance(pipeline, Pipeline):
            raise InputError(f"PipelineView needs a specnb.Pipeline, got {type(pipeline).__name__}")
        self._esm = static_file("pipeline_view.js")
        self._css = static_file("widgets.css")
        self.pipeline = pipeline
        self.output = output
        super().__init__(**kwargs)
        self.refresh()

    def refresh(self) -> None:
        """Read the pipeline again: its stages, the last run's profile and the preview output."""
        pipe = self.pipeline
        profile = pipe.last_profile
        frame = self.output if self.output is not None else pipe.last_preview
        columns, rows, n_rows = [], [], 0
        if frame is not None:
            columns = [str(c) for c in frame.columns]
            n_rows = len(frame)
            rows = [[_cell(v) for v in record] for record in frame.head(MAX_ROWS).itertuples(index=False, name=None)]
        with self.hold_sync():
            self.name = str(pipe.name)
            self.input = str(pipe.input)
            self.stages = stage_tree(pipe.stages, profile)
            self.columns = columns
            self.rows = rows
            self.n_rows = n_rows
            self.total_seconds = _total_seconds(profile)
            self.summary = stage_summary(self.stages, self.total_seconds)

    def __repr__(self) -> str:
        return f"<specnb PipelineView of {self.pipeline!r}>"

    # -- without a kernel -------------------------------------------------------------------------
    def snapshot_html(self) -> str:
        e = html.escape
        head = f"<strong>{e(self.name)}</strong> · {e(self.summary)}"  # as the live view's title
        body = []
        for depth, node, branch in _walk(self.stages):
            pad = f' style="padding-left:{depth * 1.5:g}em"' if depth else ""
            if branch is not None:
                label = "* (default)" if branch["branch"] == "*" else branch["branch"]
                rest = "" if branch["stages"] else " → skip"
                body.append(f"<tr><td></td><td{pad}><em>{e(label)}{e(rest)}</em></td><td></td><td></td></tr>")
                continue
            models = node["models"] or ""
            body.append(f"<tr><td>{e(node['id'])}</td><td{pad}><code>{e(node['text'])}</code></td>"
                        f"<td>{e(models)}</td><td>{e(stage_stats(node['texts']))}</td></tr>")
        stages = ("<table><thead><tr><th>id</th><th>stage</th><th>models</th><th>last run</th></tr></thead>"
                  f"<tbody>{''.join(body)}</tbody></table>")
        sample = ""
        if self.columns:
            cells = "".join(f"<th>{e(c)}</th>" for c in self.columns)
            lines = "".join("<tr>" + "".join(f"<td>{e(_text(v))}</td>" for v in row) + "</tr>"
                            for row in self.rows[:SNAPSHOT_ROWS])
            more = (f"<div>first {SNAPSHOT_ROWS} of {self.n_rows:,} rows</div>" if self.n_rows > SNAPSHOT_ROWS
                    else "")
            sample = f"<table><thead><tr>{cells}</tr></thead><tbody>{lines}</tbody></table>{more}"
        return f'<div class="specnb-pipeline-snapshot"><div>{head}</div>{stages}{sample}</div>'


def _text(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, ensure_ascii=False)
    return str(value)
