"""Distillation's data: a teacher labels the texts (its answers cached in the run store, so a second call, or one
after a crash, asks only what is unanswered), invalid and unsure answers are left out and counted, gold labels are
kept for evaluation, a Comparison gives its texts and answers without running anything, and bad input is refused
naming what is valid. Teachers are real models: callables loaded with specnb.load (wrapped to count what they are
asked, or to fail, which is observation and fault injection) and the embedded MiniLM zero-shot classifier."""

from __future__ import annotations

import pandas as pd
import pytest

import specnb
from specnb import store as store_module
from specnb._specialize.data import prepare
from specnb._specialize.teacher import DEFAULT_TEACHER, teacher_key
from specnb.errors import InputError, ModelOutputError, TaskError

POSITIVE = [f"a lovely {w} today" for w in ("walk", "meal", "film", "song", "trip", "game", "book", "talk")]
NEGATIVE = [f"an awful {w} today" for w in ("walk", "meal", "film", "song", "trip", "game", "book", "talk")]
TEXTS = POSITIVE + NEGATIVE
GOLD = ["positive"] * 8 + ["negative"] * 8


@pytest.fixture(autouse=True)
def _home(specnb_home):
    yield specnb_home
    for s in store_module._stores.values():
        s.close()


class Teacher:
    """A sentiment teacher: 'lovely' is positive (score 0.9), anything else negative (score 0.6); it records what
    it is asked and raises once it has answered ``fail_after`` texts (a crash half-way)."""

    def __init__(self, fail_after=None):
        self.asked: list[str] = []
        self.fail_after = fail_after

    def __call__(self, texts):
        if self.fail_after is not None and len(self.asked) + len(texts) > self.fail_after:
            raise RuntimeError("the teacher crashed")
        self.asked.extend(texts)
        return [("positive", 0.9) if "lovely" in t else ("negative", 0.6) for t in texts]


def _teacher(fn=None, alias="teach"):
    fn = fn or Teacher()
    return specnb.load(fn, alias=alias, task="sentiment"), fn


def test_a_teacher_labels_texts_and_a_second_call_asks_nothing(specnb_home):
    model, fn = _teacher()
    data = prepare(TEXTS, task="sentiment", labels=["positive", "negative"], teacher=model, eval=0.25, progress=False)
    assert len(fn.asked) == 16 and data.labels == GOLD and data.gold is None
    assert data.label_space == ("positive", "negative")
    report = data.teacher
    assert {k: report[k] for k in ("alias", "asked", "cached", "kept", "invalid", "unsure")} == {
        "alias": "teach", "asked": 16, "cached": 0, "kept": 16, "invalid": 0, "unsure": 0}
    assert report["seconds"] >= 0 and report["key"].startswith("teacher:")
    assert data.split == {"kind": "stratified", "fraction": 0.25, "seed": 0, "train": 12, "held_out": 4}
    assert sorted(data.labels[i] for i in data.held_out) == ["negative", "negative", "positive", "positive"]

    again = prepare(pd.DataFrame({"text": TEXTS}), task="sentiment", labels=["positive", "negative"], teacher="teach",
                    eval=0.25, progress=False)
    assert len(fn.asked) == 16  # nothing asked again
    assert again.teacher["asked"] == 0 and again.teacher["cached"] == 16 and again.teacher["items_per_s"] is None
    assert again.labels == data.labels and again.train == data.train

    more = prepare([*TEXTS, "a lovely new day", TEXTS[0]], task="sentiment", labels=["positive", "negative"],
                   teacher=model, eval=None, progress=False)
    assert fn.asked[16:] == ["a lovely new day"]  # only the new text; a repeated one is asked once
    assert more.teacher["asked"] == 1 and len(more.texts) == 18


def test_a_crash_half_way_keeps_every_finished_chunk(specnb_home):
    specnb.config.store_chunk = 4
    fn = Teacher(fail_after=9)
    model, _ = _teacher(fn)
    with pytest.raises(ModelOutputError, match="teacher crashed") as info:
        prepare(TEXTS, task="sentiment", teacher=model, progress=False)
    assert len(fn.asked) == 8  # two chunks answered, the third failed
    assert any("answered 8 of 16 distinct texts" in note for note in getattr(info.value, "__notes__", []))
    fn.fail_after = None
    data = prepare(TEXTS, task="sentiment", teacher=model, progress=False)
    assert fn.asked[8:] == TEXTS[8:]  # the rest only
    assert data.teacher["asked"] == 8 and data.teacher["cached"] == 8 and data.labels == GOLD


