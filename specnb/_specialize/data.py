"""Training data for `specialize`, checked before any training starts: texts and labels from a DataFrame or
a pair of lists, every missing or empty one counted and named, the label space, and a stratified, seeded
held-out split (or a held-out DataFrame of its own, which must not overlap the training texts)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import InputError, TaskError
from ..tasks import get_task
from ..tasks.base import is_missing, normalize_input, text_digest, text_list

__all__ = ["TrainingData", "prepare", "TRAINED_TASKS"]

#: Tasks a specialist can be trained for here (label tasks: a sequence-classification head).
TRAINED_TASKS = ("classify", "sentiment", "langid")


@dataclass
class TrainingData:
    """Checked texts and labels: ``train`` and ``held_out`` index into ``texts`` / ``labels``."""

    texts: list[str]
    labels: list[str]
    label_space: tuple[str, ...]
    train: list[int]
    held_out: list[int] = field(default_factory=list)
    split: dict = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """One digest of the training texts and labels (what the model card records)."""
        h = hashlib.sha256()
        for i in self.train:
            h.update(self.texts[i].encode("utf-8") + b"\x00" + self.labels[i].encode("utf-8") + b"\x01")
        return h.hexdigest()[:16]

    def frame(self, which: str = "held_out"):
        """``train`` or ``held_out`` as a DataFrame with ``text`` and ``label``."""
        import pandas as pd

        index = self.held_out if which == "held_out" else self.train
        return pd.DataFrame({"text": [self.texts[i] for i in index], "label": [self.labels[i] for i in index]})


def _columns(data, text: str, label: str, what: str):
    """(texts, labels) from a DataFrame or a (texts, labels) pair."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        for arg, column in (("text", text), ("label", label)):
            if not isinstance(column, str) or column not in data.columns:
                raise InputError(f"{what} has no {arg} column {column!r} ({arg}=); its columns: "
                                 f"{', '.join(map(str, data.columns))}")
        return data[text].tolist(), data[label].tolist()
    if isinstance(data, tuple) and len(data) == 2:
        return (text_list(data[0], call="specialize", arg="data[0]"),
                text_list(data[1], call="specialize", arg="data[1]"))
    raise InputError(f"{what} is a DataFrame with {text!r} and {label!r} columns, or a (texts, labels) pair; "
                     f"got {type(data).__name__}")


def _positions(bad: list[int]) -> str:
    return ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")


def _clean(texts, labels, what: str) -> tuple[list[str], list[str]]:
    if len(texts) != len(labels):
        raise InputError(f"{what} has {len(texts)} texts and {len(labels)} labels; give one label per text")
    texts = [normalize_input(t) for t in texts]
    bad_texts = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad_texts:
        raise InputError(f"{what}: {len(bad_texts)} text(s) are missing, empty or not str (positions "
                         f"{_positions(bad_texts)}); fix or drop those rows first (nothing is dropped silently)")
    bad_labels = [i for i, y in enumerate(labels) if is_missing(y) or not str(y).strip()]
    if bad_labels:
        raise InputError(f"{what}: {len(bad_labels)} label(s) are missing or empty (None/NaN/'') at positions "
                         f"{_positions(bad_labels)}; label every text, or drop those rows first")
    return texts, [str(normalize_input(y)).strip() for y in labels]


def _space(task: str, labels: list[str], given) -> tuple[tuple[str, ...], list[str]]:
    """The label space (given, else the distinct labels in first-seen order sorted) and labels in its spelling."""
    spec = get_task(task)
    if given is not None:
        space = spec.label_space(list(given) if isinstance(given, Mapping) else given)
    else:
        found = sorted({spec.canonical(y) or y for y in labels} if task != "classify" else set(labels))
        if len(found) < 2:
            raise InputError(f"the training labels hold one class only ({found[0]!r}); a classifier needs at least "
                             "two classes")
        space = spec.label_space(found)
    folded = {x.casefold(): x for x in space}
    mapped = [folded.get((spec.canonical(y) or y).casefold()) if task != "classify" else folded.get(y.casefold())
              for y in labels]
    outside = sorted({y for y, m in zip(labels, mapped) if m is None})
    if outside:
        raise InputError(f"labels {outside[:10]} are not in labels= {list(space)}; add them to labels= or fix the data")
    return space, mapped


