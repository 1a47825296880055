"""The property suite: seeded, generated cases through every entry point a user hands data to — `Model.predict`
on every embedded default and on a callable, `compare`, the ``%%specnb pipe`` cell syntax, python stages, and
the CLI's readers — each asserting the contract: one prediction (or output row) per input, `Invalid` with a
reason for a bad item, a `SpecnbError` for everything else, and nothing already computed lost.
(`Pipeline.from_yaml` has its own in test_yaml_safety.) conftest prints how many cases ran."""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from properties import check_predictions, counted, seeded

import specnb
from specnb import Pipeline
from specnb.compose.syntax import parse
from specnb.errors import InputWarning, PipelineError, SpecnbError
from specnb.tasks.base import MAX_CHARS

# -- inputs ------------------------------------------------------------------------------------------------
_CHARS = st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),
                   st.characters(max_codepoint=0x1F), st.sampled_from("ée\u0301\u200b\ufeff\u202e 中文ﷺ\U0001f600"))
_WORDS = st.lists(st.sampled_from(["Angela", "Merkel", "visited", "Paris", "good", "awful", "bonjour", "le", "the",
                                   "Apple", "Inc.", "!", ",", "\n", "NOT", "😀", "ü"]), max_size=12).map(" ".join)
_ODD = st.sampled_from([None, math.nan, 3, 2.5, True, b"bytes", ["nested"], {"a": 1}, pd.NA, np.float64("nan")])
_SHORT = st.one_of(st.text(_CHARS, max_size=40), _WORDS, st.builds(np.str_, _WORDS), _ODD,
                   st.sampled_from(["", " ", "\n\t", "\ud800", "x" * (MAX_CHARS + 1)]))
# Long texts, one item in ten: they cost most of a case's time.
_ITEM = st.one_of(*[_SHORT] * 9, st.sampled_from(["word " * 2_000, "\ud800" * 1000, "Berlin " * 300]))


def _once(alias: str, function, task: str):
    """A callable model loaded once per test (the registry is emptied between tests, not between cases)."""
    return specnb.registry.get(alias) if alias in specnb.registry else specnb.load(function, alias=alias, task=task)


def _predicts(model, texts, **kwargs):
    predictions = model.predict(texts, progress=False, **kwargs)
    check_predictions(texts, predictions)
    return predictions


# -- predict on every embedded default -------------------------------------------------------------------------
@seeded(1500)
@given(items=st.lists(_ITEM, max_size=8))
@counted
def test_langid_answers_every_input_or_says_why(items):
    _predicts(specnb.load("langid"), items)


@seeded(1500)
@given(items=st.lists(_ITEM, max_size=8))
@counted
def test_vader_answers_every_input_or_says_why(items):
    _predicts(specnb.load("vader"), items)


_TYPES = st.one_of(st.none(), st.lists(st.sampled_from(["PERSON", "ORG", "GPE", "LOC", "DATE", "person", "x y"]),
                                       min_size=1, max_size=3, unique=True))


@seeded(500)
@given(items=st.lists(_SHORT, max_size=5), labels=_TYPES)
@counted
def test_ner_answers_every_input_or_says_why(items, labels):
    with contextlib.suppress(SpecnbError):  # e.g. a type list that is not a label space: refused whole
        _predicts(specnb.load("ner"), items, labels=labels)


_ZERO_SHOT = [("embed", None, True), ("embed", ["a", "b"], False), ("sentiment", None, True),
              ("sentiment", ["positive", "negative"], True), ("sentiment", ["sport", "politics"], False),
              ("classify", ["sport", "politics"], True), ("classify", {"sport": "games", "tech": "computers"}, True),
              ("classify", None, False), ("classify", ["sport"], False)]


@seeded(250)
@given(items=st.lists(_SHORT, max_size=5), case=st.sampled_from(_ZERO_SHOT))
@counted
def test_minilm_embeds_and_zero_shots_every_input_or_says_why(items, case):
    task, labels, valid = case
    try:
        _predicts(specnb.load("minilm"), items, task=task, labels=labels)
    except SpecnbError:
        assert not valid  # a label space the task cannot take, or none where zero-shot needs one: refused whole
    else:
        assert valid


@seeded(12)
@given(items=st.lists(st.one_of(_WORDS, _ODD, st.text(_CHARS, max_size=12)), min_size=1, max_size=2),
       task=st.sampled_from(["sentiment", "langid"]))
