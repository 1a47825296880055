"""Pipelines: the cell syntax, every stage kind, validation errors that name the line, YAML, sweeps, the CLI."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specnb
from specnb.compose import Pipeline, parse
from specnb.errors import PipelineError

TEXTS = ["The cat sat on the mat.", "Le chat est sur le tapis.", "Der Hund bellt laut.", "I love this film!"]


class Counting:
    """A label model (callable) that answers from a table and counts what it was asked."""

    def __init__(self, answers: dict, default=("x", 0.5)):
        self.answers, self.default, self.seen = answers, default, []

    def __call__(self, texts):
        self.seen.extend(texts)
        return [self.answers.get(t, self.default) for t in texts]


@pytest.fixture
def models():
    spec_answers = {t: ("pos" if "love" in t else "neg", 0.95 if "love" in t else 0.4) for t in TEXTS}
    specialist, fallback = Counting(spec_answers), Counting({t: ("pos", 0.8) for t in TEXTS})
    specnb.load(specialist, alias="spec", task="classify")
    specnb.load(fallback, alias="fb", task="classify")
    specnb.load(Counting({t: ("en" if " the " in f" {t.lower()} " or "love" in t else "xx", 0.9) for t in TEXTS}),
                alias="lang", task="langid")
    return specialist, fallback


# -- syntax ----------------------------------------------------------------------------------------------------
def test_parse_every_form_with_line_numbers():
    cell = """
