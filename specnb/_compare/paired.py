"""Paired differences against a reference model, and the verdict they support.

Every model of a comparison answered the same items, so its scores are compared item by item with a
reference model's (default: the best specialist):

* **Intervals.** A difference's 95 % interval is the percentile interval of the per-resample
  differences, on the same bootstrap resamples as the summary's intervals
  (`metrics.paired_label_samples`, `metrics.entity_f1_samples`): the pairing is kept.
* **McNemar's exact test** (label tasks, accuracy): of the discordant items, ``b`` only the reference
  got right and ``c`` only the model. With no difference, ``min(b, c)`` follows Binomial(b + c, 1/2);
  the two-sided p-value is ``min(1, 2 P[X <= min(b, c)])``, as statsmodels' ``mcnemar(exact=True)``.
* **The verdict at 95 %.** Label tasks: McNemar p < 0.05 gives ``better`` or ``worse`` by the sign of
  the accuracy difference. NER (F1, no exact test): the F1 difference's interval, ``better`` or
  ``worse`` when it excludes 0. Otherwise ``no difference at 95 %``. The reference reads ``reference``.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..presentation import format_value
from . import metrics

__all__ = ["VERDICTS", "ALPHA", "mcnemar_exact", "default_reference", "paired_table", "verdict_lines", "p_text"]

ALPHA = 0.05
REFERENCE, BETTER, WORSE, SAME = "reference", "better", "worse", "no difference at 95 %"
#: The verdicts a model can get.
VERDICTS = (REFERENCE, BETTER, WORSE, SAME)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant items (1.0 when there are none)."""
    n = int(b) + int(c)
    if n == 0:
        return 1.0
    k = np.arange(min(int(b), int(c)) + 1)
    log_pmf = (math.lgamma(n + 1) - np.array([math.lgamma(i + 1) + math.lgamma(n - i + 1) for i in k])
               - n * math.log(2))
    top = log_pmf.max()
    return float(min(1.0, 2 * math.exp(top) * np.exp(log_pmf - top).sum()))


def _headline(comparison) -> dict[str, float]:
    summary = comparison._quality
    return {m: summary[m][comparison.quality_column] for m in comparison.models}


def default_reference(comparison) -> str:
    """The best specialist by the headline metric (accuracy, ner F1); the best model when none is a
    specialist. Ties go to the model that ran first."""
    scores = _headline(comparison)
    roles = {m: (comparison.model_info.get(m) or {}).get("role") for m in comparison.models}
    pool = [m for m in comparison.models if roles[m] == "specialist"] or list(comparison.models)
    known = [m for m in pool if not math.isnan(scores[m])] or pool
    return max(known, key=lambda m: (0.0 if math.isnan(scores[m]) else scores[m], -comparison.models.index(m)))


def paired_table(comparison, reference: str | None = None):
    """One row per model: each score's difference from ``reference`` with its 95 % interval, for
    accuracy also the discordant counts and McNemar's p-value, and the verdict (see the module notes)."""
    import pandas as pd

    if comparison.quality_column is None:
        raise InputError("paired differences need gold labels: pass labels= to specnb.compare")
    reference = comparison.reference if reference is None else reference
    if reference not in comparison.models:
        raise InputError(f"reference={reference!r} is not a model of this comparison; models: "
                         f"{', '.join(comparison.models)}")
    drawn, scores = comparison._resamples, comparison._quality
    rows = comparison.done
    gold = [comparison._gold[i] for i in rows]
    records = []
    for m in comparison.models:
        record = {"model": m, "reference": reference}
        if comparison.ner:
            names = [("f1", lambda x: drawn[x])]
        else:
            names = [("accuracy", lambda x: drawn[x][3]), ("macro_f1", lambda x: drawn[x][4])]
        for name, samples in names:
            record[f"{name}_delta"] = scores[m][name] - scores[reference][name]
            low, high = metrics.interval(samples(m) - samples(reference))
            record[f"{name}_delta_low"], record[f"{name}_delta_high"] = low, high
        if not comparison.ner:
            mine = np.array([comparison._keys[m][i] == g for i, g in zip(rows, gold)], dtype=bool)
            theirs = np.array([comparison._keys[reference][i] == g for i, g in zip(rows, gold)], dtype=bool)
            b, c = int((theirs & ~mine).sum()), int((mine & ~theirs).sum())
            record.update(reference_only=b, model_only=c, p_value=mcnemar_exact(b, c))
        record["verdict"] = _verdict(record, m == reference, comparison.ner)
        records.append(record)
    return pd.DataFrame.from_records(records).set_index("model")


def _verdict(record: dict, is_reference: bool, ner: bool) -> str:
    if is_reference:
        return REFERENCE
    if ner:
        low, high, delta = record["f1_delta_low"], record["f1_delta_high"], record["f1_delta"]
        significant = not (math.isnan(low) or math.isnan(high)) and (low > 0 or high < 0)
    else:
        delta = record["accuracy_delta"]
        significant = record["p_value"] < ALPHA and delta != 0
    if not significant:
        return SAME
    return BETTER if delta > 0 else WORSE


def _signed(value: float) -> str:
    return format_value(value, "delta")


def p_text(p: float) -> str:
    """A p-value as people read it: ``p = 0.031``, ``p < 0.001``."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict_lines(comparison, reference: str | None = None) -> list[str]:
    """One line per model other than the reference: ``name: model vs reference — verdict (difference
    [interval], McNemar p)``."""
    table = paired_table(comparison, reference)
    metric = comparison.quality_column
    head = comparison.name or comparison.task
    lines = []
    for m, row in table.iterrows():
        if row["verdict"] == REFERENCE:
            continue
        verdict = row["verdict"] if row["verdict"] == SAME else f"{row['verdict']} at 95 %"
        detail = (f"{'F1' if comparison.ner else metric} {_signed(row[f'{metric}_delta'])} "
                  f"[{_signed(row[f'{metric}_delta_low'])}, {_signed(row[f'{metric}_delta_high'])}]")
        if not comparison.ner:
            detail += f", McNemar {p_text(row['p_value'])}"
        lines.append(f"{head}: {m} vs {row['reference']} — {verdict} ({detail})")
    return lines
