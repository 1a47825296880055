"""Verdicts, not just tables: paired differences against a reference model (paired bootstrap intervals,
McNemar's exact test), and calibration (ECE over equal-mass bins, the reliability diagram), checked
against statsmodels and a plain re-computation on fixed data."""

import math

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar

import specnb
from specnb._compare import metrics
from specnb._compare.calibration import expected_calibration_error, reliability_bins
from specnb._compare.comparison import Comparison
from specnb._compare.paired import mcnemar_exact
from specnb.errors import InputError
from specnb.tasks import Entities, Invalid, Label, Span


def _comparison(gold, answers: dict, *, roles=None, scores=None, reference=None, task="classify"):
    """A finished comparison of fixed answers (None: invalid) on fixed gold labels."""
    n = len(gold)
    models = list(answers)
    roles = roles or {}
    scores = scores or {}
    predictions = {}
    for m, labels in answers.items():
        given = scores.get(m, [None] * n)
        predictions[m] = [Invalid("?", "no label") if a is None else Label(a, s) for a, s in zip(labels, given)]
    settings = {} if reference is None else {"reference": reference}
    return Comparison(task=task, models=models, inputs=[f"text {i}" for i in range(n)], labels=list(gold),
                      index=list(range(n)), label_space=sorted(set(gold)), predictions=predictions,
                      item_seconds={m: [0.001] * n for m in models},
                      model_info={m: {"role": roles.get(m, "specialist"), "device": "cpu"} for m in models},
                      model_stats={m: {"seconds": 0.1, "items": n} for m in models}, settings=settings)


RNG = np.random.default_rng(7)
GOLD = list(RNG.choice(["a", "b", "c"], size=300))


