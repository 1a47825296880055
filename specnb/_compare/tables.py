"""Tables and plain data derived from a `Comparison`: its confusion matrices and its JSON-able form."""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from . import metrics

__all__ = ["confusion_frame", "comparison_dict"]

#: How an invalid prediction shows in confusion matrices.
INVALID = "(invalid)"
#: A span only one side has, in NER confusion matrices.
NONE = "(none)"


def confusion_frame(comparison, model: str):
    """`Comparison.confusion`: gold (rows) against ``model``'s answers (columns), as counts."""
    import pandas as pd

    if comparison._gold is None:
        raise InputError("confusion needs gold labels: pass labels= to specnb.compare")
    rows = comparison.done
    if not comparison.ner:
        gold = comparison._pick(comparison._gold, rows)
        keys = comparison._pick(comparison._keys[model], rows)
        names = [x for x in comparison.label_space if x in set(gold) | set(keys)]
        counts = metrics.confusion_counts(gold, keys, names, INVALID)
        frame = pd.DataFrame(counts, index=pd.Index(names, name="gold"), columns=[*names, INVALID])
        frame.columns.name = model
        return frame
    types = list(comparison.label_space)
    axis = [*types, NONE]
    counts = np.zeros((len(axis), len(axis)), dtype=np.int64)
    where = {t: i for i, t in enumerate(axis)}
    for i in rows:
        gold = {(s, e): t for s, e, t in comparison._gold[i]}
        pred = {(s, e): t for s, e, t in (comparison._keys[model][i] or ())}
        for span in gold.keys() | pred.keys():
            counts[where.get(gold.get(span, NONE), where[NONE]), where.get(pred.get(span, NONE), where[NONE])] += 1
    frame = pd.DataFrame(counts, index=pd.Index(axis, name="gold"), columns=axis)
    frame.columns.name = model
    return frame


def comparison_dict(comparison) -> dict:
    """`Comparison.to_dict`: ``run``, ``summary`` (records) and ``items`` (records of the table)."""
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, (np.floating, np.integer, np.bool_)):
            return clean(value.item())
        return value

    summary = [{k: clean(v) for k, v in {"model": m, **row}.items()}
               for m, row in comparison.summary.to_dict(orient="index").items()]
    items = [{k: clean(v) for k, v in {"item": i, **row}.items()}
             for i, row in comparison.table.to_dict(orient="index").items()]
    run = {
        "id": comparison.run_id, "name": comparison.name, "task": comparison.task, "status": comparison.status,
        "models": comparison.models,
        "label_space": list(comparison.label_space), "seed": comparison.seed, "settings": comparison.settings,
        "model_info": comparison.model_info,
    }
    return {"run": run, "summary": summary, "items": items}
