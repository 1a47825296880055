"""Hostile inputs and hostile model outputs: every input is normalised once (plain str, lone surrogates as
U+FFFD), ``predict`` refuses what is not a list of texts, a callable's failures are SpecnbErrors naming the
model, and every backend's answers are checked (scores in [0, 1], spans inside the text): one prediction per
input, valid or `Invalid` with the reason, and nothing else raised."""

from __future__ import annotations

import math

import numpy as np
import pytest

import specnb
from specnb import Pipeline
from specnb.errors import InputError, ModelOutputError, PipelineError, SpecnbError, TaskError
from specnb.tasks import Embedding, Entities, Invalid, Label, Span

HOSTILE = [np.str_("Bonjour tout le monde, je suis Marie à Paris."), "Bonjour\ud83b", "\ud83d\ude00 Hello Paris",
           "\udfff", "Hello\x00world\x07\x1b[31m", "\ufeff\u200b\u2028\u2029", "Berlin " * 2000]


def _check_all(model, texts, **kwargs):
    predictions = model.predict(texts, **kwargs)
    assert len(predictions) == len(texts)
    for text, prediction in zip(texts, predictions):
        assert isinstance(prediction, (Label, Entities, Embedding, Invalid)), prediction
        if isinstance(prediction, Invalid):
            assert prediction.reason
        elif isinstance(prediction, Entities):
            for span in prediction.spans:
                assert 0 <= span.start < span.end <= len(text)
    return predictions


# -- 1. normalised once, at the edge ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["langid", "ner", "vader"])
def test_real_models_take_numpy_strings_and_lone_surrogates(name):
    predictions = _check_all(specnb.load(name), HOSTILE)
    assert all(p.valid for p in predictions[:4]), predictions  # surrogates become U+FFFD: the item runs


def test_the_ner_model_finds_entities_around_a_surrogate():
    text = "Angela Merkel visited Paris.\ud83b"
    (prediction,) = specnb.load("ner").predict([text])
    assert prediction.valid and {s.text for s in prediction.spans} >= {"Paris"}
    assert all(text[s.start:s.end] == s.text for s in prediction.spans)


@pytest.mark.parametrize("fixture", ["tiny_sentiment_dir", "tiny_ner_dir"])
def test_a_tiny_transformers_model_takes_hostile_inputs(fixture, request):
    model = specnb.load(request.getfixturevalue(fixture), device="cpu")
    predictions = _check_all(model, HOSTILE)
    assert all(p.valid for p in predictions), predictions


def test_the_callable_sees_plain_strings_without_surrogates():
    seen = []
    model = specnb.load(lambda texts: seen.extend(texts) or ["en"] * len(texts), alias="spy", task="langid")
    model.predict([np.str_("hi"), "a\ud800b"])
    assert [type(t) for t in seen] == [str, str] and sorted(seen) == ["a\ufffdb", "hi"]


# -- 2. predict refuses what is not a list of texts --------------------------------------------------------
@pytest.mark.parametrize(("texts", "words"), [
    ({"a": 1}, "dict"), (b"hey", "bytes"), (5, "int"), (3.5, "float"), ({"a", "b"}, "set"),
    (np.array("one"), r"shape \(\)"), (np.array([["a", "b"]]), "shape"), ("one text", r"predict\(\[text\]\)"),
])
def test_predict_refuses_what_is_not_a_list_of_texts(texts, words):
    model = specnb.load(lambda texts: ["en"] * len(texts), alias="constant", task="langid")
    with pytest.raises(InputError, match=words):
        model.predict(texts)


def test_predict_refuses_a_dataframe_and_says_to_pass_a_column():
    pd = pytest.importorskip("pandas")
    model = specnb.load(lambda texts: ["en"] * len(texts), alias="constant", task="langid")
    with pytest.raises(InputError, match=r"DataFrame.*df\['text'\]"):
        model.predict(pd.DataFrame({"text": ["a", "b"]}))
    assert len(model.predict(pd.DataFrame({"text": ["a", "b"]})["text"])) == 2


def test_a_list_of_tasks_is_a_task_error_naming_the_argument():
    model = specnb.load(lambda texts: ["en"] * len(texts), alias="constant", task="langid")
    with pytest.raises(TaskError, match=r"task= must be one task name.*got list"):
        model.predict(["x"], task=["langid"])