@counted
def test_smollm2_answers_every_input_or_says_why(items, task):
    specnb.config.max_new_tokens = 4  # the answer is a label: a few tokens say it, and keep the case cheap
    _predicts(specnb.load("smollm2"), items, task=task)


# -- predict on a callable, whose answers are hostile too ----------------------------------------------------
_OUTPUT = st.one_of(
    st.sampled_from(["positive", "negative", "", None, ("positive", "high"), {"label": "positive", "score": [1]},
                     ("negative", math.nan), ("positive", 2.0), ("neutral", -1), ("positive", 0.25), 12, 0.5,
                     {"label": "negative", "score": 1}, {"score": 0.5}, ("a", "b", "c"), [(0, 2, "PERSON")],
                     [(3, 1, "ORG")], [(0, 1, "PERSON"), (0, 2, "ORG")], [0.1, math.inf], [0.5, 0.25]]),
    st.tuples(st.text(max_size=5), st.floats(allow_nan=True, allow_infinity=True)),
    st.lists(st.tuples(st.integers(-2, 12), st.integers(-2, 12), st.sampled_from(["PERSON", "ORG", 3])), max_size=3),
)
_ANSWERS: list = []


def _answer(texts):
    if _ANSWERS and _ANSWERS[0] == "raise":
        raise RuntimeError("the user's own bug")
    if _ANSWERS and _ANSWERS[0] == "short":
        return []
    return [_ANSWERS[i % len(_ANSWERS)] if _ANSWERS else "positive" for i in range(len(texts))]


@seeded(1500)
@given(items=st.lists(_ITEM, max_size=6), outputs=st.one_of(st.lists(_OUTPUT, min_size=1, max_size=6),
                                                             st.sampled_from([["raise"], ["short"]])),
       task=st.sampled_from(["sentiment", "ner", "embed", "langid"]), batch_size=st.sampled_from([None, 1, 4]))
@counted
def test_a_callable_answers_every_input_or_says_why(items, outputs, task, batch_size):
    _ANSWERS[:] = outputs
    model = specnb.load(_answer, alias=f"fuzz-{task}", task=task)
    try:
        _predicts(model, items, batch_size=batch_size)
    except SpecnbError as error:  # only the callable's own failures stop the call: say which model
        assert outputs in (["raise"], ["short"]) and f"fuzz-{task}" in str(error), error


_ARGUMENT = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.floats(allow_nan=True), st.text(max_size=8),
                      st.binary(max_size=4), st.lists(st.text(max_size=4), max_size=3),
                      st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
                      st.sets(st.text(max_size=3), max_size=2), st.sampled_from([np.array("one"), np.array([["a"]])]))


@seeded(800)
@given(texts=st.one_of(_ARGUMENT, st.lists(_SHORT, max_size=4), st.builds(pd.Series, st.lists(_WORDS, max_size=3)),
                       st.builds(lambda xs: pd.DataFrame({"text": xs}), st.lists(_WORDS, max_size=3))),
       task=st.one_of(st.none(), st.sampled_from(["sentiment", "langid", "classify"]), _ARGUMENT),
       labels=st.one_of(st.none(), _ARGUMENT), batch_size=st.one_of(st.none(), _ARGUMENT))
@counted
def test_predict_arguments_answer_or_raise_a_specnb_error(texts, task, labels, batch_size):
    model = _once("args", lambda xs: ["positive"] * len(xs), "sentiment")
    try:
        predictions = model.predict(texts, task=task, labels=labels, batch_size=batch_size, progress=False)
    except SpecnbError:
        return
    assert isinstance(texts, (list, pd.Series)) and len(predictions) == len(texts)


# -- compare -----------------------------------------------------------------------------------------------------
_GOLD = st.sampled_from(["positive", "negative", "neutral", "Positive", "joy", None, 3])


@seeded(500)
@given(items=st.lists(_SHORT, max_size=6), gold=st.one_of(st.none(), st.lists(_GOLD, max_size=7)),
       models=st.lists(st.sampled_from(["vader", "always", "broken", "ghost-model"]), min_size=0, max_size=3),
       sample=st.one_of(st.none(), st.integers(-1, 8)), as_frame=st.booleans())
