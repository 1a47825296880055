"""Scores of one model's predictions against gold labels, with paired bootstrap intervals.

Plain numpy on plain values: labels are strings, ``None`` stands for an invalid prediction (it is
counted wrong, never dropped), and entities are sets of ``(start, end, type)`` triples.

* Accuracy and macro-F1 follow scikit-learn: macro-F1 averages the per-label F1 over the labels
  that occur in the gold labels or the valid predictions (``f1_score(average="macro")``).
* NER is scored on exact spans: a predicted entity counts only when its start, end and type all
  match a gold one; precision, recall and F1 are micro-averaged over all entities.
* Intervals are percentile bootstrap intervals over items. The resampled item indices depend only
  on the seed and the number of items, so every model of one comparison is resampled the same way.
  Above `PATTERN_MIN_ITEMS` items, `paired_label_metrics` draws the same resamples as multinomial
  counts over the distinct (gold, answer of each model) patterns instead of item by item: the same
  distribution, paired across models, at a cost that grows with the patterns, not the items
  (100,000 items, 2 models: 14 s → well under a second).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "BOOTSTRAP_SAMPLES",
    "accuracy",
    "macro_f1",
    "entity_counts",
    "entity_scores",
    "bootstrap_indices",
    "label_metrics",
    "paired_label_metrics",
    "paired_label_samples",
    "entity_f1_samples",
    "label_scores",
    "interval",
    "PATTERN_MIN_ITEMS",
    "entity_metrics",
    "agreement",
    "confusion_counts",
]

BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95
#: From this many items on, `paired_label_metrics` resamples patterns instead of items.
PATTERN_MIN_ITEMS = 20_000
#: ... as long as there are at most this many distinct patterns.
_MAX_PATTERNS = 5_000


def accuracy(gold: Sequence[str], predicted: Sequence[str | None]) -> float:
    """Share of items whose prediction equals the gold label (invalid ones count as wrong)."""
    if not len(gold):
        return float("nan")
    return float(np.mean([p is not None and p == g for g, p in zip(gold, predicted)]))


def _codes(gold, predicted):
    """Integer codes: labels seen in gold or valid predictions get 0..K-1; invalid gets K."""
    names = sorted({*gold, *(p for p in predicted if p is not None)})
    index = {name: i for i, name in enumerate(names)}
    t = np.array([index[g] for g in gold], dtype=np.int64)
    p = np.array([len(names) if x is None else index[x] for x in predicted], dtype=np.int64)
    return t, p, len(names)


def _macro_f1_rows(t: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    """Macro-F1 of each row of (t, p), each a resample of shape (B, n), codes in [0, k]."""
    rows = t.shape[0]
    offset = (np.arange(rows) * (k + 1))[:, None]
    size = rows * (k + 1)
    hits = np.where(t == p, t, k)  # a hit counts for its label; misses go to the spare slot
    tp = np.bincount((hits + offset).ravel(), minlength=size).reshape(rows, k + 1)[:, :k]
    true = np.bincount((t + offset).ravel(), minlength=size).reshape(rows, k + 1)[:, :k]
    pred = np.bincount((p + offset).ravel(), minlength=size).reshape(rows, k + 1)[:, :k]
    return _macro_f1_counts(tp, true, pred)


def _macro_f1_counts(tp: np.ndarray, true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Macro-F1 per row from per-label counts of hits, gold occurrences and predictions, shape (B, k)."""
    rows = tp.shape[0]
    present = (true + pred) > 0
    f1 = np.divide(2 * tp, true + pred, out=np.zeros(tp.shape, dtype=np.float64), where=present)
    counted = present.sum(axis=1)
    return np.divide(f1.sum(axis=1), counted, out=np.full(rows, np.nan), where=counted > 0)


def macro_f1(gold: Sequence[str], predicted: Sequence[str | None]) -> float:
    """Macro-averaged F1 over the labels in ``gold`` or the valid predictions."""
    if not len(gold):
        return float("nan")
    t, p, k = _codes(gold, predicted)
    return float(_macro_f1_rows(t[None, :], p[None, :], k)[0])


def entity_counts(gold: Sequence[set], predicted: Sequence[set | None]) -> np.ndarray:
    """Per item (true positives, false positives, false negatives) on exact spans, shape (n, 3).
    An invalid prediction (None) finds nothing: all its gold entities are missed."""
    counts = np.zeros((len(gold), 3), dtype=np.int64)
    for i, (g, p) in enumerate(zip(gold, predicted)):
        p = p or set()
        hit = len(g & p)
        counts[i] = (hit, len(p) - hit, len(g) - hit)
    return counts


def entity_scores(totals: np.ndarray) -> tuple:
    """(precision, recall, F1) from summed (tp, fp, fn) along the last axis; 0 where a ratio is
    undefined (nothing predicted, or nothing to find), as scikit-learn's ``zero_division=0``."""
    tp, fp, fn = (totals[..., j].astype(np.float64) for j in range(3))
    zeros = np.zeros_like(tp)
    precision = np.divide(tp, tp + fp, out=zeros.copy(), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=zeros.copy(), where=(tp + fn) > 0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=zeros.copy(), where=(2 * tp + fp + fn) > 0)
    return precision, recall, f1