# -- 3. callables as models ---------------------------------------------------------------------------------
def test_an_exception_from_the_callable_names_the_model_and_the_batch():
    def broken(texts):
        if "boom" in texts:
            raise ZeroDivisionError("my bug")
        return ["en"] * len(texts)

    model = specnb.load(broken, alias="broken", task="langid")
    with pytest.raises(ModelOutputError, match=r"'broken'.*ZeroDivisionError: my bug.*input 3") as caught:
        model.predict(["a", None, "b", "boom"], batch_size=1)
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize("output", [None, "en", {"a": 1}, 7])
def test_a_callable_whose_whole_output_is_wrong_is_a_model_output_error(output):
    model = specnb.load(lambda texts: output, alias="whole", task="langid")
    with pytest.raises(ModelOutputError, match="'whole'.*one output per input"):
        model.predict(["a"])


@pytest.mark.parametrize(("value", "reason"), [
    (None, "None"), (("positive", "high"), "not a number"), ({"label": "positive", "score": [0.5]}, "not a number"),
    (("positive", 1.5), "outside"), (("positive", -0.1), "outside"), (("positive", math.nan), "NaN"),
    ({"label": "positive", "score": math.inf}, "outside"), ((1, 0.5), "not a non-empty str"), (Label("positive", 2.0), "outside"),
    (Entities(()), "not a Label"),
])
def test_a_callable_label_that_cannot_be_read_is_invalid_with_the_reason(value, reason):
    model = specnb.load(lambda texts: [value, "positive"], alias="labels", task="sentiment")
    bad, good = model.predict(["a", "b"])
    assert isinstance(bad, Invalid) and reason in bad.reason
    assert good == Label("positive")


# -- 7. spans and scores from any backend are checked ----------------------------------------------------------
@pytest.mark.parametrize(("spans", "reason"), [
    ([(3, 1, "PERSON")], "not inside"), ([(-3, -1, "PERSON")], "not inside"), ([(0, 10000, "PERSON")], "not inside"),
    ([(0, 2, "PERSON"), (1, 3, "ORG")], "overlap"), ([(0, 2)], "not (start, end, label)"),
    ([("0", "2", "PERSON")], "int start"), ([(0, 2, None)], "str label"), ("PERSON", "list of"),
    ([Span(0, 3, "PERSON", "xyz")], "not input[start:end]"), ([Span(0, 3, "PERSON", "Ann", 7.0)], "outside"),
    ([(2.0, 3, "PERSON")], "int start"), ([{"start": 0}], "int start"),
])
def test_bad_spans_are_invalid_with_the_reason(spans, reason):
    model = specnb.load(lambda texts: [spans, [(0, 3, "PERSON")]], alias="spans", task="ner")
    bad, good = model.predict(["Ann met Bob", "Ann met Bob"], labels=["PERSON", "ORG"])
    assert isinstance(bad, Invalid) and reason in bad.reason, bad
    assert good == Entities((Span(0, 3, "PERSON", "Ann"),))


def test_good_spans_out_of_order_are_put_in_text_order():
    model = specnb.load(lambda texts: [[(8, 11, "PERSON"), {"start": 0, "end": 3, "label": "PERSON"}]], task="ner")
    (prediction,) = model.predict(["Ann met Bob"])
    assert [s.text for s in prediction.spans] == ["Ann", "Bob"]


def test_an_embedding_with_nan_is_invalid():
    model = specnb.load(lambda texts: [[0.1, math.nan], [0.1, 0.2]], alias="vectors", task="embed")
    bad, good = model.predict(["a", "b"])
    assert isinstance(bad, Invalid) and "NaN" in bad.reason and good.valid


# The generated cases (hostile items and hostile callable answers) are in test_properties.py.


# -- 2. compare and pipelines check their arguments too ----------------------------------------------------------
def _constant(texts):
    return ["positive"] * len(texts)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"models": None}, r"models= is a list of models.*got NoneType"), ({"models": 5}, "models= .*got int"),
    ({"inputs": {"a": 1}}, r"compare takes a list of texts \(inputs=\), got a dict"),
    ({"inputs": b"hey"}, r"inputs=.*got bytes"), ({"inputs": 5}, r"inputs=.*got int 5"),
    ({"inputs": {"a", "b"}}, "set, which has no order"), ({"inputs": "one"}, r"compare\(task, \[text\], models\)"),
    ({"labels": 5}, "labels= is one gold label per input.*got int"), ({"labels": {"a": 1}}, "labels= .*got dict"),
    ({"text": 5}, "text= names the DataFrame's text column"), ({"name": 3}, "name= .*got int 3"),
    ({"batch_size": 0}, "batch_size= must be a positive int"), ({"store": "yes"}, "store= must be True or False"),
    ({"progress": 1}, "progress= must be True or False"), ({"label_space": 5}, "label_space=: labels for 'sentiment'"),
    ({"label_space": np.array("one")}, "label_space=: .*must be a list of strings"),
])
def test_compare_names_the_argument_that_is_wrong(specnb_home, kwargs, words):
    args = {"inputs": ["good", "bad"], "models": [specnb.load(_constant, alias="c", task="sentiment")], **kwargs}
    with pytest.raises(SpecnbError, match=words):
        specnb.compare("sentiment", args.pop("inputs"), args.pop("models"), **args)
    assert specnb.runs().empty  # refused before anything was stored


