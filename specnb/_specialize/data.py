"""Training data for `specialize`, checked before any training starts: texts and labels from a DataFrame or
a pair of lists, every missing or empty one counted and named, the label space, and a stratified, seeded
held-out split (or a held-out DataFrame of its own, which must not overlap the training texts).

Distillation (``teacher=``, see `teacher`): the training labels are a teacher model's answers. The data may
then be texts alone (a DataFrame without the label column, a list of texts) or a `Comparison` (its texts and
that model's answers, nothing run). Gold labels, when there are any, are kept for evaluation only
(`TrainingData.gold`). Without gold labels and without ``teacher=``, the teacher is ``default_teacher``
(`teacher.DEFAULT_TEACHER`, the embedded generalist; None makes that an error): a DataFrame lacks its labels
when it has no ``label`` column and ``label`` is the default name ("label"); another missing column name is an
error (a typo must not start a distillation). ``labels=`` is the label space the teacher answers in: needed
for ``classify`` without gold labels (sentiment and langid have their task's). The split is stratified on the
teacher's labels; answers that are invalid or below ``min_confidence`` are left out and counted
(`TrainingData.teacher`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import InputError, TaskError
from ..tasks import get_task
from ..tasks.base import is_missing, normalize_input, text_digest, text_list
from .teacher import DEFAULT_TEACHER

__all__ = ["TrainingData", "prepare", "TRAINED_TASKS", "SPECIALIZE_TASKS"]

#: Label tasks, whose data `prepare` reads (a sequence-classification head; what `learning_curve` trains).
TRAINED_TASKS = ("classify", "sentiment", "langid")
#: Every task `specialize` trains: the label tasks and ner (a token classifier; its data: `ner.prepare_ner`).
SPECIALIZE_TASKS = (*TRAINED_TASKS, "ner")


@dataclass
class TrainingData:
    """Checked texts and labels: ``train`` and ``held_out`` index into ``texts`` / ``labels``.

    Distilled: ``labels`` are the teacher's answers, ``gold`` the gold label of each text (None where it has
    none; the field is None without gold labels), ``teacher`` the teacher's report: alias, source, key,
    asked, cached, kept, invalid, unsure, seconds, items_per_s (and from_run, from a comparison)."""

    texts: list[str]
    labels: list[str]
    label_space: tuple[str, ...]
    train: list[int]
    held_out: list[int] = field(default_factory=list)
    split: dict = field(default_factory=dict)
    gold: list | None = None
    teacher: dict | None = None

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
        columns = {"text": [self.texts[i] for i in index], "label": [self.labels[i] for i in index]}
        if self.gold is not None:
            columns["gold"] = [self.gold[i] for i in index]
        return pd.DataFrame(columns)


def _columns(data, text: str, label: str, what: str, unlabelled: bool = False):
    """(texts, labels) from a DataFrame or a (texts, labels) pair; with ``unlabelled`` (a teacher labels them)
    also texts alone (labels None): a DataFrame without the label column, a list or Series of texts."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        for arg, column in (("text", text), ("label", label)):
            if not isinstance(column, str) or column not in data.columns:
                if arg == "label" and unlabelled:
                    return data[text].tolist(), None
                raise InputError(f"{what} has no {arg} column {column!r} ({arg}=); its columns: "
                                 f"{', '.join(map(str, data.columns))}")
        return data[text].tolist(), data[label].tolist()
    if isinstance(data, tuple) and len(data) == 2:
        return (text_list(data[0], call="specialize", arg="data[0]"),
                text_list(data[1], call="specialize", arg="data[1]"))
    if unlabelled and (isinstance(data, list) or type(data).__name__ in ("Series", "ndarray")):
        return text_list(data, call="specialize", arg="data"), None
    raise InputError(f"{what} is a DataFrame with {text!r} and {label!r} columns, or a (texts, labels) pair "
                     f"(with a teacher: texts alone, or a specnb.Comparison); got {type(data).__name__}")


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


def _fraction(eval) -> str:
    """What ``eval=`` asks for: ``none``, ``fraction`` or ``given`` (a DataFrame or pair of its own)."""
    if eval is None or (isinstance(eval, (int, float)) and not isinstance(eval, bool) and eval == 0):
        return "none"
    if isinstance(eval, float) and 0 < eval < 1:
        return "fraction"
    if type(eval).__name__ == "DataFrame" or isinstance(eval, tuple):
        return "given"
    raise InputError(f"eval= is the held-out share (a float between 0 and 1, e.g. 0.2), a DataFrame of its own, "
                     f"or None for no held-out split; got {eval!r:.60}")