def bootstrap_indices(n: int, seed: int, samples: int = BOOTSTRAP_SAMPLES) -> np.ndarray:
    """Resampled item indices, shape (samples, n); the same for the same (n, seed, samples)."""
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def interval(values: np.ndarray) -> tuple[float, float]:
    """The 95 % percentile interval of resampled ``values`` (NaNs left out; NaN, NaN when none is left)."""
    alpha = (1 - CONFIDENCE) / 2
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def label_metrics(gold, predicted, *, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> dict:
    """Accuracy and macro-F1 with their 95 % bootstrap intervals (``*_low``, ``*_high``)."""
    n = len(gold)
    if not n:
        nan = float("nan")
        return dict.fromkeys(["accuracy", "accuracy_low", "accuracy_high", "macro_f1", "macro_f1_low",
                              "macro_f1_high"], nan)
    t, p, k = _codes(gold, predicted)
    idx = bootstrap_indices(n, seed, samples)
    return label_scores(t, p, k, (t == p)[idx].mean(axis=1), _macro_f1_rows(t[idx], p[idx], k))


def label_scores(t, p, k, accuracy_samples, macro_f1_samples) -> dict:
    """Accuracy and macro-F1 of codes ``(t, p)`` with the intervals of their resampled values."""
    acc_low, acc_high = interval(accuracy_samples)
    f1_low, f1_high = interval(macro_f1_samples)
    return {
        "accuracy": float((t == p).mean()),
        "accuracy_low": acc_low,
        "accuracy_high": acc_high,
        "macro_f1": float(_macro_f1_rows(t[None, :], p[None, :], k)[0]),
        "macro_f1_low": f1_low,
        "macro_f1_high": f1_high,
    }


def paired_label_samples(gold, predictions: dict, *, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> dict:
    """Per model of ``predictions`` (by model, on the same ``gold``): ``(t, p, k, accuracy_samples,
    macro_f1_samples)``, the codes and the scores on each bootstrap resample; every model is resampled on
    the same items, so differences between models' samples are paired (see the module notes)."""
    n = len(gold)
    coded = {m: _codes(gold, p) for m, p in predictions.items()}
    if n >= PATTERN_MIN_ITEMS and predictions:
        stacked = np.stack([code for t, p, _ in coded.values() for code in (t, p)], axis=1)
        patterns, freq = np.unique(stacked, axis=0, return_counts=True)
        if len(patterns) <= _MAX_PATTERNS:
            counts = np.random.default_rng(seed).multinomial(n, freq / n, size=samples).astype(np.float64)
            out = {}
            for j, (model, (t, p, k)) in enumerate(coded.items()):
                pt, pp = patterns[:, 2 * j], patterns[:, 2 * j + 1]
                eye = np.eye(k + 1)
                true_hot, pred_hot = eye[pt][:, :k], eye[pp][:, :k]
                hit_hot = true_hot * (pt == pp)[:, None]
                out[model] = (t, p, k, counts @ (pt == pp) / n,
                              _macro_f1_counts(counts @ hit_hot, counts @ true_hot, counts @ pred_hot))
            return out
    idx = bootstrap_indices(n, seed, samples)
    return {m: (t, p, k, (t == p)[idx].mean(axis=1), _macro_f1_rows(t[idx], p[idx], k)) for m, (t, p, k) in coded.items()}


def paired_label_metrics(gold, predictions: dict, *, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> dict:
    """`label_metrics` for several models' ``predictions`` (by model) on the same ``gold``, every model
    resampled on the same items; fast on large runs (see the module notes)."""
    if not len(gold):
        return {m: label_metrics(gold, p, seed=seed, samples=samples) for m, p in predictions.items()}
    return {m: label_scores(*drawn) for m, drawn in paired_label_samples(gold, predictions, seed=seed,
                                                                          samples=samples).items()}


def entity_f1_samples(gold, predicted, *, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> np.ndarray:
    """Entity F1 on each bootstrap resample (the resamples of `entity_metrics`), shape (samples,)."""
    counts = entity_counts(gold, predicted)
    if not len(gold):
        return np.full(samples, np.nan)
    return np.asarray(entity_scores(counts[bootstrap_indices(len(gold), seed, samples)].sum(axis=1))[2])


def entity_metrics(gold, predicted, *, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> dict:
    """Entity-level precision, recall and F1 on exact spans, with 95 % bootstrap intervals."""
    counts = entity_counts(gold, predicted)
    precision, recall, f1 = entity_scores(counts.sum(axis=0))
    out = {"precision": float(precision), "recall": float(recall), "f1": float(f1)}
    n = len(gold)
    resampled = counts[bootstrap_indices(n, seed, samples)].sum(axis=1) if n else np.zeros((0, 3))
    for name, values in zip(("precision", "recall", "f1"), entity_scores(resampled)):
        out[f"{name}_low"], out[f"{name}_high"] = interval(np.asarray(values)) if n else (float("nan"),) * 2
    if not n:
        out.update(precision=float("nan"), recall=float("nan"), f1=float("nan"))
    return out


def agreement(a: Sequence, b: Sequence) -> float:
    """Share of items on which two models give the same valid answer (None: invalid)."""
    if not len(a):
        return float("nan")
    return float(np.mean([x is not None and x == y for x, y in zip(a, b)]))


def confusion_counts(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str],
                     invalid: str) -> np.ndarray:
    """Counts of (gold, predicted) pairs over ``labels`` (rows) and ``labels + [invalid]`` (columns)."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels) + 1), dtype=np.int64)
    for g, p in zip(gold, predicted):
        column = len(labels) if p is None else index[p]
        matrix[index[g], column] += 1
    return matrix
