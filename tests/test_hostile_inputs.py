"""Hostile inputs and hostile model outputs: every input is normalised once (plain str, lone surrogates as
U+FFFD), ``predict`` refuses what is not a list of texts, a callable's failures are SpecnbErrors naming the
model, and every backend's answers are checked (scores in [0, 1], spans inside the text): one prediction per
input, valid or `Invalid` with the reason, and nothing else raised."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specnb
from specnb.errors import InputError, ModelOutputError, TaskError
from specnb.tasks import Embedding, Entities, Invalid, Label, Span
from specnb.tasks.base import MAX_CHARS

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


# -- property: nothing hostile escapes ---------------------------------------------------------------------
_CHARS = st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),
                   st.characters(max_codepoint=0x1F))
_ITEM = st.one_of(
    st.text(_CHARS, max_size=60),
    st.sampled_from(["", " ", "\n\t", "x" * (MAX_CHARS + 1), "word " * 20_000, "\ud800" * 1000]),
    st.builds(np.str_, st.text(max_size=20)),
    st.sampled_from([None, math.nan, 3, 2.5, b"bytes", ["nested"]]),
)
_OUTPUT = st.one_of(
    st.sampled_from(["positive", "negative", "", None, ("positive", "high"), {"label": "positive", "score": [1]},
                     ("negative", math.nan), ("positive", 2.0), ("neutral", -1), ("positive", 0.25),
                     {"label": "negative", "score": 1}, {"score": 0.5}, ("a", "b", "c"), 12, 0.5]),
    st.tuples(st.text(max_size=5), st.floats(allow_nan=True, allow_infinity=True)),
)
_SETTINGS = settings(max_examples=500, derandomize=True, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


_ANSWERS: list = []


def _fuzz(texts):
    return [_ANSWERS.pop() if _ANSWERS else "positive" for _ in texts]


@_SETTINGS
@given(items=st.lists(_ITEM, max_size=6), outputs=st.lists(_OUTPUT, min_size=6, max_size=6))
def test_property_a_callable_answers_every_input_or_says_why(items, outputs):
    _ANSWERS[:] = outputs
    _check_all(specnb.load(_fuzz, alias="fuzz", task="sentiment"), items, batch_size=4)  # one handle: same callable


@_SETTINGS
@given(items=st.lists(_ITEM, max_size=6))
def test_property_vader_answers_every_input_or_says_why(items):
    _check_all(specnb.load("vader"), items)
