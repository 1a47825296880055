"""The pipeline view: a `Pipeline`'s stages as a graph with each stage's share of the time, and the sample
table with every field the stages wrote.

The stage tree comes from ``pipeline.stages`` (the specs) joined with ``pipeline.last_profile`` (the last
run's statistics, by stage id: ``"1"``, ``"1.en.0"``, ``"1.*.0"``); the table from ``pipeline.last_preview``
(or the ``output`` DataFrame given).
"""

from __future__ import annotations

import html
import math

import numpy as np
import traitlets as t

from ..compose.pipeline import Pipeline, render
from ..errors import InputError
from ..settings import format_bytes
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


def _stage_field(spec: dict) -> str | None:
    if spec["kind"] == "python":
        return ", ".join(spec.get("writes", [])) or None
    return spec.get("field")


def _spec_models(spec: dict) -> str:
    if spec["kind"] == "model":
        return str(spec["model"])
    if spec["kind"] == "cascade":
        return f"{spec['specialist']} → {spec['fallback']}"
    return ""


def stage_tree(stages: list, profile=None, prefix: str = "") -> list[dict]:
    """The stage specs as the view's tree, each node with the last run's statistics (None where it did not
    run)."""
    nodes = []
    for position, spec in enumerate(stages):
        key = f"{prefix}{position}"
        row = profile.loc[key] if profile is not None and key in profile.index else None
        node = {"id": key, "text": render(spec), "kind": spec["kind"], "field": _stage_field(spec),
                "models": _spec_models(spec), **dict.fromkeys(_STATS)}
        if row is not None:
            for name in _STATS:
                if name in row.index:
                    node[name] = _number(row[name])
            if isinstance(node["items"], float):
                node["items"] = int(node["items"])
            models = row.get("models")
            if isinstance(models, str) and models:
                node["models"] = models
        children = []
        if spec["kind"] == "route":
            branches = [(str(value), inner) for value, inner in spec["branches"].items()]
            if "default" in spec:
                branches.append(("*", spec["default"]))
            for value, inner in branches:
                children.append({"branch": value, "stages": stage_tree(inner, profile, f"{key}.{value}.")})
        node["children"] = children
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


def _rate(value) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def stage_stats(node: dict) -> str:
    """One line: ``12 items · 340/s · 42% of the time · 25% to the fallback`` (or ``did not run``)."""
    if node["items"] is None:
        return "did not run"
    parts = [f"{node['items']:,} items" + (f" · {_rate(node['items_per_s'])}/s" if node["items_per_s"] is not None
                                           else "")]
    if node["share"] is not None:
        parts.append(f"{node['share'] * 100:.0f}% of the time")
    if node["fallback_share"] is not None:
        parts.append(f"{node['fallback_share'] * 100:.0f}% to the fallback")
    if node["weight_bytes"]:
        parts.append(f"weights {format_bytes(node['weight_bytes'])}")
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

    def __repr__(self) -> str:
        return f"<specnb PipelineView of {self.pipeline!r}>"

    # -- without a kernel -------------------------------------------------------------------------
    def snapshot_html(self) -> str:
        e = html.escape
        head = f"<strong>{e(self.name)}</strong> · {len(self.stages)} stages"
        if self.total_seconds is not None:
            head += e(f" · last run {self.total_seconds:.3g} s")
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
                        f"<td>{e(models)}</td><td>{e(stage_stats(node))}</td></tr>")
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
