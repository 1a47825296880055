"""Calibration of the scores models give: expected calibration error and the reliability diagram.

A label task's score is the model's confidence in its answer (`Label.score`, in [0, 1]); the scores
are calibrated when, of the answers scored about 0.8, about 80 % are right. A cascade's threshold
is a score, so it means what it says only when the specialist is calibrated.

* **What is scored.** Label tasks: each valid answer that has a score, right when it equals the gold
  label. NER: each predicted span that has a score, right when its exact offsets and type are gold.
  A model without scores (or with scores outside [0, 1], which are no probabilities) gets none.
* **Equal-mass bins.** The scored answers sorted by score are cut into `BINS` groups of (nearly)
  equal size; answers with the same score always share a group, so a cut inside a run of equal
  scores moves to its end (fewer, larger groups when many scores are equal or answers are few).
* **ECE** = Σ over bins of (share of answers in the bin) × |accuracy in the bin − mean score in the
  bin|: 0 is perfectly calibrated; `POOR_ECE` and above reads as badly calibrated.
"""

from __future__ import annotations

import math

import numpy as np

from ..tasks import Entities, Label

__all__ = ["BINS", "POOR_ECE", "scored_answers", "reliability_bins", "expected_calibration_error",
           "calibration_table", "ece_by_model", "calibration_note"]

BINS = 10
#: An ECE from this value up reads as badly calibrated (the cascade sweep says so).
POOR_ECE = 0.1


def scored_answers(comparison, model: str) -> tuple[np.ndarray, np.ndarray]:
    """(scores, right) of ``model``'s scored answers on the items every model answered; empty without
    gold labels, without scores, or when a score lies outside [0, 1]."""
    empty = np.zeros(0), np.zeros(0, dtype=bool)
    if comparison.labels is None:
        return empty
    scores, right = [], []
    for i in comparison.done:
        prediction, gold = comparison.predictions[model][i], comparison._gold[i]
        if isinstance(prediction, Label) and prediction.score is not None:
            scores.append(float(prediction.score))
            right.append(prediction.label == gold)
        elif isinstance(prediction, Entities):
            for span in prediction.spans:
                if span.score is not None:
                    scores.append(float(span.score))
                    right.append((span.start, span.end, span.label) in gold)
    scores_array = np.asarray(scores, dtype=np.float64)
    if not len(scores_array) or not np.all(np.isfinite(scores_array)) or scores_array.min() < 0 or scores_array.max() > 1:
        return empty
    return scores_array, np.asarray(right, dtype=bool)


def reliability_bins(scores: np.ndarray, right: np.ndarray, bins: int = BINS) -> list[dict]:
    """Equal-mass bins of (scores, right): per bin ``items``, ``score`` (mean), ``accuracy``, ``low``, ``high``
    (its lowest and highest score)."""
    if not len(scores):
        return []
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    cuts = []
    for part in np.array_split(np.arange(len(order)), min(bins, len(scores)))[1:]:
        cut = int(part[0])
        while cut < len(ranked) and ranked[cut] == ranked[cut - 1]:  # equal scores share a bin
            cut += 1
        if cut < len(ranked) and (not cuts or cut > cuts[-1]):
            cuts.append(cut)
    out = []
    for part in np.split(order, cuts):
        out.append({"items": int(len(part)), "score": float(scores[part].mean()),
                    "accuracy": float(right[part].mean()), "low": float(scores[part].min()),
                    "high": float(scores[part].max())})
    return out


def expected_calibration_error(scores: np.ndarray, right: np.ndarray, bins: int = BINS) -> float:
    """ECE over equal-mass bins (see the module notes); NaN without scored answers."""
    parts = reliability_bins(scores, right, bins)
    if not parts:
        return float("nan")
    n = sum(p["items"] for p in parts)
    return float(sum(p["items"] / n * abs(p["accuracy"] - p["score"]) for p in parts))


def ece_by_model(comparison) -> dict[str, float]:
    """Each model's ECE (NaN for a model without scores or a comparison without gold labels)."""
    return {m: expected_calibration_error(*scored_answers(comparison, m)) for m in comparison.models}


def calibration_table(comparison):
    """The reliability bins of every model that gives scores, as a DataFrame: model, bin, items, score
    (mean), accuracy, low, high."""
    import pandas as pd

    rows = []
    for m in comparison.models:
        for j, part in enumerate(reliability_bins(*scored_answers(comparison, m))):
            rows.append({"model": m, "bin": j, **part})
    return pd.DataFrame(rows, columns=["model", "bin", "items", "score", "accuracy", "low", "high"])


def calibration_note(model: str, ece: float) -> str | None:
    """A warning when ``model``'s scores are badly calibrated (ECE ≥ `POOR_ECE`), else None."""
    if math.isnan(ece) or ece < POOR_ECE:
        return None
    return (f"{model}'s scores are badly calibrated (ECE {ece:.3f} ≥ {POOR_ECE}): a threshold on them means less "
            "than it seems; compare the sweep's measured accuracy, not the threshold's value")