def _no_overlap(texts: list[str], eval_texts: list[str]) -> None:
    seen = {text_digest(t) for t in texts}
    overlap = sum(text_digest(t) in seen for t in eval_texts)
    if overlap:
        raise InputError(f"{overlap} held-out text(s) in eval= are also in the training data; held-out items "
                         "must be unseen, or their scores flatter the specialist")


def _divide(texts, mapped, space, eval, seed: int, given: int | None, note: str = ""):
    """(train, held_out, split): the last ``given`` items held out as given, else a stratified share."""
    try:
        if given is not None:
            train = list(range(len(texts) - given))
            held, split = list(range(len(texts) - given, len(texts))), {"kind": "given", "size": given}
        elif _fraction(eval) == "fraction":
            _check_classes(mapped, list(range(len(texts))), space)
            train, held = _split(texts, mapped, eval, seed)
            split = {"kind": "stratified", "fraction": eval, "seed": seed}
        else:
            train, held, split = list(range(len(texts))), [], {"kind": "none"}
        _check_classes(mapped, train, space)
    except InputError as exc:
        if not note:
            raise
        raise InputError(f"{exc} ({note})") from None
    split.update({"train": len(train), "held_out": len(held)})
    return train, held, split


def _check_min_confidence(min_confidence) -> None:
    if min_confidence is not None and (isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float))
                                       or not 0 <= min_confidence <= 1):
        raise InputError(f"min_confidence= is a score between 0 and 1 (or None), got {min_confidence!r:.40}")


def prepare(data, *, task: str, text: str = "text", label: str = "label", labels=None, eval=0.2, seed: int = 0,
            teacher=None, min_confidence: float | None = None, default_teacher=DEFAULT_TEACHER, store: bool = True,
            progress: bool | None = None) -> TrainingData:
    """`TrainingData` from ``data``; `InputError` / `TaskError` naming what is wrong, before any training.

    ``teacher`` / ``min_confidence`` / ``default_teacher``: distillation (see the module docstring); ``store``:
    read and keep the teacher's answers in the run store; ``progress``: a bar while the teacher answers.
    """
    if task not in TRAINED_TASKS:
        raise TaskError(f"this reads the data of the label tasks {', '.join(TRAINED_TASKS)} (a sequence-"
                        f"classification head); got task={task!r}" + (" (ner data: specialize(task='ner') reads it)"
                                                                       if task == "ner" else ""))
    _check_min_confidence(min_confidence)
    kind = _fraction(eval)
    if type(data).__name__ == "Comparison" and hasattr(data, "predictions"):
        return _from_comparison(data, task=task, labels=labels, eval=eval, seed=seed, teacher=teacher,
                                min_confidence=min_confidence)
    unlabelled = teacher is not None or (label == "label" and default_teacher is not None)
    texts, raw = _columns(data, text, label, "data", unlabelled)
    if teacher is None and raw is not None:
        if min_confidence is not None:
            raise InputError("min_confidence= leaves out a teacher's unsure answers; pass teacher= (a model whose "
                             "answers become the labels), or min_confidence=None to train on the gold labels")
        texts, raw = _clean(texts, raw, "data")
        space, mapped = _space(task, raw, labels)
        given = None
        if kind == "given":
            eval_texts, eval_raw = _clean(*_columns(eval, text, label, "eval"), "eval")
            _, eval_mapped = _space(task, eval_raw, space)
            _no_overlap(texts, eval_texts)
            texts, mapped, given = texts + eval_texts, mapped + eval_mapped, len(eval_texts)
        train, held, split = _divide(texts, mapped, space, eval, seed, given)
        return TrainingData(texts=texts, labels=mapped, label_space=tuple(space), train=train, held_out=held,
                            split=split)
    return _distil(texts, raw, task=task, text=text, label=label, labels=labels, eval=eval, seed=seed,
                   teacher=teacher if teacher is not None else default_teacher, min_confidence=min_confidence,
                   store=store, progress=progress)