@counted
def test_compare_scores_every_input_or_raises_and_keeps_what_ran(specnb_home, items, gold, models, sample, as_frame):
    if "always" not in specnb.registry:
        specnb.load(lambda xs: [("positive", 0.75)] * len(xs), alias="always", task="sentiment")
        specnb.load(lambda xs: 1 / 0, alias="broken", task="sentiment")
    inputs = pd.DataFrame({"text": items, **({"label": gold} if gold is not None and len(gold) == len(items) else {})},
                          dtype=object) \
        if as_frame else items
    labels = None if as_frame else gold
    before = len(specnb.runs())
    try:
        comparison = specnb.compare("sentiment", inputs, models, labels=labels, sample=sample, progress=False)
    except SpecnbError:
        table = specnb.runs()  # the store still reads, and a run that started is marked, never left running
        assert len(table) <= before + 1 and "running" not in set(table["status"])
        if len(table) == before + 1:
            stored = specnb.get_run(table["id"].iloc[0])
            assert stored.status == "failed" and "broken" in models
        return
    n = min(len(items), sample) if sample else len(items)
    assert len(comparison.inputs) == n and list(comparison.summary.index) == list(dict.fromkeys(models))
    for alias in comparison.models:
        check_predictions(comparison.inputs, comparison.predictions[alias])
    assert specnb.get_run(comparison.run_id).status == "finished"


# -- the %%specnb pipe cell syntax ----------------------------------------------------------------------------------
_PIECES = st.sampled_from([
    "lang = langid(text)", "s = vader(text)", "t = always(text, labels=['a', 'b'])", "s = always(text, task=sentiment)",
    "s = cascade(always, vader, threshold=0.5)(text)", "s = cascade(always, vader, threshold=x)(text)",
    "route lang: en -> s = vader(text); * -> skip", "route lang: en -> s = vader(lang)", "route : x", "route lang",
    "tidy", "ghost", "x = ghost(text)", "x = vader(nothing)", "= vader(text)", "x = vader(", "x = vader(text, 3)",
    "x = vader(text, labels=topics)", "x = vader(text, labels={'a': 1})", "x = vader(text, bogus=1)",
    "import os", "x = __import__('os').getcwd()", "x = vader(text)(text)", "text = vader(text)", "# comment", "",
    "x = vader(**k)", "x = cascade(vader)(text)", "x = cascade(vader, always, threshold=2)(text)", "x, y = vader(text)",
    "x = langid(text)\nx = vader(text)", "route lang: en, fr -> s = vader(text); de -> tidy; * -> x = langid(text)",
])


@st.composite
def _cells(draw):
    lines = draw(st.lists(st.one_of(_PIECES, _PIECES, _PIECES, st.text(st.sampled_from("abx =(),:;'\"->*#[]{}\n"),
                                                                       max_size=24)), max_size=5))
    return "\n".join(lines)


@specnb.stage(writes=["tidy"])
def tidy(records):
    for record in records:
        record["tidy"] = str(record.get("text"))[:5]


@seeded(1500)
@given(cell=_cells(), inputs=st.lists(_WORDS, max_size=3))
@counted
def test_a_pipe_cell_builds_and_runs_or_raises_a_pipeline_error(cell, inputs):
    if "always" not in specnb.registry:
        specnb.load(lambda xs: [("positive", 0.25)] * len(xs), alias="always", task="sentiment")
        specnb.load("vader")
        specnb.load("langid")
    namespace = {"tidy": tidy, "topics": ["x", "y"], "x": 0.5}
    try:
        pipe = Pipeline(name="p").add(parse(cell), namespace=namespace)
    except PipelineError as error:
        assert str(error).startswith("line ") or "stage" in str(error), error  # it names where
        return
    try:
        frame = pipe(inputs)
    except SpecnbError:
        return
    assert len(frame) == len(inputs)


# -- python stages that misbehave -----------------------------------------------------------------------------------
_BEHAVIOUR = st.sampled_from(["keep", "pop", "clear", "drop", "add", "none-item", "raise", "int", "str", "copy",
                              "generator", "tuple", "replace"])
_PLAN: list = []


@specnb.stage(writes=["seen"])
def moody(records):
    how = _PLAN.pop(0) if _PLAN else "keep"
    if how == "pop":
        for r in records:
            r.pop("text", None)
    elif how == "clear":
        for r in records:
            r.clear()
    elif how == "drop":
        return records[1:]
    elif how == "add":
        return records + [{"text": "extra"}]
    elif how == "none-item":
        return [None] * len(records)
    elif how == "raise":
        raise KeyError("text")
    elif how == "int":
        return 3
    elif how == "str":
        return "records"
    elif how == "copy":
        return [dict(r, seen=True) for r in records]
    elif how == "generator":
        return (r for r in records)
    elif how == "tuple":
        return tuple(records)
    elif how == "replace":
        return [{"seen": i} for i, _ in enumerate(records)]
    else:
        for r in records:
            r["seen"] = True
    return None