# a comment
lang = langid(text)
topic = minilm(text, labels=topics, task="classify")
topic2 = cascade(minilm, smollm2, labels=["a", "b"], threshold=0.7)(text)
route lang: en -> ents = ner(text); fr, de -> skip; * -> s = vader(text)
clean_up
"""
    specs = parse(cell)
    assert [s["line"] for s in specs] == [3, 4, 5, 6, 7]
    assert specs[0] == {"kind": "model", "field": "lang", "model": "langid", "input": "text", "line": 3}
    assert specs[1]["labels"] == {"var": "topics"} and specs[1]["task"] == "classify"
    assert specs[2] == {"kind": "cascade", "field": "topic2", "specialist": "minilm", "fallback": "smollm2",
                        "input": "text", "labels": ["a", "b"], "threshold": 0.7, "line": 5}
    route = specs[3]
    assert route["field"] == "lang" and route["branches"]["fr"] == [] == route["branches"]["de"]
    assert route["branches"]["en"][0]["model"] == "ner" and route["default"][0]["field"] == "s"
    assert specs[4] == {"kind": "python", "function": "clean_up", "line": 7}


@pytest.mark.parametrize("line, message", [
    ("lang = ", "not a stage"),
    ("lang, x = langid(text)", "one field name"),
    ("lang = langid", "must call a model"),
    ("lang = langid(text, other)", "reads one field"),
    ("lang = langid(text, bogus=1)", "unknown option 'bogus'; valid: task, labels"),
    ("t = cascade(a)(text)", "two models"),
    ("t = cascade(a, b)(text)", "needs threshold="),
    ("t = cascade(a, b, threshold=0.5)", "cascade(SPECIALIST, FALLBACK"),
    ("route lang en -> x = m(text)", "a route reads"),
    ("route lang: en", "needs `VALUE -> STAGE`"),
    ("route lang: * -> skip; * -> skip", "two `*` branches"),
    ("route lang: en -> skip; en -> skip", "two branches"),
    ("langid(text)", "a stage writes a field"),
])
def test_syntax_errors_name_the_line(line, message):
    with pytest.raises(PipelineError, match=rf"^line 2: `.*`: .*{re.escape(message)}"):
        parse("lang = langid(text)\n" + line)


# -- running ---------------------------------------------------------------------------------------------------
def test_model_route_cascade_and_python_stages(models):
    specialist, fallback = models
    from compose_stages import add_length

    pipe = Pipeline(name="p").add(parse(
        "lang = lang(text)\n"
        "route lang: en -> sent = cascade(spec, fb, labels=['pos', 'neg'], threshold=0.9)(text); * -> skip"))
    pipe.add(add_length)
    out = pipe(TEXTS)
    assert list(out["lang"]) == ["en", "xx", "xx", "en"]
    assert out.loc[0, "sent"] == "pos" and out.loc[0, "sent:by"] == "fb"  # specialist unsure (0.4 < 0.9)
    assert out.loc[3, "sent"] == "pos" and out.loc[3, "sent:by"] == "spec"  # sure: the fallback never sees it
    assert out["sent"].isna().tolist() == [False, True, True, False]  # skipped by the route
    assert sorted(specialist.seen) == sorted([TEXTS[0], TEXTS[3]]) and fallback.seen == [TEXTS[0]]
    assert list(out["length"]) == [len(t) for t in TEXTS]
    profile = pipe.profile
    assert list(profile.index) == ["0", "1", "1.en.0", "2"]
    assert profile.loc["1.en.0", "items"] == 2 and profile.loc["1.en.0", "fallback_share"] == 0.5
    assert profile.loc["0", "items"] == 4 and 0 < profile["share"].sum() <= 1.0 + 1e-9


def test_python_stage_returning_new_records_and_a_bad_one():
    from compose_stages import shout

    out = Pipeline([shout])(["abc"])
    assert out.loc[0, "shout"] == "ABC"

    @specnb.stage
    def broken(records):
        return records[:-1]

    with pytest.raises(PipelineError, match="must return one dict per record"):
        Pipeline([broken])(["a", "b"])
    with pytest.raises(PipelineError, match="decorate it with @specnb.stage"):
        Pipeline([lambda records: records])


def test_dataframe_inputs_keep_their_columns_and_text_column(models):
    frame = pd.DataFrame({"body": TEXTS, "id": [10, 11, 12, 13]}, index=list("abcd"))
    out = Pipeline(parse("lang = lang(text)"))(frame, text="body")
    assert list(out.columns[:2]) == ["body", "id"] and list(out.index) == list("abcd")
    with pytest.raises(PipelineError, match="no 'text' column"):
        Pipeline(parse("lang = lang(text)"))(frame)


def test_bad_items_become_errors_and_the_rest_run(models):
    out = Pipeline(parse("lang = lang(text)"))(["The cat sat on the mat.", None])
    assert out.loc[0, "lang"] == "en" and pd.isna(out.loc[1, "lang"])
    assert pd.isna(out.loc[0, "lang:error"]) and "missing" in out.loc[1, "lang:error"]


@pytest.mark.real
def test_a_pipeline_never_changes_the_default_task_of_a_model_it_loads():
    specnb.load("smollm2")
    specnb.unload("smollm2")
    # vader is never sure of a score of 1.0, so smollm2 answers: loaded by name, asked for sentiment per call
    out = Pipeline(parse("s = cascade(vader, smollm2, threshold=1.0)(text)"))(["I love this film!"])
    assert out.loc[0, "s:by"] == "smollm2" and out.loc[0, "s"] in ("positive", "negative", "neutral")
    llm = specnb.get("smollm2")
    assert llm.task == "generate" and specnb.models().set_index("alias").loc["smollm2", "task"] == "generate"
    [answer] = llm.predict(["Name a colour."])
    assert isinstance(answer, specnb.Generation) and answer.text.strip()


# -- validation ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell, message", [
    ("x = nosuchmodel(text)", r"line 1: unknown model 'nosuchmodel'"),
    ("x = lang(body)", r"line 1: unknown field 'body'; known here: text"),
    ("x = lang(y)\ny = lang(text)", r"line 1: reads 'y' before `y = lang\(text\)` \(line 2\) writes it: a cycle"),
    ("x = lang(x)", r"line 1: reads 'x', which only this stage writes: a cycle"),
    ("x = vader(text, task='ner')", r"line 1: model 'vader' cannot serve 'ner'; it serves sentiment"),
    ("x = cascade(vader, langid, threshold=0.5)(text)", r"line 1: model 'langid' cannot serve 'sentiment'"),
    ("x = cascade(spec, fb, labels=['a'], threshold=2)(text)", r"line 1: threshold must be a number in \[0, 1\]"),
    ("x = lang(text)\nroute x: en -> y = lang(z)", r"line 2: unknown field 'z'"),
])
def test_validation_errors_name_the_line(models, cell, message):
    with pytest.raises(PipelineError, match=message):
        Pipeline().add(parse(cell))


def test_a_stage_reading_a_field_that_holds_no_text_is_refused_when_built(models):
    with pytest.raises(PipelineError, match=r"^line 2: `t = vader\(e\)` reads 'e', which holds entities \(a list of "
                                            r"spans\) \(written by `e = ner\(text\)`, line 1\); vader \(sentiment\) "
                                            r"reads text: "):
        Pipeline().add(parse("e = ner(text)\nt = vader(e)"))
    with pytest.raises(PipelineError, match=r"^line 3: .* reads 'e', which holds entities"):  # some records do
        Pipeline().add(parse("l = lang(text)\nroute l: en -> e = ner(text); * -> skip\nt = vader(e)"))
    with pytest.raises(PipelineError, match=r"^line 2: .* reads 'v', which holds a vector .* spec and fb "
                                            r"\(classify\) read text"):
        Pipeline().add(parse("v = minilm(text, task='embed')\nt = cascade(spec, fb, labels=['a'], threshold=0.5)(v)"))
    pipe = Pipeline().add(parse("l = lang(text)\nt = spec(l, labels=['x', 'y'])"))  # a label is text
    assert pipe(TEXTS[:1]).loc[0, "t"] == "x" and models[0].seen == ["en"]
    assert len(specnb.registry) == 3  # only the fixture's models: nothing was loaded to refuse a stage


def test_a_task_typo_in_a_stage_names_the_line_and_the_closest_task():
    with pytest.raises(PipelineError, match=r"^line 1: unknown task 'sentimnt'; did you mean 'sentiment'\? "
                                            r"valid tasks: classify, sentiment, langid, ner, embed, generate"):
        Pipeline().add(parse("x = vader(text, task='sentimnt')"))


def test_a_generalist_needs_a_task_or_labels():
    specnb.load(lambda texts: ["hi"] * len(texts), alias="gen", task="generate")
    with pytest.raises(PipelineError, match="needs task= or labels="):
        Pipeline().add(parse("x = gen(text)"))


def test_failed_add_leaves_the_pipeline_as_it_was(models):
    pipe = Pipeline(parse("lang = lang(text)"))
    with pytest.raises(PipelineError):
        pipe.add(parse("x = lang(nope)"))
    assert len(pipe) == 1


# -- YAML ------------------------------------------------------------------------------------------------------
def test_yaml_round_trip_and_python_stages_by_import_path(models, tmp_path):
    from compose_stages import add_length

    pipe = Pipeline(name="triage").add(parse(
        "lang = lang(text)\nroute lang: en -> s = cascade(spec, fb, labels=['pos', 'neg'], threshold=0.5)(text)"))
    pipe.add(add_length)
    path = tmp_path / "p.yaml"
    text = pipe.to_yaml(path)
    assert "function: compose_stages:add_length" in text and "line" not in text
    again = Pipeline.from_yaml(path)
    assert again.to_dict() == pipe.to_dict() and again.to_yaml() == text
    pd.testing.assert_frame_equal(again(TEXTS), pipe(TEXTS))


def test_yaml_errors_name_the_yaml_line(models):
    text = "name: p\ninput: text\nstages:\n- kind: model\n  field: a\n  model: lang\n  input: text\n" \
           "- kind: model\n  field: b\n  model: ghost\n  input: a\n"
    with pytest.raises(PipelineError, match=r"^line 8: unknown model 'ghost'"):
        Pipeline.from_yaml(text)
    with pytest.raises(PipelineError, match=r"line 3: not valid YAML: expected .,. or .]."):
        Pipeline.from_yaml("name: [\nstages: x\n")
    with pytest.raises(PipelineError, match="unknown stage kind 'loop'"):
        Pipeline.from_yaml("stages:\n- kind: loop\n")


@pytest.mark.parametrize("name", ["\x85", "a\u2028b", "two\nlines", "tab\there", " lead", "#hash", "yes", "1.5"])
def test_yaml_keeps_every_string_exactly(models, name):
    pipe = Pipeline([{"kind": "model", "field": "a", "model": "spec", "input": "text", "labels": [name, "x"]}],
                    name=name)
    again = Pipeline.from_yaml(pipe.to_yaml())
    assert again.name == name and again.stages[0]["labels"] == [name, "x"]


_fields = st.sampled_from(["a", "b", "c"])
_labels = st.lists(st.sampled_from(["pos", "neg", "x y", "é"]), min_size=1, max_size=3, unique=True)


@st.composite
def _stage(draw, depth=0):
    kind = draw(st.sampled_from(["model", "cascade", "route"] if depth == 0 else ["model", "cascade"]))
    field = draw(_fields)
    if kind == "model":
        return {"kind": "model", "field": field, "model": draw(st.sampled_from(["spec", "fb"])), "input": "text",
                "labels": draw(_labels)}
    if kind == "cascade":
        return {"kind": "cascade", "field": field, "specialist": "spec", "fallback": "fb",
                "threshold": draw(st.floats(0, 1, allow_nan=False)), "input": "text", "labels": draw(_labels)}
    branches = draw(st.dictionaries(st.sampled_from(["en", "fr", "1", "yes"]), st.lists(_stage(depth=1), max_size=1),
                                    max_size=3))
    spec = {"kind": "route", "field": "text", "branches": branches}
    if draw(st.booleans()):
        spec["default"] = draw(st.lists(_stage(depth=1), max_size=1))
    return spec


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(stages=st.lists(_stage(), min_size=1, max_size=4), name=st.text(min_size=1, max_size=12))
def test_yaml_round_trip_property(models, stages, name):
    pipe = Pipeline(stages, name=name)
    again = Pipeline.from_yaml(pipe.to_yaml())
    assert again.to_dict() == pipe.to_dict()
    assert again.to_yaml() == pipe.to_yaml()


# -- sweep -----------------------------------------------------------------------------------------------------
def test_sweep_scores_each_threshold_on_the_same_answers(models):
    specialist, fallback = models
    gold = ["neg", "pos", "pos", "pos"]
    pipe = Pipeline(parse("s = cascade(spec, fb, labels=['pos', 'neg'], threshold=0.5)(text)"))
    sweep = pipe.sweep("s", [0.0, 0.5, 1.0], gold, TEXTS, price_per_hour=3.6)
    table = sweep.table
    assert list(table["threshold"]) == [0.0, 0.5, 1.0]
    # specialist: neg, neg, neg, pos (0.4, 0.4, 0.4, 0.95) -> 2/4 right; fallback: pos everywhere -> 3/4
    assert list(table["accuracy"]) == [0.5, 0.75, 0.75]
    assert list(table["fallback_share"]) == [0.0, 0.75, 1.0]
    assert table["usd_per_1m"].is_monotonic_increasing and table.loc[0, "usd_per_1m"] > 0
    assert (sweep.specialist_accuracy, sweep.fallback_accuracy) == (0.5, 0.75)
    # calibration: equal scores share a bin: 0.4 (1 of 3 right) and 0.95 (1 of 1) -> 3/4·|1/3-0.4| + 1/4·0.05
    assert sweep.specialist_ece == pytest.approx(0.0625) and sweep.note is None
    assert sorted(fallback.seen) == sorted(TEXTS)  # the fallback answered every item, once
    assert len(sweep.figure().data) == 3
    with pytest.raises(PipelineError, match="no cascade writes 'nope'; cascades: s"):
        pipe.sweep("nope", [0.5], gold, TEXTS)
    with pytest.raises(PipelineError, match="3 labels for 4 inputs"):
        pipe.sweep("s", [0.5], gold[:3], TEXTS)


def test_sweep_says_when_the_specialists_scores_are_badly_calibrated(models):
    specnb.load(Counting({t: ("neg", 0.99) for t in TEXTS}), alias="sure", task="classify")
    pipe = Pipeline(parse("s = cascade(sure, fb, labels=['pos', 'neg'], threshold=0.5)(text)"))
    sweep = pipe.sweep("s", [0.0, 0.995], ["neg", "pos", "pos", "pos"], TEXTS)
    assert sweep.specialist_ece == pytest.approx(0.99 - 0.25)
    assert sweep.note.startswith("sure's scores are badly calibrated (ECE 0.740 ≥ 0.1)")
    assert "badly calibrated" in sweep._repr_html_() and "badly calibrated" in repr(sweep)
    assert "badly calibrated" in sweep.figure().layout.title.text