def test_the_cache_is_per_teacher_and_label_space(specnb_home):
    first, fn = _teacher()
    prepare(TEXTS, task="sentiment", teacher=first, progress=False)
    prepare(TEXTS, task="sentiment", labels=["positive", "negative"], teacher=first, progress=False)
    assert len(fn.asked) == 32  # another label space is another question
    other, other_fn = _teacher(lambda texts: [("negative", 0.5)] * len(texts), alias="gloomy")
    assert teacher_key(other, "sentiment", ("positive", "negative")) != teacher_key(first, "sentiment",
                                                                                   ("positive", "negative"))
    specnb.unload("teach")
    again, _ = _teacher(fn, alias="teach2")  # the same function under another alias: the same teacher
    prepare(TEXTS, task="sentiment", teacher=again, progress=False)
    assert len(fn.asked) == 32
    data = prepare(TEXTS, task="sentiment", teacher=again, progress=False, store=False)  # no store: asked again
    assert len(fn.asked) == 48 and data.teacher["cached"] == 0


def test_min_confidence_and_invalid_answers_are_left_out_and_counted(specnb_home):
    def unsure(texts):  # 'lovely' sure; 'awful' unsure; 'day' outside the label space
        return [("positive", 0.95) if "lovely" in t else ("maybe", 0.9) if "day off" in t else ("negative", 0.55)
                for t in texts]

    model = specnb.load(unsure, alias="unsure", task="sentiment")
    texts = [*TEXTS, "a day off", "another day off"]
    data = prepare(texts, task="sentiment", labels=["positive", "negative"], teacher=model, progress=False)
    assert data.teacher["invalid"] == 2 and data.teacher["kept"] == 16 and len(data.texts) == 16
    assert "a day off" not in data.texts
    with pytest.raises(InputError, match=r"one class only \('positive'\).*after the teacher's answers were filtered: "
                                         r"8 kept, 2 invalid, 8 below min_confidence=0.6"):
        prepare(texts, task="sentiment", labels=["positive", "negative"], teacher=model, min_confidence=0.6,
                progress=False)
    half = prepare(texts + ["an awful awful day"], task="sentiment", labels=["positive", "negative"], teacher=model,
                   min_confidence=0.5, eval=None, progress=False)
    assert half.teacher["unsure"] == 0 and half.teacher["min_confidence"] == 0.5
    few = [*POSITIVE, NEGATIVE[0]]
    with pytest.raises(InputError, match=r"fewer than 2 training examples: \{'negative': 1\}.*teacher's answers"):
        prepare(few, task="sentiment", labels=["positive", "negative"], teacher=model, eval=None, progress=False)
    plain = specnb.load(lambda texts: ["positive"] * len(texts), alias="plain", task="sentiment")
    with pytest.raises(InputError, match="teacher 'plain' gives no scores"):
        prepare(TEXTS, task="sentiment", teacher=plain, min_confidence=0.5, progress=False)


def test_gold_labels_are_kept_for_evaluation_only(specnb_home):
    model = specnb.load(lambda texts: [("positive", 0.9) if "lovely" in t or "walk" in t else ("negative", 0.9)
                                       for t in texts], alias="biased", task="sentiment")
    frame = pd.DataFrame({"text": TEXTS, "label": [*GOLD[:-1], None]})  # gold may miss some items
    data = prepare(frame, task="sentiment", teacher=model, eval=None, progress=False, store=False)
    assert data.labels == ["positive"] * 9 + ["negative"] * 7  # the teacher's ('an awful walk' too), not the gold
    assert data.gold == [*GOLD[:-1], None] and data.label_space == ("negative", "positive")
    held = pd.DataFrame({"text": ["a lovely evening", "an awful evening"], "label": ["positive", "negative"]})
    given = prepare(frame, task="sentiment", teacher=model, eval=held, progress=False, store=False)
    assert given.split["kind"] == "given" and given.split["held_out"] == 2
    assert [given.gold[i] for i in given.held_out] == ["positive", "negative"]
    assert list(given.frame("held_out").columns) == ["text", "label", "gold"]
    with pytest.raises(InputError, match=r"labels \['neutral'\] are not in labels="):
        prepare(pd.DataFrame({"text": TEXTS, "label": [*GOLD[:-1], "neutral"]}), task="sentiment",
                labels=["positive", "negative"], teacher=model, progress=False)


def test_no_gold_and_no_teacher_is_the_default_generalist(specnb_home):
    assert DEFAULT_TEACHER == "smollm2"
    stand_in, fn = _teacher(alias="smollm2")  # the alias the default names, loaded as a cheap callable
    data = prepare(pd.DataFrame({"text": TEXTS}), task="sentiment", progress=False)
    assert data.teacher["alias"] == "smollm2" and len(fn.asked) == 16 and stand_in.alias == "smollm2"
    with pytest.raises(InputError, match="data has no label column 'label'"):
        prepare(pd.DataFrame({"text": TEXTS}), task="sentiment", default_teacher=None)
    with pytest.raises(InputError, match="data has no label column 'stars'"):  # a typo does not start distillation
        prepare(pd.DataFrame({"text": TEXTS}), task="sentiment", label="stars")