@seeded(800)
@given(plan=st.lists(_BEHAVIOUR, min_size=1, max_size=3), inputs=st.one_of(
    st.lists(_SHORT, max_size=5), st.builds(lambda xs: pd.DataFrame({"text": xs, "id": range(len(xs))}),
                                            st.lists(_WORDS, max_size=4)), _ARGUMENT))
@counted
def test_python_stages_give_one_row_per_input_or_a_pipeline_error_naming_the_stage(plan, inputs):
    _PLAN[:] = plan
    pipe = Pipeline([moody] * len(plan))
    try:
        frame = pipe(inputs)
    except PipelineError as error:
        assert "moody" in str(error) or "takes a list of texts" in str(error) or "not one str" in str(error), error
        return
    assert len(frame) == len(inputs)


# -- the CLI's readers --------------------------------------------------------------------------------------------
_TMP = Path(tempfile.mkdtemp(prefix="specnb-readers-"))
_CELLS = st.one_of(_WORDS, st.text(_CHARS.filter(lambda c: not 0xD800 <= ord(c) <= 0xDFFF), max_size=12),
                   st.sampled_from(["", "NA", "001", '"', "a,b", "x\ny", "\ufeff", "=1+1"]))


@st.composite
def _files(draw):
    suffix = draw(st.sampled_from([".csv", ".jsonl", ".parquet"]))
    columns = draw(st.lists(st.sampled_from(["text", "label", "Text", "id", ""]), min_size=1, max_size=3, unique=True))
    rows = draw(st.lists(st.tuples(*[_CELLS] * len(columns)), max_size=5))
    how = draw(st.sampled_from(["plain", "plain", "bom", "latin-1", "crlf", "utf-16", "binary", "empty", "truncated"]))
    if suffix == ".parquet":
        data = io.BytesIO()
        pd.DataFrame(rows, columns=columns).to_parquet(data)
        raw = data.getvalue()
    else:
        frame = pd.DataFrame(rows, columns=columns)
        text = frame.to_csv(index=False) if suffix == ".csv" else frame.to_json(orient="records", lines=True,
                                                                                force_ascii=False)
        raw = text.encode("utf-8")
        if how == "bom":
            raw = b"\xef\xbb\xbf" + raw
        elif how == "latin-1":
            raw = text.encode("latin-1", errors="replace")
        elif how == "crlf":
            raw = raw.replace(b"\n", b"\r\n")
        elif how == "utf-16":
            raw = text.encode("utf-16")
    if how == "binary":
        raw = draw(st.binary(max_size=64))
    elif how == "empty":
        raw = b""
    elif how == "truncated":
        raw = raw[:len(raw) // 2]
    return suffix, raw, draw(st.sampled_from(["text", "Text", "label"]))


@seeded(800)
@given(file=_files())
@counted
def test_the_cli_readers_give_a_table_or_an_input_error(file):
    from specnb._compare.arguments import split_inputs
    from specnb.cli import read_table

    suffix, raw, column = file
    path = _TMP / f"data{suffix}"
    path.write_bytes(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning but specnb's own InputWarning would be a silent problem
        warnings.simplefilter("ignore", InputWarning)
        try:
            frame = read_table(path)
            items, _ = split_inputs(frame, None, column)
        except SpecnbError:
            return
    assert len(items) == len(frame)
    _predicts(_once("reader", lambda xs: ["positive"] * len(xs), "sentiment"), items)


@seeded(60)
@given(file=_files(), model=st.sampled_from(["vader", "ghost-model"]))
@counted
def test_specnb_compare_on_any_file_exits_0_or_2_with_one_line(specnb_home, file, model):
    from specnb.cli import main

    suffix, raw, column = file
    path = _TMP / f"cli{suffix}"
    path.write_bytes(raw)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        code = main(["compare", "--task", "sentiment", "--data", str(path), "--models", model, "--text", column])
    assert code in (0, 2), err.getvalue()
    if code == 2:
        assert err.getvalue().startswith("specnb: ") and "Traceback" not in err.getvalue(), err.getvalue()


def test_the_suite_covers_every_embedded_default():
    embedded = set(specnb.catalog().query("offline")["name"])
    covered = {"langid", "vader", "ner", "minilm", "smollm2"}
    assert embedded == covered, embedded


@pytest.mark.parametrize("text", ["Bonjour\ud83b", json.dumps("\ud83b")[1:-1]])
def test_a_json_escaped_surrogate_stays_text(text):
    (prediction,) = specnb.load("langid").predict([text])
    assert prediction.valid
