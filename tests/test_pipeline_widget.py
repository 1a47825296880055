"""The pipeline view's state without a browser: the stage tree with the last run's statistics, the sample
table, JSON safety and the escaped snapshot (a recording comm stands in for the front end)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import specnb
from specnb.compose.spec import render
from specnb.errors import InputError
from specnb.widgets import PipelineView
from specnb.widgets.pipeline_view import CELL_CHARS, MAX_ROWS, _cell

from fakes import record_comms

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def recording_comm(monkeypatch):
    record_comms(monkeypatch)


@specnb.stage(reads=["text"], writes=["n"])
def count_chars(records):
    for record in records:
        record["n"] = len(record["text"])


@specnb.stage(reads=["text"], writes=["meta"])
def annotate(records):
    for record in records:
        words = record["text"].split()
        record["meta"] = {"words": words[:3], "ratio": float("nan") if not words else len(words) / 10}


def _langid(texts):
    return [("fr", 0.9) if "bonjour" in t else ("de", 0.7) if "hallo" in t else ("en", 0.8) for t in texts]


@pytest.fixture
def pipe():
    specnb.load(_langid, alias="lid", task="langid")
    specnb.load(lambda ts: [("a", 0.95) if "good" in t else ("b", 0.3) for t in ts], alias="spec", task="classify")
    specnb.load(lambda ts: [("b", 0.99) for _ in ts], alias="big", task="classify")
    pipeline = specnb.Pipeline(name="triage")
    pipeline.add([
        {"kind": "model", "field": "lang", "model": "lid", "input": "text"},
        {"kind": "route", "field": "lang",
         "branches": {"en": [{"kind": "cascade", "field": "top", "specialist": "spec", "fallback": "big",
                              "threshold": 0.5, "input": "text", "labels": ["a", "b"]},
                             {"kind": "python", "function": "annotate"}],
                      "fr": []},
         "default": [{"kind": "python", "function": "count_chars"}]},
        annotate,
    ], namespace={"annotate": annotate, "count_chars": count_chars})
    return pipeline


TEXTS = ["good day", "bad day", "bonjour", "hallo welt", HOSTILE]


def by_id(nodes, found=None) -> dict:
    found = {} if found is None else found
    for node in nodes:
        found[node["id"]] = node
        for branch in node["children"]:
            by_id(branch["stages"], found)
    return found


def test_stage_tree_joins_the_profile_by_stage_id(pipe):
    pipe(TEXTS)
    view = PipelineView(pipe)
    assert view.name == "triage" and view.input == "text"
    assert [n["id"] for n in view.stages] == ["0", "1", "2"]
    route = view.stages[1]
    assert [b["branch"] for b in route["children"]] == ["en", "fr", "*"]
    en, fr, default = route["children"]
    assert [n["id"] for n in en["stages"]] == ["1.en.0", "1.en.1"] and fr["stages"] == []
    assert [n["id"] for n in default["stages"]] == ["1.*.0"]

    nodes = by_id(view.stages)
    assert {k: n["items"] for k, n in nodes.items()} == {"0": 5, "1": 5, "1.en.0": 3, "1.en.1": 3, "1.*.0": 1,
                                                         "2": 5}
    assert [n["kind"] for n in view.stages] == ["model", "route", "python"]
    assert nodes["1.en.0"]["kind"] == "cascade" and nodes["1.en.0"]["models"] == "spec → big"
    assert nodes["0"]["models"] == "lid" and nodes["1"]["models"] == "" and nodes["2"]["models"] == ""
    assert nodes["0"]["field"] == "lang" and nodes["1"]["field"] == "lang" and nodes["2"]["field"] == "meta"
    assert nodes["0"]["text"] == render(pipe.stages[0]) == "lang = lid(text)"
    assert nodes["1"]["text"] == render(pipe.stages[1])
    # two of the three English texts are below the specialist's threshold
    assert nodes["1.en.0"]["fallback_share"] == pytest.approx(2 / 3)
    assert all(n["fallback_share"] is None for k, n in nodes.items() if k != "1.en.0")
    shares = [n["share"] for n in nodes.values()]
    assert all(s is not None and 0 <= s <= 1 for s in shares) and sum(shares) <= 1 + 1e-9
    for node in nodes.values():
        assert node["items_per_s"] is None or (node["items_per_s"] > 0 and math.isfinite(node["items_per_s"]))
        assert node["seconds"] >= 0 and node["weight_bytes"] in (None, 0)
    assert view.total_seconds > 0
    assert sum(n["seconds"] for n in nodes.values()) <= view.total_seconds * (1 + 1e-9)
    json.dumps(view.get_state(), allow_nan=False)


def test_stages_that_did_not_run_have_null_stats(pipe):
    view = PipelineView(pipe)  # before any run
    nodes = by_id(view.stages)
    assert set(nodes) == {"0", "1", "1.en.0", "1.en.1", "1.*.0", "2"}
    for node in nodes.values():
        assert all(node[k] is None for k in ("items", "seconds", "items_per_s", "share", "weight_bytes",
                                             "fallback_share"))
    assert nodes["1.en.0"]["models"] == "spec → big"  # named from the spec even before a run
    assert view.total_seconds is None and view.columns == [] and view.rows == [] and view.n_rows == 0
    json.dumps(view.get_state(), allow_nan=False)
    assert "did not run" in view._repr_mimebundle_()[0]["text/html"]

    pipe(["good day"])  # only the English branch runs
    view.refresh()
    nodes = by_id(view.stages)
    assert nodes["1.en.0"]["items"] == 1 and nodes["1.*.0"]["items"] is None and nodes["1.*.0"]["share"] is None
    json.dumps(view.get_state(), allow_nan=False)


def test_refresh_sends_the_new_run(pipe):
    view = PipelineView(pipe)
    view.comm.sent.clear()
    pipe.sample = TEXTS
    pipe.preview()
    view.refresh()
    states = [data["state"] for kind, data in view.comm.sent if kind == "comm_msg" and data.get("method") == "update"]
    merged = {k: v for state in states for k, v in state.items()}
    assert {"stages", "columns", "rows", "total_seconds"} <= set(merged)
    assert merged["stages"][0]["items"] == 5 and len(merged["rows"]) == 5


def test_sample_table_has_every_field_json_safe_and_cut(pipe):
    long = "good " + "x" * 1000
    pipe.sample = pd.DataFrame({"text": TEXTS + [long] * 55, "source": range(60)})
    pipe.preview_size = 60
    pipe.preview()
    view = PipelineView(pipe)
    assert view.columns == [str(c) for c in pipe.last_preview.columns]
    assert view.columns[:2] == ["text", "source"]
    assert {"lang", "lang:score", "top", "top:score", "top:by", "n", "meta"} <= set(view.columns)
    assert view.n_rows == 60 and len(view.rows) == MAX_ROWS
    assert all(len(row) == len(view.columns) for row in view.rows)
    col = {name: i for i, name in enumerate(view.columns)}
    french = view.rows[2]
    assert french[col["text"]] == "bonjour" and french[col["top"]] is None and french[col["top:score"]] is None
    assert french[col["meta"]] == {"words": ["bonjour"], "ratio": 0.1}  # a dict stays a JSON object
    assert view.rows[0][col["top:by"]] == "spec" and view.rows[1][col["top:by"]] == "big"
    assert view.rows[0][col["source"]] == 0 and isinstance(view.rows[0][col["source"]], int)
    cut = view.rows[10][col["text"]]
    assert cut.startswith(long[:CELL_CHARS]) and len(cut) < len(long) and "1,005 characters" in cut
    json.dumps(view.get_state(), allow_nan=False)


def test_output_given_replaces_the_preview(pipe):
    out = pipe(["good day", "bonjour"])
    view = PipelineView(pipe, output=out)
    assert view.n_rows == 2 and view.rows[0][0] == "good day"


def test_cell_values_are_json_safe():
    assert _cell(np.float32("nan")) is None and _cell(float("inf")) is None and _cell(pd.NA) is None
    assert _cell(None) is None and _cell(pd.NaT) is None
    assert _cell(np.int64(3)) == 3 and type(_cell(np.int64(3))) is int and _cell(np.bool_(True)) is True
    assert _cell(np.array([1.0, np.nan])) == [1.0, None]
    assert _cell({"a": [float("nan"), {"b": np.float64(2.5)}]}) == {"a": [None, {"b": 2.5}]}
    assert _cell(pd.Timestamp("2024-01-02")) == "2024-01-02 00:00:00" and _cell(2**60) == str(2**60)
    assert _cell(("x", 1)) == ["x", 1]
    json.dumps([_cell(v) for v in (np.float64("nan"), {"k": float("-inf")}, object())], allow_nan=False)


def test_snapshot_is_escaped_and_shows_ten_rows(pipe):
    pipe.name = "<script>alert(2)</script>"
    pipe.sample = TEXTS * 3
    pipe.preview()
    view = PipelineView(pipe)
    data, _ = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    snapshot = data["text/html"]
    assert "<img" not in snapshot and "<script" not in snapshot
    assert html_escaped(HOSTILE) in snapshot and html_escaped(pipe.name) in snapshot
    assert "lang = lid(text)" in snapshot and "spec → big" in snapshot and "67% to the fallback" in snapshot
    assert "skip" in snapshot and "* (default)" in snapshot and "1.en.0" in snapshot
    body = snapshot.split("<tbody>")[2]
    assert body.count("<tr>") == 10 and "first 10 of 15 rows" in snapshot


def html_escaped(text: str) -> str:
    import html

    return html.escape(text)


def test_nested_routes_get_nested_ids():
    specnb.load(_langid, alias="lid", task="langid")
    pipe = specnb.Pipeline([
        {"kind": "model", "field": "lang", "model": "lid", "input": "text"},
        {"kind": "route", "field": "lang", "branches": {"en": [
            {"kind": "model", "field": "again", "model": "lid", "input": "text"},
            {"kind": "route", "field": "again", "branches": {"en": [
                {"kind": "model", "field": "deep", "model": "lid", "input": "text"}]}},
        ]}},
    ])
    view = PipelineView(pipe)
    inner = view.stages[1]["children"][0]["stages"][1]
    assert inner["id"] == "1.en.1" and [b["branch"] for b in inner["children"]] == ["en"]  # no default: no "*"
    assert inner["children"][0]["stages"][0]["id"] == "1.en.1.en.0"
    pipe(["good day", "bonjour"])
    view.refresh()
    assert by_id(view.stages)["1.en.1.en.0"]["items"] == 1


def test_view_needs_a_pipeline():
    with pytest.raises(InputError, match="needs a specnb.Pipeline"):
        PipelineView("not a pipeline")
    assert "PipelineView" in specnb.widgets.__all__


def test_snapshot_times_and_counts_read_as_in_the_live_view(monkeypatch):
    """The title's time as `format_duration` writes it (``1.3 ms``, not ``0.00132 s``), and ``1 stage``,
    ``1 item`` in the singular: the live view's summary line, in the snapshot and the pipeline's own HTML."""
    import specnb.widgets.pipeline_view as pipeline_view

    specnb.load(_langid, alias="lid", task="langid")
    pipe = specnb.Pipeline([{"kind": "model", "field": "lang", "model": "lid", "input": "text"}], name="one")
    pipe(["bonjour"])
    monkeypatch.setattr(pipeline_view, "_total_seconds", lambda profile: 0.00132)
    view = PipelineView(pipe)
    assert view.summary == "1 stage · 1 item · last run 1.3 ms"
    snapshot = view.snapshot_html()
    assert "1 stage · 1 item · last run 1.3 ms" in snapshot and "0.00132" not in snapshot
    assert "1 item ·" in snapshot.split("<tbody>")[1]  # the stage's own line
    assert "1 stage<" in pipe._repr_html_() and "1 stages" not in pipe._repr_html_()