def test_a_label_space_of_a_zero_d_array_is_a_task_error():  # found by the property suite: TypeError before
    with pytest.raises(TaskError, match="must be a list of strings, got ndarray"):
        specnb.load(_constant, alias="c", task="sentiment").predict(["a"], labels=np.array("one"))


def test_compare_stores_a_text_with_a_lone_surrogate(specnb_home):  # found by the property suite: UnicodeEncodeError
    comparison = specnb.compare("sentiment", ["good\ud800", "bad"], "vader", progress=False)
    assert comparison.inputs[0] == "good\ufffd"
    assert specnb.get_run(comparison.run_id).inputs[0] == "good\ufffd"


def test_a_dataframe_with_repeated_columns_is_refused(specnb_home):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([["a", "b"]], columns=["text", "text"])
    with pytest.raises(InputError, match=r"repeated column names \['text'\]"):
        specnb.compare("sentiment", frame, "vader")
    with pytest.raises(PipelineError, match=r"repeats column names \['text'\]"):
        Pipeline([{"kind": "model", "field": "s", "model": "vader", "input": "text"}])(frame)


@pytest.mark.parametrize(("inputs", "words"), [
    (b"hey", "got bytes"), ({"a": 1}, "got a dict"), (5, "got int 5"), ({"a"}, "set"), (np.array([["a"]]), "shape"),
    (None, "got NoneType"), ("one", r"pipe\(\[text\]\)"),
])
def test_a_pipeline_refuses_what_is_not_a_list_of_texts(inputs, words):
    pipe = Pipeline([{"kind": "model", "field": "s", "model": "vader", "input": "text"}])
    with pytest.raises(PipelineError, match=words):
        pipe(inputs)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"name": 3}, "name= is the pipeline's name"), ({"input": ""}, "input= is the field"),
    ({"functions": [1]}, "functions= maps import paths"), ({"stages": ["s = vader(text)"]}, "stage 1 is str"),
    ({"stages": 5}, "stage 1 is int 5"),
])
def test_pipeline_arguments_are_checked(kwargs, words):
    with pytest.raises(PipelineError, match=words):
        Pipeline(**kwargs)


@specnb.stage
def pops_the_text(records):
    for record in records:
        record.pop("text")


@specnb.stage
def buggy(records):
    return records[0]["missing"]


@specnb.stage
def returns_a_number(records):
    return 3


@specnb.stage
def drops_one(records):
    return records[1:]


def test_a_python_stage_that_empties_its_records_still_gives_one_row_per_input():  # was a 0 x 0 DataFrame
    frame = Pipeline([pops_the_text])(["a", "b"])
    assert frame.shape == (2, 0)


@pytest.mark.parametrize(("stage", "words"), [
    (buggy, r"python stage '.*:buggy' raised KeyError: 'missing' \(on 2 records, the first \{'text': 'a'\}\)"),
    (returns_a_number, r"python stage '.*:returns_a_number' returned int 3; return None"),
    (drops_one, r"python stage '.*:drops_one' must return one dict per record: got 1 item \(dict\) for 2 records"),
])
def test_a_python_stage_that_fails_is_a_pipeline_error_naming_it(stage, words):
    with pytest.raises(PipelineError, match=words) as caught:
        Pipeline([stage])(["a", "b"])
    if stage is buggy:
        assert isinstance(caught.value.__cause__, KeyError)


def test_pipeline_inputs_are_normalised_once():
    pd = pytest.importorskip("pandas")
    pipe = Pipeline([{"kind": "model", "field": "s", "model": "vader", "input": "text"}])
    frame = pipe(pd.DataFrame({"text": [np.str_("good"), "bad\ud800"], "note": ["x\udfff", 1]}, dtype=object))
    assert list(frame["text"]) == ["good", "bad\ufffd"] and frame["note"][0] == "x\ufffd"
    assert [type(t) for t in frame["text"]] == [str, str]