def _texts(texts, what: str) -> list[str]:
    texts = [normalize_input(t) for t in texts]
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise InputError(f"{what}: {len(bad)} text(s) are missing, empty or not str (positions {_positions(bad)}); "
                         "fix or drop those rows first (nothing is dropped silently)")
    return texts


def _gold(task: str, raw, space) -> list | None:
    """Gold labels kept for evaluation: in the space's spelling, None where missing (a label outside the space is
    an error, as in training)."""
    if raw is None:
        return None
    gold = [None if is_missing(y) or not str(y).strip() else str(normalize_input(y)).strip() for y in raw]
    present = [y for y in gold if y is not None]
    mapped = iter(_space(task, present, space)[1]) if present else iter(())
    return [None if y is None else next(mapped) for y in gold]


def _teacher_space(task: str, labels, gold_raw: list) -> tuple[str, ...]:
    """The label space the teacher answers in: ``labels=``, else the gold labels', else the task's default."""
    present = [str(normalize_input(y)).strip() for y in gold_raw if not is_missing(y) and str(y).strip()]
    if labels is not None or present:
        return tuple(_space(task, present, labels)[0])
    spec = get_task(task)
    if spec.default_labels is None:
        raise InputError(f"labels= is the label space the teacher answers in; {task} without gold labels needs it, "
                         "e.g. labels=['business', 'sport', 'tech']")
    return tuple(spec.label_space(None))


def _distil(texts, raw, *, task, text, label, labels, eval, seed, teacher, min_confidence, store, progress):
    from .teacher import ask, resolve_teacher

    if raw is not None and len(raw) != len(texts):
        raise InputError(f"data has {len(texts)} texts and {len(raw)} labels; give one label per text")
    texts = _texts(texts, "data")
    eval_texts, eval_raw = [], None
    if _fraction(eval) == "given":
        eval_texts, eval_raw = _columns(eval, text, label, "eval", unlabelled=True)
        eval_texts = _texts(eval_texts, "eval")
        _no_overlap(texts, eval_texts)
    space = _teacher_space(task, labels, [*(raw or []), *(eval_raw or [])])
    gold = _gold(task, raw, space)
    eval_gold = _gold(task, eval_raw, space)
    if gold is not None or eval_gold is not None:
        gold = (gold or [None] * len(texts)) + (eval_gold or [None] * len(eval_texts))
    model = resolve_teacher(teacher, task)
    everything = texts + eval_texts
    answers, report = ask(model, everything, task=task, space=space, store=store, progress=progress)
    return _kept(everything, answers, gold, space, report, task=task, eval=eval, seed=seed,
                 min_confidence=min_confidence, given=len(eval_texts) if _fraction(eval) == "given" else None)


def _kept(texts, answers, gold, space, report, *, task, eval, seed, min_confidence, given):
    """The items whose teacher's answer is kept, split; the teacher's report completed with the counts."""
    from .teacher import screen

    taught, counts = screen(answers, space, min_confidence, report["alias"])
    keep = [i for i, y in enumerate(taught) if y is not None]
    if given is not None:
        given = sum(i >= len(texts) - given for i in keep)
    report = {**report, **counts, "min_confidence": min_confidence}
    note = (f"after the teacher's answers were filtered: {counts['kept']} kept, {counts['invalid']} invalid, "
            f"{counts['unsure']} below min_confidence={min_confidence}")
    kept_texts, kept_labels = [texts[i] for i in keep], [taught[i] for i in keep]
    train, held, split = _divide(kept_texts, kept_labels, space, eval, seed, given, note)
    return TrainingData(texts=kept_texts, labels=kept_labels, label_space=tuple(space), train=train, held_out=held,
                        split=split, gold=None if gold is None else [gold[i] for i in keep], teacher=report)


def _from_comparison(comparison, *, task, labels, eval, seed, teacher, min_confidence):
    from .teacher import from_comparison

    if _fraction(eval) == "given":
        raise InputError("with a Comparison as data, eval= is the held-out share (a float between 0 and 1) or None; "
                         "its held-out items come from the comparison's texts")
    texts, answers, gold, space, report = from_comparison(comparison, teacher, task=task, labels=labels)
    if gold is not None:
        folded = {x.casefold(): x for x in space}
        gold = [None if y is None else folded.get(str(y).casefold(), y) for y in gold]
    return _kept(texts, answers, gold, space, report, task=task, eval=eval, seed=seed, min_confidence=min_confidence,
                 given=None)