def _noisy(rate: float, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [g if rng.random() > rate else ("b" if g == "a" else "a") for g in GOLD]


@pytest.mark.parametrize("b, c", [(0, 0), (0, 1), (3, 3), (5, 17), (30, 10), (1, 40), (400, 460), (2, 2000)])
def test_mcnemar_exact_matches_statsmodels(b, c):
    expected = mcnemar([[10, b], [c, 7]], exact=True).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_paired_differences_use_the_summarys_resamples_and_mcnemar():
    spec = _noisy(0.05, 1)
    right_at = [i for i, (a, g) in enumerate(zip(spec, GOLD)) if a == g]
    close = [("c" if a != "c" else "a") if i in right_at[:4] else a for i, a in enumerate(spec)]  # 4 fewer right
    answers = {"spec": spec, "gen": _noisy(0.25, 2), "close": close}
    cmp = _comparison(GOLD, answers, roles={"gen": "generalist"})
    paired = cmp.paired()
    assert cmp.reference == "spec" and set(paired["reference"]) == {"spec"}
    # the same resamples as the summary's intervals: recompute from the bootstrap indices
    idx = metrics.bootstrap_indices(len(GOLD), cmp.seed)
    right = {m: np.array([a == g for a, g in zip(answers[m], GOLD)]) for m in answers}
    for m in ("gen", "close"):
        diff = right[m][idx].mean(axis=1) - right["spec"][idx].mean(axis=1)
        low, high = np.quantile(diff, [0.025, 0.975])
        assert paired.at[m, "accuracy_delta"] == pytest.approx(right[m].mean() - right["spec"].mean())
        assert paired.at[m, "accuracy_delta_low"] == pytest.approx(low)
        assert paired.at[m, "accuracy_delta_high"] == pytest.approx(high)
        b = int((right["spec"] & ~right[m]).sum())
        c = int((~right["spec"] & right[m]).sum())
        assert (paired.at[m, "reference_only"], paired.at[m, "model_only"]) == (b, c)
        table = [[int((right["spec"] & right[m]).sum()), b], [c, int((~right["spec"] & ~right[m]).sum())]]
        assert paired.at[m, "p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue)
    # the summary's own interval of each model comes from the same resamples
    s = cmp.summary
    own = np.quantile(right["gen"][idx].mean(axis=1), [0.025, 0.975])
    assert (s.at["gen", "accuracy_low"], s.at["gen", "accuracy_high"]) == pytest.approx(tuple(own))
    assert list(s["verdict"]) == ["reference", "worse", "no difference at 95 %"]
    assert s.at["gen", "delta"] == pytest.approx(paired.at["gen", "accuracy_delta"])
    assert math.isnan(s.at["spec", "delta"]) and s.at["gen", "p_value"] < 1e-6
    lines = cmp.verdicts()
    assert len(lines) == 2 and lines[0].startswith("classify: gen vs spec — worse at 95 % (accuracy -0.")
    assert "McNemar p < 0.001" in lines[0] and "no difference at 95 %" in lines[1]


def test_reference_defaults_to_the_best_specialist_and_can_be_chosen():
    # the generalist is the best model, but the default reference is the best specialist
    answers = {"weak": _noisy(0.3, 4), "strong": _noisy(0.1, 5), "llm": list(GOLD)}
    cmp = _comparison(GOLD, answers, roles={"llm": "generalist"})
    assert cmp.reference == "strong"
    assert cmp.summary.at["llm", "verdict"] == "better"
    assert cmp.summary.at["weak", "verdict"] == "worse"
    chosen = _comparison(GOLD, answers, roles={"llm": "generalist"}, reference="llm")
    assert chosen.reference == "llm" and list(chosen.summary["verdict"]) == ["worse", "worse", "reference"]
    assert cmp.paired("weak").at["strong", "verdict"] == "better"
    with pytest.raises(InputError, match=r"reference='nope' is not a model of this comparison; models: weak, strong, llm"):
        cmp.paired("nope")
    only_generalists = _comparison(GOLD, answers, roles=dict.fromkeys(answers, "generalist"))
    assert only_generalists.reference == "llm"


def test_invalid_answers_count_as_wrong_in_the_paired_test():
    gold = ["a"] * 40
    cmp = _comparison(gold, {"ref": ["a"] * 40, "broken": [None] * 20 + ["a"] * 20})
    row = cmp.paired().loc["broken"]
    assert (row["reference_only"], row["model_only"]) == (20, 0)
    assert row["p_value"] == pytest.approx(2 * 0.5**20) and row["verdict"] == "worse"


def test_large_runs_pair_the_pattern_resamples():
    n = metrics.PATTERN_MIN_ITEMS + 1000
    rng = np.random.default_rng(3)
    gold = list(rng.choice(["x", "y"], size=n))
    flip = {"x": "y", "y": "x"}
    a = [g if rng.random() > 0.10 else flip[g] for g in gold]
    b = [g if rng.random() > 0.11 else flip[g] for g in gold]
    cmp = _comparison(gold, {"a": a, "b": b})
    row = cmp.paired().loc["b"]
    assert row["accuracy_delta_low"] < row["accuracy_delta"] < row["accuracy_delta_high"]
    # paired: the interval is far narrower than two independent intervals side by side would suggest
    s = cmp.summary
    assert row["accuracy_delta_high"] - row["accuracy_delta_low"] < (s.at["b", "accuracy_high"] - s.at["b", "accuracy_low"]) * 1.6
    right_a = np.array([x == g for x, g in zip(a, gold)])
    right_b = np.array([x == g for x, g in zip(b, gold)])
    table = [[0, int((right_a & ~right_b).sum())], [int((~right_a & right_b).sum()), 0]]
    assert row["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue)


def test_ner_verdict_follows_the_f1_interval():
    text = "Ada met Bob in Paris"
    gold = [[(0, 3, "PERSON"), (8, 11, "PERSON"), (15, 20, "GPE")]] * 60
    spans_all = [Span(0, 3, "PERSON", "Ada", 0.9), Span(8, 11, "PERSON", "Bob", 0.8), Span(15, 20, "GPE", "Paris", 0.7)]
    good = [Entities(tuple(spans_all))] * 60
    half = [Entities(tuple(spans_all[:1]))] * 60
    cmp = Comparison(task="ner", models=["good", "half"], inputs=[text] * 60, labels=gold, index=list(range(60)),
                     label_space=("PERSON", "ORG", "GPE", "LOC"), predictions={"good": good, "half": half},
                     item_seconds={"good": [0.01] * 60, "half": [0.01] * 60},
                     model_info={m: {"role": "specialist"} for m in ("good", "half")},
                     model_stats={m: {"seconds": 0.6, "items": 60} for m in ("good", "half")})
    paired = cmp.paired()
    assert cmp.reference == "good" and "p_value" not in paired.columns
    assert paired.at["half", "f1_delta"] == pytest.approx(0.5 - 1.0)
    assert paired.at["half", "verdict"] == "worse"
    assert cmp.verdicts() == ["ner: half vs good — worse at 95 % (F1 -0.500 [-0.500, -0.500])"]
    # span scores are calibrated per span: every predicted span is right, scored 0.7-0.9
    assert cmp.summary.at["good", "ece"] == pytest.approx(1 - (0.9 + 0.8 + 0.7) / 3)
    assert cmp.summary.at["half", "ece"] == pytest.approx(0.1)


def _plain_ece(scores, right, bins):
    """Equal-mass bins computed the plain way, for scores without ties."""
    order = np.argsort(scores)
    total = 0.0
    for part in np.array_split(order, bins):
        total += len(part) / len(scores) * abs(right[part].mean() - scores[part].mean())
    return total


def test_ece_equal_mass_bins():
    rng = np.random.default_rng(11)
    scores = rng.uniform(0.3, 1.0, size=503)
    calibrated = rng.random(503) < scores
    assert expected_calibration_error(scores, calibrated) == pytest.approx(_plain_ece(scores, calibrated, 10))
    assert expected_calibration_error(scores, calibrated) < 0.08
    overconfident = rng.random(503) < scores - 0.25
    assert expected_calibration_error(scores, overconfident) > 0.2
    parts = reliability_bins(scores, calibrated)
    assert [p["items"] for p in parts] == [51, 51, 51, 50, 50, 50, 50, 50, 50, 50]
    # equal scores share a bin, whatever the items' order
    tied = np.array([0.6] * 30 + [0.9] * 30)
    right = np.array([True, False] * 15 + [True] * 30)
    assert [p["items"] for p in reliability_bins(tied, right)] == [30, 30]
    assert expected_calibration_error(tied, right) == pytest.approx(0.5 * 0.1 + 0.5 * 0.1)
    assert expected_calibration_error(tied[::-1], right[::-1]) == pytest.approx(0.1)
    assert math.isnan(expected_calibration_error(np.zeros(0), np.zeros(0, dtype=bool)))


def test_calibration_table_figure_and_models_without_scores():
    answers = {"scored": _noisy(0.2, 8), "unscored": _noisy(0.2, 9), "logits": _noisy(0.2, 10)}
    scores = {"scored": list(np.linspace(0.5, 1.0, len(GOLD))), "logits": [3.5] * len(GOLD)}
    cmp = _comparison(GOLD, answers, scores=scores)
    s = cmp.summary
    assert not math.isnan(s.at["scored", "ece"])
    assert math.isnan(s.at["unscored", "ece"]) and math.isnan(s.at["logits", "ece"])  # 3.5 is no probability
    table = cmp.calibration()
    assert set(table["model"]) == {"scored"} and table["items"].sum() == len(GOLD)
    assert list(table.columns) == ["model", "bin", "items", "score", "accuracy", "low", "high"]
    figure = cmp.figures()["reliability"]
    names = [trace.name for trace in figure.data]
    assert names[0] == "calibrated" and names[1].startswith("scored (ECE 0.")
    unscored = _comparison(GOLD, {"u": answers["unscored"]})
    assert "reliability" not in unscored.figures()


def test_summary_report_and_view_show_the_verdicts(tmp_path):
    answers = {"spec<b>": _noisy(0.05, 1), "gen": _noisy(0.3, 2)}
    cmp = _comparison(GOLD, answers, roles={"gen": "generalist"}, scores={"spec<b>": [0.9] * len(GOLD)})
    html = cmp.to_html(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<h2>Verdicts</h2>" in html and "Calibration: reliability diagram" in html
    assert "spec&lt;b&gt;" in html and "spec<b>" not in html
    assert "gen vs spec&lt;b&gt; — worse at 95 %" in html
    fragment = cmp._repr_html_()
    assert "verdict" in fragment and "worse" in fragment and "ECE" in fragment
    widgets = pytest.importorskip("specnb.widgets")
    view = widgets.CompareView(cmp)
    keys = [c["key"] for c in view.summary_columns]
    assert {"delta", "verdict", "ece"} <= set(keys)
    cells = dict(zip(keys, view.summary_cells[1]))
    assert cells["verdict"]["text"] == "worse" and cells["delta"]["text"].startswith("-0.")
    assert "reliability" in view.chart_order


def test_compare_keeps_the_chosen_reference(specnb_home):
    def right(texts):
        return [("pos" if "good" in t else "neg", 0.8) for t in texts]

    def wrong(texts):
        return [("neg", 0.6) for _ in texts]

    texts = ["good one", "bad one"] * 20
    gold = ["pos", "neg"] * 20
    models = [specnb.load(right, task="classify", alias="right"), specnb.load(wrong, task="classify", alias="wrong")]
    cmp = specnb.compare("classify", texts, models, labels=gold, progress=False, reference="wrong")
    assert cmp.reference == "wrong" and cmp.summary.at["right", "verdict"] == "better"
    again = specnb.get_run(cmp.run_id)
    assert again.reference == "wrong" and again.verdicts() == cmp.verdicts()
    with pytest.raises(InputError, match=r"reference='other' is not one of the compared models; models: right, wrong"):
        specnb.compare("classify", texts, models, labels=gold, progress=False, reference="other")
    unlabelled = specnb.compare("classify", texts, models, label_space=["pos", "neg"], progress=False, store=False)
    assert unlabelled.reference is None and "verdict" not in unlabelled.summary
    with pytest.raises(InputError, match="gold labels"):
        unlabelled.paired()


def test_to_dict_carries_the_verdicts():
    cmp = _comparison(GOLD, {"spec": _noisy(0.05, 1), "gen": _noisy(0.3, 2)})
    summary = {row["model"]: row for row in cmp.to_dict()["summary"]}
    assert summary["gen"]["verdict"] == "worse" and summary["spec"]["delta"] is None
    assert summary["gen"]["delta"] < 0 and summary["spec"]["verdict"] == "reference"
