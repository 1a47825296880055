"""Widget state and messages without a browser: a recording comm stands in for the front end."""

from __future__ import annotations

import json

import comm
import pytest
import traitlets
from comm.base_comm import BaseComm

import specnb
from specnb.widgets import CompareView, ModelPanel
from specnb.widgets.compare_view import DETAIL_CHARS, ROW_CHARS

LANGS = ["en", "fr", "de"]


class RecordingComm(BaseComm):
    """A comm whose messages to the front end are kept in ``sent``."""

    def __init__(self, **kwargs):
        self.sent: list[tuple[str, dict, list]] = []
        super().__init__(**kwargs)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        self.sent.append((msg_type, data or {}, list(buffers or [])))


@pytest.fixture(autouse=True)
def recording_comm(monkeypatch):
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: RecordingComm(**kwargs))


def updates(widget) -> list[dict]:
    """The state updates the widget sent since the last call."""
    sent, widget.comm.sent = widget.comm.sent, []
    return [data["state"] for kind, data, _ in sent if kind == "comm_msg" and data.get("method") == "update"]


def from_browser(widget, **state) -> None:
    """What the front end sends when a control changes a trait."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state}}, "buffers": []})


def custom(widget, content: dict) -> None:
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def guesser(table: dict, default="en"):
    def predict(texts):
        return [table.get(t, default) for t in texts]

    return predict


# -- model panel --------------------------------------------------------------------------------------
def test_panel_follows_the_registry_live():
    panel = ModelPanel()
    assert panel.models == []
    updates(panel)
    specnb.load(guesser({}), alias="a", task="langid")
    sent = updates(panel)
    assert [m["alias"] for m in sent[-1]["models"]] == ["a"]
    specnb.load(guesser({}), alias="b", task="langid")
    assert [m["alias"] for m in panel.models] == ["a", "b"]
    specnb.unload("a")
    assert [m["alias"] for m in updates(panel)[-1]["models"]] == ["b"]
    row = panel.models[0]
    assert row["task"] == "langid" and row["device"] == "cpu" and row["pinned"] is False
    json.dumps(panel.get_state())  # everything the panel syncs is plain JSON


def test_panel_unload_and_pin_buttons_change_the_registry():
    specnb.load(guesser({}), alias="a", task="langid")
    specnb.load(guesser({}), alias="b", task="langid")
    panel = ModelPanel()
    custom(panel, {"type": "pin", "alias": "b", "pinned": True})
    assert specnb.get("b").pinned and [m["pinned"] for m in panel.models] == [False, True]
    custom(panel, {"type": "unload", "alias": "a"})
    assert [m.alias for m in specnb.registry] == ["b"]
    assert [m["alias"] for m in panel.models] == ["b"] and panel.error == ""


def test_panel_reports_a_failed_action_in_one_line():
    panel = ModelPanel()
    custom(panel, {"type": "unload", "alias": "ghost"})
    assert panel.error.startswith("AliasError: no loaded model has alias 'ghost'")
    custom(panel, {"type": "explode"})
    assert "unknown panel message 'explode'" in panel.error


def test_panel_shows_memory_against_budget_and_total():
    specnb.config.memory_budget["cpu"] = "1GiB"
    specnb.load(guesser({}), alias="a", task="langid")
    panel = ModelPanel()
    (cpu,) = panel.devices
    assert cpu["device"] == "cpu" and cpu["budget_bytes"] == 1024**3
    assert cpu["total_bytes"] > cpu["budget_bytes"] and cpu["used_bytes"] == sum(
        m["weight_bytes"] or 0 for m in panel.models)


def test_panel_says_what_its_memory_column_measures():
    from specnb.presentation import MEMORY_NOTE

    panel = ModelPanel()
    assert panel.notes == {"memory": MEMORY_NOTE}
    assert "measured" in MEMORY_NOTE and "below the weights" in MEMORY_NOTE
    assert "notes" in panel.get_state()


def test_closed_panel_stops_listening():
    panel = ModelPanel()
    panel.close()
    specnb.load(guesser({}), alias="a", task="langid")  # no error from the closed panel
    assert panel.models == []


def test_panel_snapshot_is_escaped_html():
    specnb.load(guesser({}), alias="<b>x</b>", task="langid")
    panel = ModelPanel()
    data, _ = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "&lt;b&gt;x&lt;/b&gt;" in data["text/html"] and "<b>x</b>" not in data["text/html"]


# -- compare view -------------------------------------------------------------------------------------
@pytest.fixture
def comparison(specnb_home):
    texts = [f"sentence number {i} " + ("long " * 100 if i == 3 else "") for i in range(45)]
    gold = [LANGS[i % 3] for i in range(45)]
    right = specnb.load(guesser(dict(zip(texts, gold))), alias="right", task="langid")
    half = specnb.load(guesser({t: g for i, (t, g) in enumerate(zip(texts, gold)) if i % 2 == 0}), alias="half",
                       task="langid")
    return specnb.compare("langid", texts, [right, half], labels=gold, store=False)


def test_view_sends_one_page_and_the_summary(comparison):
    view = CompareView(comparison, page_size=10)
    state = view.get_state()
    assert state["models"] == ["right", "half"] and state["has_gold"] is True
    assert state["n_items"] == 45
    disagree = len(comparison.disagreements)
    assert state["n_disagreements"] == disagree == state["total"]
    assert len(state["rows"]) == 10
    first = state["rows"][0]
    assert set(first["answers"]) == {"right", "half"}
    assert state["detail"] is None and state["selected"] is None  # no row open until one is clicked
    assert first["answers"]["right"]["correct"] is True and first["answers"]["half"]["correct"] is False
    assert [r["model"] for r in state["summary_rows"]] == ["right", "half"]
    accuracy = {r["model"]: r["accuracy"] for r in state["summary_rows"]}
    assert accuracy == pytest.approx({"right": 1.0, "half": comparison.summary.loc["half", "accuracy"]})
    assert {c["key"] for c in state["summary_columns"]} >= {"accuracy", "p50_ms", "items_per_s", "usd_per_1m"}
    assert {"quality_vs_latency", "latency", "confusion"} <= set(state["figures"])
    json.dumps(state, allow_nan=False)  # NaN never reaches the browser


def test_title_leads_with_the_runs_name_and_counts_in_the_singular(specnb_home):
    model = specnb.load(guesser({}), alias="en", task="langid")
    named = specnb.compare("langid", ["one text"], [model], name="weekly check", progress=False)
    assert CompareView(named).title == f"weekly check · {named.run_id} · langid · 1 item"
    plain = specnb.compare("langid", ["a", "b"], [model], store=False, progress=False)
    assert CompareView(plain).title == "not stored · langid · 2 items"


def test_paging_sends_only_the_new_page(comparison):
    view = CompareView(comparison, page_size=10)
    updates(view)
    from_browser(view, page=1)
    (sent,) = updates(view)
    assert set(sent) <= {"rows", "total", "page"}
    assert [r["item"] for r in sent["rows"]] == list(comparison.disagreements.index[10:20])
    from_browser(view, page=99)  # past the end: clamped to the last page
    assert view.page == (view.total - 1) // 10
    assert len(view.rows) == view.total - view.page * 10


def test_filters_and_sort(comparison):
    view = CompareView(comparison, page_size=100)
    from_browser(view, focus_model="half", correct_filter="wrong")
    assert view.total == sum(1 for v in comparison.table["half:correct"] if v is False)
    assert all(r["answers"]["half"]["correct"] is False for r in view.rows)
    from_browser(view, label_filter="fr")
    assert view.rows and all(r["label"] == "fr" for r in view.rows)
    from_browser(view, label_filter="", correct_filter="all", only_disagreements=False)
    assert view.total == 45
    from_browser(view, query="NUMBER 1")
    assert {r["item"] for r in view.rows} == {1, *range(10, 20)}
    from_browser(view, query="", sort="-score", focus_model="right")
    assert len(view.rows) == 45
    scores = [r["answers"]["right"]["score"] for r in view.rows]
    known = [s for s in scores if s is not None]
    assert known == sorted(known, reverse=True)


def test_a_filter_change_goes_back_to_the_first_page(comparison):
    view = CompareView(comparison, page_size=10, only_disagreements=False)
    from_browser(view, page=3)
    from_browser(view, correct_filter="correct")
    assert view.page == 0


def test_bad_front_end_values_are_refused(comparison):
    view = CompareView(comparison)
    for trait, value in [("page_size", 7), ("focus_model", "nobody"), ("label_filter", "xx"), ("sort", "name")]:
        with pytest.raises(traitlets.TraitError, match=trait):
            setattr(view, trait, value)


def test_opening_a_row_sends_every_models_full_output(comparison):
    view = CompareView(comparison, only_disagreements=False)
    assert len(view.rows[3]["input"]) < len(comparison.inputs[3])  # the long one is cut in the table
    assert len(view.rows[3]["input"]) <= ROW_CHARS + 40
    from_browser(view, selected=3)
    detail = view.detail
    assert detail["item"] == 3 and detail["input"] == comparison.inputs[3]
    assert set(detail["answers"]) == {"right", "half"}
    assert detail["answers"]["right"]["raw"]["label"] == comparison.labels[3]
    from_browser(view, selected=None)
    assert view.detail is None
    assert DETAIL_CHARS >= 20_000


def test_plotly_is_sent_once_on_request_as_a_buffer(comparison):
    view = CompareView(comparison)
    view.comm.sent = []
    custom(view, {"type": "plotly"})
    ((kind, data, buffers),) = view.comm.sent
    assert data["content"] == {"type": "plotly_js"}
    assert len(buffers) == 1 and b"plotly" in bytes(buffers[0])[:2000] and len(buffers[0]) > 1_000_000


def test_snapshot_shows_summary_and_escaped_inputs(specnb_home):
    hostile = ["<img src=x onerror=alert(1)>", "<script>window.__pwned=1</script>", "plain"]
    a = specnb.load(guesser({}, "en"), alias="a", task="langid")
    b = specnb.load(guesser({}, "fr"), alias="b", task="langid")
    view = CompareView(specnb.compare("langid", hostile, [a, b], store=False))
    data, _ = view._repr_mimebundle_()
    html = data["text/html"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;script&gt;" in html
    assert "<img" not in html and "<script" not in html
    assert "specnb-snapshot" in html and ">a<" in html


def test_a_100k_item_comparison_keeps_the_output_and_state_small(specnb_home):
    """The widget's side; test_saved_notebook runs 100,000 items through the magics in a real kernel."""
    n = 100_000
    texts = [f"item {i} " + "x" * (i % 500) for i in range(n)]
    gold = [LANGS[i % 3] for i in range(n)]
    a = specnb.load(guesser({}, "en"), alias="a", task="langid")
    b = specnb.load(guesser({}, "fr"), alias="b", task="langid")
    view = CompareView(specnb.compare("langid", texts, [a, b], labels=gold, store=False, progress=False))
    data, metadata = view._repr_mimebundle_()
    output = len(json.dumps({"data": data, "metadata": metadata}))
    state = len(json.dumps(view.get_state()))
    assert output < 20_000, output
    assert state < 250_000, state  # the whole widget state, bundle and figures included
    updates(view)
    from_browser(view, page=2000)
    (sent,) = updates(view)
    assert len(json.dumps(sent)) < 20_000 and len(sent["rows"]) == 20
