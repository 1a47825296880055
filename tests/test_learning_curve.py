"""`learning_curve`: heads fitted on growing numbers of examples per class (several seeds) from features computed
once, every model scored on the same held-out items, and the smallest size from which the specialist stays
better than each `against` model."""

from __future__ import annotations

import itertools
import json
import math

import pandas as pd
import pytest

import specnb
from specnb._specialize.curve import LearningCurve, crossover_size, subsets
from specnb.errors import InputError, TaskError

WORDS = {"positive": ["great", "lovely", "superb", "happy", "fine"], "negative": ["awful", "bad", "sad", "poor", "ugly"]}


def _data(n: int = 24) -> pd.DataFrame:
    orders = {k: list(itertools.permutations(v, 3)) for k, v in WORDS.items()}  # distinct texts
    rows = [{"text": " ".join(orders[kind][i // 2]), "label": kind}
            for i, kind in ((i, "positive" if i % 2 == 0 else "negative") for i in range(n))]
    return pd.DataFrame(rows)


def _great_only(texts):
    """A real (callable) model that is right on every negative text and on the positive ones holding 'great'."""
    return ["positive" if "great" in t.split() else "negative" for t in texts]


@pytest.fixture
def home(specnb_home):
    return specnb_home


@pytest.fixture
def great_only(home):
    model = specnb.load(_great_only, alias="great-only", task="sentiment")
    yield model
    if "great-only" in specnb.registry:
        specnb.unload("great-only")


def test_one_feature_pass_a_head_per_size_and_seed_and_every_model_on_the_same_held_out_items(
        home, tiny_embed_dir, great_only):
    curve = specnb.learning_curve(str(tiny_embed_dir), _data(), sizes=(2, 4, 9), seeds=3, task="sentiment",
                                  eval=0.25, against=["great-only"], progress=False)
    frame = curve.frame
    assert list(frame.columns) == ["size", "seed", "n_train", "accuracy", "low", "high", "macro_f1"]
    assert list(zip(frame["size"], frame["seed"])) == [(s, k) for s in (2, 4, 9) for k in range(3)]
    assert list(frame["n_train"]) == [4] * 3 + [8] * 3 + [18] * 3  # size examples of each of the 2 classes
    assert ((frame["low"] <= frame["accuracy"]) & (frame["accuracy"] <= frame["high"])).all()
    # 9 per class is the whole training split: every seed fits the same head
    assert frame[frame["size"] == 9]["accuracy"].nunique() == 1
    summary = curve.summary
    assert list(summary.index) == [2, 4, 9] and (summary["seeds"] == 3).all()
    means = frame.groupby("size")["accuracy"].mean()
    assert summary["mean"].tolist() == pytest.approx(means.tolist())
    assert summary["min"].tolist() == frame.groupby("size")["accuracy"].min().tolist()
    assert summary["max"].tolist() == frame.groupby("size")["accuracy"].max().tolist()
    # the against model answered exactly the held-out items, and its score is what it gets right on them
    held = curve.held_out
    assert curve.n_held_out == len(held) == 6 and curve.comparison.inputs == list(held["text"])
    right = sum(a == g for a, g in zip(_great_only(list(held["text"])), held["label"]))
    assert curve.against.at["great-only", "accuracy"] == pytest.approx(right / 6)
    assert curve.against.at["great-only", "accuracy"] == pytest.approx(curve.comparison.summary.at["great-only",
                                                                                                   "accuracy"])
    assert curve.crossover == {"great-only": crossover_size(summary["mean"].to_dict(), right / 6)}
    assert not home.exists()  # nothing stored, nothing written
    # the same call gives the same numbers
    again = specnb.learning_curve(str(tiny_embed_dir), _data(), sizes=(2, 4, 9), seeds=3, task="sentiment",
                                  eval=0.25, progress=False)
    pd.testing.assert_frame_equal(again.frame, frame)
    assert again.crossover == {} and len(again.against) == 0


def test_the_whole_training_split_scores_exactly_as_specialize_does(home, tiny_embed_dir):
    curve = specnb.learning_curve(str(tiny_embed_dir), _data(), sizes=[9], seeds=1, eval=0.25, progress=False)
    model = specnb.specialize(str(tiny_embed_dir), _data(), eval=0.25, progress=False)
    try:
        accuracy = model.training["metrics"]["accuracy"]
        row = curve.frame.iloc[0]
        assert (row["accuracy"], row["low"], row["high"]) == pytest.approx(
            (accuracy["value"], accuracy["low"], accuracy["high"]), abs=1e-12)
        assert row["macro_f1"] == pytest.approx(model.training["metrics"]["macro_f1"]["value"])
        assert list(curve.held_out["text"]) == list(model.eval_data["text"])
    finally:
        specnb.unload(model.alias)


def test_subsets_are_per_class_nested_within_a_seed_and_differ_between_seeds():
    by_class = {"a": list(range(0, 20)), "b": list(range(20, 50))}
    drawn = subsets(by_class, [2, 4, 8, 16], 3)
    for (size, _seed), subset in drawn.items():
        assert len(subset) == 2 * size == len(set(subset))
        assert sum(i < 20 for i in subset) == size
    for seed in range(3):
        for small, large in itertools.pairwise([2, 4, 8, 16]):
            assert set(drawn[(small, seed)]) < set(drawn[(large, seed)])
    assert len({tuple(drawn[(4, seed)]) for seed in range(3)}) == 3
    assert subsets(by_class, [4], 2) == {k: v for k, v in drawn.items() if k[0] == 4 and k[1] < 2}  # seeded


def test_default_sizes_are_powers_of_two_up_to_the_smallest_class(home, tiny_embed_dir):
    curve = specnb.learning_curve(str(tiny_embed_dir), _data(30), seeds=1, eval=0.2, progress=False)
    assert curve.sizes == [2, 4, 8, 12] and curve.settings["sizes"] == [2, 4, 8, 12]  # 15 per class, 3 held out


def test_a_progress_bar_counts_the_fits(home, tiny_embed_dir):
    from specnb import progress

    made = []

    class Bar:
        def __init__(self, **kwargs):
            self.kwargs, self.n, self.closed = kwargs, 0, False
            made.append(self)

        def update(self, k=1):
            self.n += k

        def set_postfix(self, *args, **kwargs):
            pass

        def close(self):
            self.closed = True

    progress.use(Bar)
    try:
        specnb.learning_curve(str(tiny_embed_dir), _data(), sizes=(2, 4), seeds=2, eval=0.25, progress=True)
    finally:
        progress.use(None)
    fits = [b for b in made if b.kwargs.get("desc") == "learning curve"]
    assert len(fits) == 1 and fits[0].kwargs["total"] == 4 and fits[0].n == 4 and fits[0].closed
    assert fits[0].kwargs["unit"] == "fit"


# -- the crossover -----------------------------------------------------------------------------------------
def test_the_crossover_is_the_smallest_size_from_which_the_mean_stays_above():
    assert crossover_size({1: 0.5, 2: 0.7, 4: 0.8, 8: 0.9}, 0.68) == 2
    assert crossover_size({1: 0.5, 2: 0.7, 4: 0.65, 8: 0.8}, 0.68) == 8  # 2 crosses, 4 falls back: not yet
    assert crossover_size({1: 0.9, 2: 0.95}, 0.5) == 1
    assert crossover_size({1: 0.5, 2: 0.6, 4: 0.7}, 0.7) is None  # a tie is not better
    assert crossover_size({1: 0.9, 2: 0.8, 4: 0.6}, 0.7) is None  # above early, below at the largest size
    assert crossover_size({1: 0.8, 2: math.nan}, 0.7) is None
    assert crossover_size({1: 0.8}, math.nan) is None
    assert crossover_size({}, 0.5) is None


def _constructed(against: dict) -> LearningCurve:
    accuracies = {1: (0.40, 0.50, 0.45), 2: (0.60, 0.70, 0.65), 4: (0.80, 0.84, 0.82)}
    frame = pd.DataFrame([{"size": s, "seed": k, "n_train": 3 * s, "accuracy": a, "low": a - 0.1, "high": a + 0.1,
                           "macro_f1": a - 0.05} for s, row in accuracies.items() for k, a in enumerate(row)])
    table = pd.DataFrame.from_dict({m: {"accuracy": a, "low": a - 0.1, "high": a + 0.1, "macro_f1": a}
                                    for m, a in against.items()}, orient="index")
    return LearningCurve(frame, table, n_held_out=100, base="tiny", method="head")


def test_a_curve_built_from_known_numbers_names_its_crossovers_and_shows_them_escaped():
    curve = _constructed({"<b>llm</b>": 0.62, "zero-shot": 0.30, "oracle": 0.95})
    assert curve.summary.loc[2, ["mean", "min", "max"]].tolist() == pytest.approx([0.65, 0.60, 0.70])
    low, high = curve.summary.loc[2, ["low", "high"]]
    assert low < 0.65 < high and high - low == pytest.approx(0.18, abs=0.02)  # Wilson at 0.65 over 100 items
    assert curve.crossover == {"<b>llm</b>": 2, "zero-shot": 1, "oracle": None}
    assert "beaten from 2 examples per class" in curve.crossover_text("<b>llm</b>")
    assert "not beaten within 4 examples per class" in curve.crossover_text("oracle")
    with pytest.raises(InputError, match="against: <b>llm</b>, zero-shot, oracle"):
        curve.crossover_text("nobody")
    assert "oracle (0.950): not beaten" in repr(curve) and "sizes=1,2,4 seeds=3 held_out=100" in repr(curve)
    page = curve._repr_html_()
    assert "<b>llm</b>" not in page and "&lt;b&gt;llm&lt;/b&gt;" in page and "0.650 [" in page
    figure = curve.figure()
    names = [trace.name for trace in figure.data]
    assert "&lt;b&gt;llm&lt;/b&gt;" in names and "<b>llm</b>" not in json.dumps(names)
    assert {"beats &lt;b&gt;llm&lt;/b&gt;", "beats zero-shot"} <= set(names) and "beats oracle" not in names
    star = next(t for t in figure.data if t.name == "beats zero-shot")
    assert list(star.x) == [1] and list(star.y) == pytest.approx([0.45])
    mean = next(t for t in figure.data if t.name.startswith("specialist"))
    assert list(mean.x) == [1, 2, 4] and list(mean.y) == pytest.approx([0.45, 0.65, 0.82])
    assert figure.layout.xaxis.type == "log" and list(figure.layout.xaxis.tickvals) == [1, 2, 4]
    assert "never beats oracle" in figure.layout.title.text


# -- bad input, refused before any work ------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    ({"sizes": []}, InputError, "non-empty list of positive ints"),
    ({"sizes": [0, 2]}, InputError, "not valid: \\[0\\]"),
    ({"sizes": [2, 2.5]}, InputError, "not valid: \\[2.5\\]"),
    ({"sizes": [True]}, InputError, "positive ints"),
    ({"sizes": "4"}, InputError, "list of examples per class"),
    ({"sizes": 4}, InputError, "list of examples per class"),
    ({"sizes": [2, 4, 2]}, InputError, "more than once"),
    ({"sizes": [2, 10]}, InputError, "sizes \\[10\\] ask for more.*class 'negative' has 9; give sizes up to 9"),
    ({"seeds": 0}, InputError, "seeds= is how many"),
    ({"seeds": True}, InputError, "seeds= is how many"),
    ({"seeds": "3"}, InputError, "seeds= is how many"),
    ({"against": 5}, InputError, "against= is a model or a list"),
    ({"against": ["minilm", 5]}, InputError, "against= holds int"),
    ({"method": "finetune"}, InputError, "valid: 'head'"),
    ({"eval": None}, InputError, "held-out items"),
    ({"eval": 0}, InputError, "held-out items"),
    ({"task": "ner"}, TaskError, "classify, sentiment, langid"),
    ({"c": 0}, InputError, "inverse L2"),
    ({"progress": "yes"}, InputError, "progress="),
    ({"label": "gold"}, InputError, "no label column 'gold'"),
    ({"label_space": ["positive", "negative"]}, InputError, "a dict label -> description"),
    ({"label_space": {"positive": "good"}}, InputError, "missing \\['negative'\\]"),
    ({"label_space": {"positive": "good", "negative": "bad", "meh": "so-so"}}, InputError,
     "not labels of the data \\['meh'\\]"),
])
def test_bad_input_is_refused_naming_what_is_valid(home, tiny_embed_dir, kwargs, error, match):
    call = {"sizes": (2, 4), "eval": 0.25, "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        specnb.learning_curve(str(tiny_embed_dir), _data(), **call)


def test_data_is_checked_as_specialize_checks_it(home, tiny_embed_dir):
    one_class = pd.DataFrame({"text": ["a b", "c d", "e f"], "label": ["x", "x", "x"]})
    with pytest.raises(InputError, match="one class only"):
        specnb.learning_curve(str(tiny_embed_dir), one_class, progress=False)
    with pytest.raises(InputError, match="missing or empty"):
        specnb.learning_curve(str(tiny_embed_dir), (["a b", "c d"], ["x", None]), progress=False)
    callable_model = specnb.load(_great_only, alias="not-an-encoder", task="sentiment")
    try:
        with pytest.raises(TaskError, match="transformers encoder"):
            specnb.learning_curve(callable_model, _data(), sizes=(2,), progress=False)
    finally:
        specnb.unload("not-an-encoder")


def test_label_descriptions_reach_the_against_models_as_in_compare(home, tiny_embed_dir):
    described = {"positive": "a happy, pleased, glad text", "negative": "an unhappy, angry, sad text"}
    curve = specnb.learning_curve(str(tiny_embed_dir), _data(), sizes=(2,), seeds=1, task="sentiment", eval=0.25,
                                  against=["minilm"], label_space=described, progress=False)
    direct = specnb.compare("sentiment", curve.held_out, ["minilm"], label_space=described, store=False,
                            progress=False)
    assert curve.comparison.descriptions == direct.descriptions == described
    assert curve.comparison.table["minilm"].tolist() == direct.table["minilm"].tolist()
    assert curve.against.at["minilm", "accuracy"] == pytest.approx(direct.summary.at["minilm", "accuracy"])


# -- the real thing ---------------------------------------------------------------------------------------------
def test_a_real_minilm_curve_on_bbc_against_minilm_zero_shot(home):
    from specnb.datasets import bbc_topics

    data = bbc_topics(120, seed=3, max_chars=600)
    curve = specnb.learning_curve("minilm", data, sizes=(1, 2, 4, 8), seeds=3, eval=0.3, max_length=128,
                                  against=["minilm"], progress=False)
    summary, zero_shot = curve.summary, curve.against.loc["minilm"]
    assert len(curve.frame) == 12 and curve.n_held_out == 37 and (summary["n_train"] == [5, 10, 20, 40]).all()
    assert summary.at[8, "mean"] >= 0.7 and summary.at[8, "mean"] - summary.at[1, "mean"] >= 0.15  # chance: 0.2
    assert zero_shot["low"] < zero_shot["accuracy"] < zero_shot["high"] and zero_shot["accuracy"] >= 0.5
    assert zero_shot["accuracy"] == pytest.approx(curve.comparison.summary.at["minilm", "accuracy"])
    assert curve.comparison.inputs == list(curve.held_out["text"])
    size = curve.crossover["minilm"]
    assert size == crossover_size(summary["mean"].to_dict(), zero_shot["accuracy"])
    if size is not None:
        assert (summary.loc[size:, "mean"] > zero_shot["accuracy"]).all()
    assert "minilm" in repr(curve) and len(curve.figure().data) >= 5
    assert not home.exists()
