"""Comparison metrics against scikit-learn, and bootstrap intervals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from specnb._compare import metrics

INVALID = "<invalid>"


def _sklearn_label_scores(gold, predicted):
    """scikit-learn's accuracy and macro-F1, an invalid answer being a label of its own that is
    never right and (as in specnb) not one of the averaged labels."""
    marked = [INVALID if p is None else p for p in predicted]
    labels = sorted({*gold, *(p for p in predicted if p is not None)})
    acc = accuracy_score(gold, marked)
    f1 = f1_score(gold, marked, labels=labels, average="macro", zero_division=0)
    return acc, f1


FIXED_GOLD = ["a", "a", "b", "b", "b", "c", "c", "a", "d", "b"]
FIXED_PRED = ["a", "b", "b", "b", None, "c", "a", "a", "b", "e"]


def test_accuracy_and_macro_f1_match_scikit_learn_on_fixed_data():
    acc, f1 = _sklearn_label_scores(FIXED_GOLD, FIXED_PRED)
    assert acc == 0.5
    assert metrics.accuracy(FIXED_GOLD, FIXED_PRED) == pytest.approx(acc)
    assert metrics.macro_f1(FIXED_GOLD, FIXED_PRED) == pytest.approx(f1)
    # labels d (never predicted) and e (never gold) both count, with F1 0
    per_label = f1_score(FIXED_GOLD, FIXED_PRED[:4] + ["x"] + FIXED_PRED[5:], labels=list("abcde"), average=None)
    assert metrics.macro_f1(FIXED_GOLD, FIXED_PRED) == pytest.approx(per_label.mean())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.one_of(st.none(), st.sampled_from("abcde"))), min_size=1, max_size=40))
def test_label_metrics_match_scikit_learn_on_any_data(pairs):
    gold = [g for g, _ in pairs]
    predicted = [p for _, p in pairs]
    acc, f1 = _sklearn_label_scores(gold, predicted)
    assert metrics.accuracy(gold, predicted) == pytest.approx(acc)
    assert metrics.macro_f1(gold, predicted) == pytest.approx(f1)
    scores = metrics.label_metrics(gold, predicted, seed=1, samples=50)
    assert scores["accuracy"] == pytest.approx(acc) and scores["macro_f1"] == pytest.approx(f1)


def test_entity_scores_match_scikit_learn_on_the_union_of_spans():
    gold = [{(0, 5, "PERSON"), (10, 15, "ORG")}, {(3, 8, "GPE")}, set(), {(1, 4, "LOC")}]
    predicted = [{(0, 5, "PERSON"), (10, 15, "GPE")}, None, {(2, 6, "ORG")}, {(1, 4, "LOC"), (6, 9, "LOC")}]
    # every span either side names is one binary decision: gold has it, the model found it
    union = sorted({(i, s) for i, (g, p) in enumerate(zip(gold, predicted)) for s in g | (p or set())})
    y_true = [s in gold[i] for i, s in union]
    y_pred = [s in (predicted[i] or set()) for i, s in union]
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary")
    scores = metrics.entity_metrics(gold, predicted, seed=0, samples=100)
    assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx((p, r, f))
    assert (scores["precision"], scores["recall"]) == pytest.approx((2 / 5, 2 / 4))


def test_entity_counts_treat_an_invalid_answer_as_finding_nothing():
    counts = metrics.entity_counts([{(0, 1, "PERSON"), (2, 3, "ORG")}], [None])
    assert counts.tolist() == [[0, 0, 2]]


def test_bootstrap_intervals_are_deterministic_under_a_seed_and_bracket_the_estimate():
    rng = np.random.default_rng(7)
    gold = rng.choice(list("abc"), 300).tolist()
    predicted = [g if rng.random() < 0.8 else "a" for g in gold]
    first = metrics.label_metrics(gold, predicted, seed=3)
    again = metrics.label_metrics(gold, predicted, seed=3)
    other = metrics.label_metrics(gold, predicted, seed=4)
    assert first == again
    assert first != other
    for name in ("accuracy", "macro_f1"):
        assert first[f"{name}_low"] < first[name] < first[f"{name}_high"]
    # about ±1.96 standard errors of a proportion of 300
    se = np.sqrt(first["accuracy"] * (1 - first["accuracy"]) / 300)
    assert first["accuracy_high"] - first["accuracy_low"] == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_bootstrap_resamples_every_model_on_the_same_items():
    assert np.array_equal(metrics.bootstrap_indices(50, seed=9), metrics.bootstrap_indices(50, seed=9))
    assert metrics.bootstrap_indices(50, seed=9).shape == (metrics.BOOTSTRAP_SAMPLES, 50)


def test_agreement_counts_only_equal_valid_answers():
    assert metrics.agreement(["a", "b", None, "c"], ["a", "c", None, "c"]) == 0.5


def test_confusion_counts_put_invalid_answers_in_the_last_column():
    matrix = metrics.confusion_counts(["a", "a", "b"], ["a", None, "a"], ["a", "b"], INVALID)
    assert matrix.tolist() == [[1, 0, 1], [1, 0, 0]]


def test_empty_inputs_give_nan_not_errors():
    assert np.isnan(metrics.accuracy([], []))
    assert np.isnan(metrics.label_metrics([], [])["accuracy_low"])
    assert np.isnan(metrics.entity_metrics([], [])["f1"])


def test_paired_metrics_on_large_runs_resample_patterns_with_the_same_distribution():
    """Above PATTERN_MIN_ITEMS, intervals come from pattern counts: the same point estimates, intervals
    within bootstrap noise of the item-by-item ones, and the same draws for every model (pairing)."""
    rng = np.random.default_rng(11)
    n = metrics.PATTERN_MIN_ITEMS + 5_000
    gold = rng.choice(list("abcd"), n).tolist()
    good = [g if rng.random() < 0.9 else "a" for g in gold]
    poor = [g if rng.random() < 0.6 else (None if rng.random() < 0.1 else "b") for g in gold]
    paired = metrics.paired_label_metrics(gold, {"good": good, "poor": poor, "twin": list(good)}, seed=5)
    for name, predicted in (("good", good), ("poor", poor)):
        items = metrics.label_metrics(gold, predicted, seed=5, samples=300)
        for key in ("accuracy", "macro_f1"):
            assert paired[name][key] == items[key]
            for bound in ("_low", "_high"):
                assert paired[name][key + bound] == pytest.approx(items[key + bound], abs=0.003)
    assert paired["twin"] == paired["good"]  # identical answers, identical draws: the resamples are paired
    assert paired == metrics.paired_label_metrics(gold, {"good": good, "poor": poor, "twin": good}, seed=5)


def test_paired_metrics_on_small_runs_are_label_metrics():
    gold, predicted = ["a", "b", "a", "c"] * 10, ["a", "a", "a", "c"] * 10
    assert metrics.paired_label_metrics(gold, {"m": predicted}, seed=2) == {
        "m": metrics.label_metrics(gold, predicted, seed=2)}
