"""`compare`'s arguments, checked before anything runs: each wrong one is an `InputError` naming the
argument, what it got and what is valid; inputs and labels are never iterated unless they are a list."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import InputError
from ..tasks.base import is_missing, normalize_input, text_list

__all__ = ["check_options", "split_inputs", "gold_labels"]


def _kind(value) -> str:
    return f"{type(value).__name__} {value!r:.60}"


def check_options(*, text, name, batch_size, progress, store) -> None:
    """The scalar options: ``text`` a column name, ``name`` a str or None, ``batch_size`` a positive int or
    None, ``progress`` and ``store`` booleans."""
    if not isinstance(text, str) or not text:
        raise InputError(f"text= names the DataFrame's text column (a non-empty str, default 'text'), got {_kind(text)}")
    if name is not None and not isinstance(name, str):
        raise InputError(f"name= is the run's name in the store (a str), got {_kind(name)}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise InputError(f"batch_size= must be a positive int (or None for specnb.config.batch_size), got {_kind(batch_size)}")
    for arg, value in (("progress", progress), ("store", store)):
        if value is not None and not isinstance(value, bool):
            raise InputError(f"{arg}= must be True or False, got {_kind(value)}")


def split_inputs(inputs, labels, text: str):
    """(items, gold labels or None) from a list, a Series or a DataFrame; items normalised once, here, as every
    backend and the store get them (`normalize_input`: plain str, lone surrogates as U+FFFD)."""
    items, labels = _split(inputs, labels, text)
    return [normalize_input(x) for x in items], labels


def _split(inputs, labels, text: str):
    import pandas as pd

    if isinstance(inputs, pd.DataFrame):
        columns = [str(c) for c in inputs.columns]
        if text not in inputs.columns:
            raise InputError(f"the DataFrame has no text column {text!r}; pass text= one of {columns}")
        if inputs.columns.duplicated().any():
            raise InputError(f"the DataFrame has repeated column names {sorted(set(map(str, inputs.columns[inputs.columns.duplicated()])))}; "
                             "rename them so that each column is one field")
        if isinstance(labels, str):
            if labels not in inputs.columns:
                raise InputError(f"the DataFrame has no label column {labels!r}; columns: {columns}")
            labels = inputs[labels].tolist()
        elif labels is None and "label" in inputs.columns:
            labels = inputs["label"].tolist()
        return inputs[text].tolist(), labels
    if isinstance(labels, str):
        raise InputError(f"labels={labels!r} names a column, but inputs is not a DataFrame; pass a list of labels")
    return text_list(inputs, call="compare", arg="inputs", wrap="compare(task, [text], models)"), labels


def gold_labels(task: str, labels, n: int) -> list | None:
    """The gold labels as a list, one per input (None for none); missing ones refused, naming positions."""
    if labels is None:
        return None
    if isinstance(labels, (bytes, bytearray, Mapping, set, frozenset)) or not hasattr(labels, "__iter__") or getattr(
            labels, "ndim", 1) != 1:
        raise InputError(f"labels= is one gold label per input (a list, tuple, pandas Series or 1-D array), or the "
                         f"name of a DataFrame column; got {_kind(labels)}")
    labels = [normalize_input(y) for y in (labels.tolist() if hasattr(labels, "tolist") else list(labels))]
    if len(labels) != n:
        raise InputError(f"labels has {len(labels)} entries for {n} inputs; give one label per input")
    missing = [i for i, y in enumerate(labels) if (task != "ner" and is_missing(y))]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        raise InputError(f"labels are missing (None/NaN) for {len(missing)} input(s) (positions {shown}); "
                         "give every input a gold label, or none (labels=None)")
    return labels