def _check_classes(labels: list[str], index: list[int], space) -> None:
    counts = Counter(labels[i] for i in index)
    present = [x for x in space if counts[x]]
    if len(present) < 2:
        raise InputError(f"the training labels hold one class only ({present[0] if present else 'none'!r}); a "
                         "classifier needs at least two classes")
    few = {x: counts[x] for x in present if counts[x] < 2}
    if few:
        raise InputError(f"classes with fewer than 2 training examples: {few}; give each class at least 2 "
                         "(more for a useful model) or leave it out of labels=")


def _split(texts: list[str], labels: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified and seeded: per class, a shuffled share ``fraction`` held out (at least one, leaving one).
    A text that occurs more than once is one unit, so its copies land on the same side (no leak)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        groups.setdefault(text_digest(t), []).append(i)
    by_class: dict[str, list[list[int]]] = {}
    for members in groups.values():
        by_class.setdefault(labels[members[0]], []).append(members)
    train, held = [], []
    for y in sorted(by_class):
        units = by_class[y]
        order = [units[j] for j in rng.permutation(len(units))]
        k = min(len(units) - 1, max(1, round(fraction * len(units)))) if len(units) > 1 else 0
        held.extend(i for unit in order[:k] for i in unit)
        train.extend(i for unit in order[k:] for i in unit)
    return sorted(train), sorted(held)


def prepare(data, *, task: str, text: str, label: str, labels, eval, seed: int) -> TrainingData:
    """`TrainingData` from ``data``; `InputError` / `TaskError` naming what is wrong, before any training."""
    if task not in TRAINED_TASKS:
        raise TaskError(f"specialize trains {', '.join(TRAINED_TASKS)} (a sequence-classification head); got "
                        f"task={task!r}")
    texts, raw = _columns(data, text, label, "data")
    texts, raw = _clean(texts, raw, "data")
    space, mapped = _space(task, raw, labels)
    if eval is None or (isinstance(eval, (int, float)) and not isinstance(eval, bool) and eval == 0):
        train, held, split = list(range(len(texts))), [], {"kind": "none"}
    elif isinstance(eval, float) and 0 < eval < 1:
        _check_classes(mapped, list(range(len(texts))), space)
        train, held = _split(texts, mapped, eval, seed)
        split = {"kind": "stratified", "fraction": eval, "seed": seed}
    elif type(eval).__name__ == "DataFrame" or isinstance(eval, tuple):
        eval_texts, eval_raw = _clean(*_columns(eval, text, label, "eval"), "eval")
        _, eval_mapped = _space(task, eval_raw, space)
        seen = {text_digest(t) for t in texts}
        overlap = sum(text_digest(t) in seen for t in eval_texts)
        if overlap:
            raise InputError(f"{overlap} held-out text(s) in eval= are also in the training data; held-out items "
                             "must be unseen, or their scores flatter the specialist")
        train = list(range(len(texts)))
        held = list(range(len(texts), len(texts) + len(eval_texts)))
        texts, mapped = texts + eval_texts, mapped + eval_mapped
        split = {"kind": "given", "size": len(eval_texts)}
    else:
        raise InputError(f"eval= is the held-out share (a float between 0 and 1, e.g. 0.2), a DataFrame of its own, "
                         f"or None for no held-out split; got {eval!r:.60}")
    _check_classes(mapped, train, space)
    split.update({"train": len(train), "held_out": len(held)})
    return TrainingData(texts=texts, labels=mapped, label_space=tuple(space), train=train, held_out=held, split=split)