def test_a_real_zero_shot_teacher_labels_topics(specnb_home):
    texts = ["The striker scored twice in the final match of the season",
             "The goalkeeper saved a penalty and the team won the cup",
             "Tennis fans watched the champion win the title at the tournament",
             "Shares in the bank fell after its quarterly profits disappointed investors",
             "The company reported record revenue and raised its dividend",
             "Markets rallied as the central bank cut interest rates"]
    data = prepare(texts, task="classify", labels=["sport", "business"], teacher="minilm", eval=None, progress=False)
    assert data.labels == ["sport"] * 3 + ["business"] * 3 and data.teacher["alias"] == "minilm"
    assert data.teacher["asked"] == 6
    again = prepare(texts, task="classify", labels=["sport", "business"], teacher="minilm", eval=None, progress=False)
    assert again.teacher["asked"] == 0 and again.labels == data.labels


def _comparison(**kwargs):
    teacher, fn = _teacher()
    other = specnb.load(lambda texts: [("negative", 0.7)] * len(texts), alias="gloomy", task="sentiment")
    return specnb.compare("sentiment", TEXTS, [teacher, other], labels=GOLD, progress=False, **kwargs), fn


def test_a_comparison_gives_its_texts_and_answers_without_running_anything(specnb_home):
    comparison, fn = _comparison()
    asked = len(fn.asked)
    data = prepare(comparison, task="sentiment", teacher="teach", eval=0.25)
    assert len(fn.asked) == asked  # nothing ran
    assert data.labels == GOLD and data.gold == GOLD and data.teacher["from_run"] == comparison.run_id
    assert data.teacher["asked"] == 0 and data.teacher["kept"] == 16 and data.split["held_out"] == 4
    stored = prepare(specnb.get_run(comparison.run_id), task="sentiment", teacher="teach", eval=None)
    assert stored.labels == GOLD and stored.gold == GOLD and stored.teacher["from_run"] == comparison.run_id
    with pytest.raises(InputError, match=r"one class only \('negative'\).*after the teacher's answers were filtered"):
        prepare(specnb.get_run(comparison.run_id), task="sentiment", teacher=specnb.get("gloomy"), eval=None)


def test_a_comparison_without_gold_and_with_unanswered_items(specnb_home):
    comparison, _ = _comparison(store=False)
    comparison.labels = None
    comparison.predictions["teach"][0] = None  # an interrupted run never reached it
    data = prepare(comparison, task="sentiment", teacher="teach", eval=0.25)
    assert data.gold is None and data.teacher["invalid"] == 1 and len(data.texts) == 15


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"teacher": "nobody"}, InputError, r"teacher='nobody' is not a model of comparison .*its models: teach, gloomy"),
    ({"teacher": None}, InputError, "teacher= names the model of the comparison"),
    ({"teacher": "teach", "task": "classify"}, InputError, "the comparison is a 'sentiment' run; pass task='sentiment'"),
    ({"teacher": "teach", "eval": pd.DataFrame({"text": ["x"]})}, InputError, "with a Comparison as data, eval="),
])
def test_bad_comparison_arguments(specnb_home, kwargs, error, words):
    comparison, _ = _comparison(store=False)
    call = {"task": "sentiment", **kwargs}
    with pytest.raises(error, match=words):
        prepare(comparison, **call)


@pytest.mark.parametrize(("data", "kwargs", "error", "words"), [
    (TEXTS, {"task": "classify", "teacher": "teach"}, InputError, "labels= is the label space the teacher answers in"),
    (TEXTS, {"teacher": 5}, InputError, "teacher= is the model whose answers become the training labels"),
    (TEXTS, {"teacher": "langid"}, TaskError, "cannot serve 'sentiment'"),
    ((TEXTS, GOLD), {"min_confidence": 0.5}, InputError, "min_confidence= leaves out a teacher's unsure answers"),
    (TEXTS, {"teacher": "teach", "min_confidence": 2}, InputError, "min_confidence= is a score between 0 and 1"),
    ([*TEXTS, ""], {"teacher": "teach"}, InputError, r"1 text\(s\) are missing, empty or not str \(positions 16\)"),
    ((TEXTS, GOLD[:3]), {"teacher": "teach"}, InputError, "16 texts and 3 labels"),
    ("texts.csv", {"teacher": "teach"}, InputError, "texts alone, or a specnb.Comparison"),
    (TEXTS, {"teacher": "teach", "eval": pd.DataFrame({"text": TEXTS[:2]})}, InputError, "2 held-out text"),
])
def test_bad_distillation_input_is_refused_before_the_teacher_runs(specnb_home, data, kwargs, error, words):
    _, fn = _teacher()
    with pytest.raises(error, match=words):
        prepare(data, **{"task": "sentiment", "progress": False, **kwargs})
    assert fn.asked == []


def test_specialize_distils_and_reports_agreement_and_gold_accuracy(specnb_home, tiny_embed_dir):
    teacher, fn = _teacher()
    frame = pd.DataFrame({"text": TEXTS, "label": GOLD})
    model = specnb.specialize(str(tiny_embed_dir), frame, task="sentiment", teacher=teacher, eval=0.25,
                              progress=False)
    data = model.training["data"]
    assert data["teacher"]["alias"] == "teach" and data["teacher"]["kept"] == 16 and len(fn.asked) == 16
    assert "agreement" in model.training["metrics"] and "accuracy" in model.training["metrics"]
