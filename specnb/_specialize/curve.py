"""`learning_curve`: how many labelled examples per class a specialist needs before it beats other models.

One stratified split (`prepare`): every specialist and every ``against`` model is scored on the same held-out
items. ``method="head"``: the frozen encoder's features are computed once for every text (as `specialize`
does), and a linear head is fitted per (size, seed) on a subset of the training split: ``size`` examples of
each class. Per seed, each class's training examples are shuffled once and a size takes the first ``size`` of
them, so a seed's subsets are nested (a larger size adds examples) and different seeds draw different subsets.

Intervals are 95 % Wilson intervals over the held-out items, for the specialists and the ``against`` models
alike (the same construction on the same items, so the line and the curve compare like with like; the
`Comparison` of the ``against`` models, with its bootstrap intervals, is kept in ``curve.comparison``).

The crossover with an ``against`` model is the smallest size from which the specialist's mean held-out
accuracy over the seeds is above that model's accuracy at that size and at every larger size measured
(strictly above: a tie is not better). A size at which the mean crosses and then falls back does not count,
so one lucky subset cannot name a crossover. None when the specialist never stays above it.
"""

from __future__ import annotations

import html
import math
import numbers
import os

from ..backends.device import trim_heap
from ..errors import InputError, TaskError
from .data import TRAINED_TASKS, prepare

__all__ = ["learning_curve", "LearningCurve", "against_frame", "crossover_size", "subsets", "CURVE_METHODS"]

#: Methods `learning_curve` fits (``method=``).
CURVE_METHODS = ("head",)


def crossover_size(means: dict, accuracy: float):
    """The smallest size whose mean accuracy, and that of every larger size, is above ``accuracy``; else None.

    ``means`` maps size -> mean accuracy over seeds; a NaN mean or a NaN ``accuracy`` is never above."""
    found = None
    for size in sorted(means, reverse=True):
        mean = means[size]
        if not (isinstance(mean, (int, float)) and math.isfinite(mean) and math.isfinite(accuracy) and mean > accuracy):
            break
        found = size
    return found


class LearningCurve:
    """Specialists trained on growing numbers of labelled examples per class, scored on one held-out split.

    Attributes
    ----------
    frame : DataFrame
        One row per (size, seed): ``size`` (examples per class), ``seed``, ``n_train``, ``accuracy``, ``low``,
        ``high`` (95 % Wilson interval over the held-out items) and ``macro_f1``.
    summary : DataFrame
        Indexed by size: ``n_train``, ``seeds``, ``mean``, ``min``, ``max`` (over seeds), ``low`` / ``high``
        (the Wilson interval at the mean accuracy over the held-out items) and ``macro_f1`` (mean).
    against : DataFrame
        Indexed by model: ``accuracy``, ``low``, ``high`` (Wilson, same items) and ``macro_f1``.
    crossover : dict
        Model -> the smallest size from which the specialist is better (see the module's docstring), or None.
    n_held_out : int
        How many held-out items every score is on.
    """

    def __init__(self, frame, against, *, n_held_out: int, base: str = "", task: str = "classify",
                 method: str = "head", label_space=(), split=None, held_out=None, comparison=None, settings=None):
        import pandas as pd

        from .train import _wilson

        self.frame = frame.reset_index(drop=True)
        self.against = against if against is not None else pd.DataFrame(columns=["accuracy", "low", "high",
                                                                                   "macro_f1"])
        self.n_held_out = int(n_held_out)
        self.base, self.task, self.method = base, task, method
        self.label_space = tuple(label_space)
        self.split = dict(split or {})
        self.held_out = held_out
        self.comparison = comparison
        self.settings = dict(settings or {})
        rows = []
        for size, group in self.frame.groupby("size", sort=True):
            mean = float(group["accuracy"].mean())
            interval = _wilson(mean * self.n_held_out, self.n_held_out)
            rows.append({"size": int(size), "n_train": int(group["n_train"].max()), "seeds": len(group), "mean": mean,
                         "min": float(group["accuracy"].min()), "max": float(group["accuracy"].max()),
                         "low": interval["low"], "high": interval["high"],
                         "macro_f1": float(group["macro_f1"].mean())})
        columns = ["size", "n_train", "seeds", "mean", "min", "max", "low", "high", "macro_f1"]
        self.summary = pd.DataFrame(rows, columns=columns).set_index("size")
        means = self.summary["mean"].to_dict()
        self.crossover = {m: crossover_size(means, float(self.against.at[m, "accuracy"])) for m in self.against.index}

    @property
    def sizes(self) -> list[int]:
        return [int(s) for s in self.summary.index]

    def figure(self):
        """A plotly figure: the specialist's mean accuracy over seeds (band: min to max over seeds; error bars:
        the Wilson interval at the mean; dots: each seed), each ``against`` model as a horizontal line with its
        interval band, crossovers marked, examples per class on a log-2 axis."""
        from .._compare.charts import learning_curve_figure

        return learning_curve_figure(self)

    def crossover_text(self, model: str) -> str:
        """One sentence on where the specialist beats ``model`` (or that it does not within the sizes tried)."""
        if model not in self.crossover:
            raise InputError(f"no against model {model!r} in this learning curve; against: "
                             f"{', '.join(map(str, self.against.index)) or '(none)'}")
        accuracy = float(self.against.at[model, "accuracy"])
        size = self.crossover[model]
        if size is None:
            best = self.summary["mean"].max() if len(self.summary) else math.nan
            return (f"{model} ({accuracy:.3f}): not beaten within {self.sizes[-1] if self.sizes else 0} examples per "
                    f"class (best specialist mean {best:.3f})")
        return (f"{model} ({accuracy:.3f}): beaten from {size} examples per class on "
                f"(specialist mean {self.summary.at[size, 'mean']:.3f})")

    def __repr__(self) -> str:
        crossings = "; ".join(self.crossover_text(m) for m in self.crossover) or "no against models"
        return (f"<specnb.LearningCurve base={self.base} task={self.task} method={self.method} "
                f"sizes={','.join(map(str, self.sizes))} seeds={int(self.summary['seeds'].max()) if self.sizes else 0} "
                f"held_out={self.n_held_out} | {crossings}>")

    def _repr_html_(self) -> str:
        e = html.escape
        head = ("<tr><th>examples per class</th><th>training texts</th><th>seeds</th><th>mean accuracy "
                "[95 % Wilson]</th><th>min – max over seeds</th><th>macro-F1</th></tr>")
        rows = "".join(
            f"<tr><td>{int(size)}</td><td>{int(r['n_train'])}</td><td>{int(r['seeds'])}</td>"
            f"<td>{r['mean']:.3f} [{r['low']:.3f}, {r['high']:.3f}]</td><td>{r['min']:.3f} – {r['max']:.3f}</td>"
            f"<td>{r['macro_f1']:.3f}</td></tr>" for size, r in self.summary.iterrows())
        lines = "".join(
            f"<tr><th>{e(str(m))}</th><td>{r['accuracy']:.3f} [{r['low']:.3f}, {r['high']:.3f}]</td>"
            f"<td>{e(self.crossover_text(m))}</td></tr>" for m, r in self.against.iterrows())
        against = (f'<table class="specnb-table"><tr><th>against</th><th>accuracy [95 % Wilson]</th><th>crossover</th>'
                   f"</tr>{lines}</table>" if lines else "")
        title = (f"learning curve · {self.base} · {self.task} · method {self.method} · "
                 f"{self.n_held_out} held-out items")
        return (f'<div class="specnb-summary"><div><strong>{e(title)}</strong></div>'
                f'<table class="specnb-table">{head}{rows}</table>{against}'
                '<div class="specnb-muted">.figure(): the plot · .frame: every fit · crossover: the smallest size '
                "from which the mean over seeds stays above the model's accuracy</div></div>")


def _check_sizes(sizes):
    if sizes is None:
        return None
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise InputError(f"sizes= is a list of examples per class (positive ints, e.g. (4, 8, 16, 32)), got "
                         f"{sizes!r:.60}")
    sizes = list(sizes)
    bad = [s for s in sizes if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1]
    if not sizes or bad:
        raise InputError(f"sizes= is a non-empty list of positive ints (examples per class, e.g. (4, 8, 16, 32)); "
                         f"got {sizes!r:.80}" + (f", not valid: {bad[:5]!r:.60}" if bad else ""))
    if len(set(sizes)) != len(sizes):
        raise InputError(f"sizes= lists a size more than once: {sizes!r:.80}; give each size once")
    return sorted(int(s) for s in sizes)


def _check_against(against) -> list:
    from ..backends.model import Model

    if against is None:
        return []
    if isinstance(against, (str, os.PathLike, Model)):
        against = [against]
    if not isinstance(against, (list, tuple)):
        raise InputError(f"against= is a model or a list of models to beat (aliases, catalog names such as "
                         f"'minilm' or 'smollm2', folders, specnb.Model handles); got {type(against).__name__}")
    bad = [type(m).__name__ for m in against if not isinstance(m, (str, os.PathLike, Model))]
    if bad:
        raise InputError(f"against= holds {', '.join(bad)}; each entry is an alias, a catalog name, a folder or a "
                         "specnb.Model")
    return list(against)


def _per_class(prepared) -> dict[str, list[int]]:
    by_class: dict[str, list[int]] = {}
    for i in prepared.train:
        by_class.setdefault(prepared.labels[i], []).append(i)
    return by_class


def subsets(by_class: dict, sizes: list[int], seeds: int) -> dict:
    """(size, seed) -> sorted training indices: per seed, each class shuffled once (``default_rng([seed, 0x5EC])``)
    and its first ``size`` taken, so a seed's subsets are nested and the seeds draw different ones."""
    import numpy as np

    out = {}
    for s in range(seeds):
        rng = np.random.default_rng([s, 0x5EC])
        order = {y: [members[j] for j in rng.permutation(len(members))] for y, members in sorted(by_class.items())}
        for size in sizes:
            out[(size, s)] = sorted(i for members in order.values() for i in members[:size])
    return out


def _resolve_sizes(sizes, by_class) -> list[int]:
    smallest = min(by_class, key=lambda y: (len(by_class[y]), y))
    limit = len(by_class[smallest])
    if sizes is None:
        sizes = [2**k for k in range(1, limit.bit_length()) if 2**k <= limit]
        return sorted({*sizes, limit})
    over = [s for s in sizes if s > limit]
    if over:
        raise InputError(f"sizes {over} ask for more examples per class than the training split has: class "
                         f"{smallest!r} has {limit}; give sizes up to {limit} (or leave sizes= out: powers of two up "
                         "to it), or more data")
    return sizes


def _descriptions(label_space, space) -> dict | None:
    """``label_space=`` checked against the training label space: None, or a dict label -> description."""
    if label_space is None:
        return None
    if not isinstance(label_space, dict) or not all(isinstance(v, str) for v in label_space.values()):
        raise InputError("label_space= describes each label for the against models (a dict label -> description, "
                         "e.g. specnb.datasets.BBC_DESCRIPTIONS); got "
                         f"{type(label_space).__name__}")
    folded = {str(k).casefold(): v for k, v in label_space.items()}
    missing = [x for x in space if x.casefold() not in folded]
    extra = sorted(set(folded) - {x.casefold() for x in space})
    if missing or extra:
        raise InputError(f"label_space= must describe exactly the labels {list(space)}; "
                         + (f"missing {missing}" if missing else "") + ("; " if missing and extra else "")
                         + (f"not labels of the data {extra}" if extra else ""))
    return {x: folded[x.casefold()] for x in space}


def against_frame(comparison, models):
    """Each of ``models``' accuracy on ``comparison``'s items (95 % Wilson interval) and macro-F1, as
    `LearningCurve.against` holds them."""
    import pandas as pd

    from .._compare import metrics as scores
    from .train import _wilson

    table, rows = comparison.table, {}
    gold = list(table["label"])
    for m in models:
        answers = list(table[m])
        interval = _wilson(sum(a is not None and a == g for a, g in zip(answers, gold)), len(gold))
        rows[m] = {"accuracy": interval["value"], "low": interval["low"], "high": interval["high"],
                   "macro_f1": scores.macro_f1(gold, answers)}
    return pd.DataFrame.from_dict(rows, orient="index")


def _score_against(models, task, prepared, progress, descriptions=None) -> tuple:
    from .._compare import compare

    if not models:
        return None, None
    comparison = compare(task, prepared.frame("held_out"), models, store=False, progress=progress,
                         label_space=descriptions or list(prepared.label_space))
    return against_frame(comparison, comparison.models), comparison


def learning_curve(base, data, *, sizes=None, against=(), seeds: int = 3, task: str = "classify", text: str = "text",
                   label: str = "label", labels=None, eval=0.2, method: str = "head", batch_size: int | None = None,
                   max_length: int | None = None, c: float = 1.0, seed: int = 0, device: str = "auto",
                   label_space: dict | None = None, progress: bool | None = None) -> LearningCurve:
    """Specialists trained on growing numbers of labelled examples per class, against other models.

    Parameters
    ----------
    base : str or Model
        A transformers encoder, as for `specialize` (catalog name, folder, hub id or loaded `Model`).
    data : DataFrame or (texts, labels)
        Labelled texts, checked as `specialize` checks them.
    sizes : list of int, optional
        Examples per class for each specialist. A size above the smallest class's training count is refused.
        Default: powers of two from 2 up to that count, and the count itself.
    against : str, Model or list
        Models whose accuracy on the same held-out items the specialists are measured against (``'minilm'``
        zero-shot, ``'smollm2'``…), scored through `specnb.compare` (not stored).
    label_space : dict, optional
        A description of each label (label -> text, e.g. `specnb.datasets.BBC_DESCRIPTIONS`) for the ``against``
        models, as `compare` takes it: MiniLM zero-shot reads the descriptions, a generalist ranks the labels.
        Its keys must be the labels of ``data``.
    seeds : int
        How many random subsets per size (seeds ``0 .. seeds - 1``).
    task, text, label, labels : optional
        As for `specialize`.
    eval : float or DataFrame
        The held-out share (stratified, seeded by ``seed``) or a held-out DataFrame; a curve needs held-out
        items, so None is refused.
    method : str
        ``'head'``: features computed once, a logistic-regression head (L2 strength ``1 / c``) fitted per subset.
    batch_size, max_length, device : optional
        As for `specialize`.
    seed : int
        Seeds the held-out split.
    progress : bool, optional
        Progress bars (features, fits, the ``against`` models); None: as ``specnb.config.progress``.

    Returns
    -------
    LearningCurve
        ``.frame``, ``.summary``, ``.against``, ``.crossover`` and ``.figure()``.
    """
    from ..settings import config

    if not isinstance(task, str) or task not in TRAINED_TASKS:
        hint = "; ner specialists are trained with specnb.specialize(task='ner')" if task == "ner" else ""
        raise TaskError(f"learning_curve fits label tasks: task= must be one of {', '.join(TRAINED_TASKS)}, got "
                        f"{task!r:.60}{hint}")
    if method not in CURVE_METHODS:
        raise InputError(f"method={method!r:.40} is not a learning-curve method; valid: "
                         f"{', '.join(map(repr, CURVE_METHODS))}")
    sizes = _check_sizes(sizes)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise InputError(f"seeds= is how many random subsets per size (an int >= 1, default 3), got {seeds!r:.40}")
    against = _check_against(against)
    for arg, value in (("batch_size", batch_size), ("max_length", max_length)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"{arg}= must be a positive int or None, got {value!r:.40}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed= must be an int, got {seed!r:.40}")
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
        raise InputError(f"c= is the inverse L2 strength (a number > 0, default 1.0), got {c!r:.40}")
    if eval is None or (isinstance(eval, (int, float)) and not isinstance(eval, bool) and eval == 0):
        raise InputError("a learning curve scores every specialist on held-out items: eval= is the held-out share "
                         "(a float between 0 and 1, e.g. 0.2) or a held-out DataFrame, not None or 0")
    if progress is not None and not isinstance(progress, bool):
        raise InputError(f"progress= is True, False or None, got {type(progress).__name__}")
    prepared = prepare(data, task=task, text=text, label=label, labels=labels, eval=eval, seed=seed)
    if not prepared.held_out:
        raise InputError("eval= gave no held-out items; a learning curve scores every specialist on held-out items")
    sizes = _resolve_sizes(sizes, _per_class(prepared))
    descriptions = _descriptions(label_space, prepared.label_space)
    from .train import _encoder

    model, backend = _encoder(base, device)
    against_frame, comparison = _score_against(against, task, prepared, progress, descriptions)
    progress = config.progress if progress is None else progress
    frame, settings = _fit_heads(model, backend, prepared, sizes=sizes, seeds=seeds, batch_size=batch_size,
                                 max_length=max_length, c=c, progress=progress)
    settings.update({"sizes": sizes, "seeds": seeds, "split_seed": seed})
    trim_heap()  # the features' batches and the fits freed ~100 MB that glibc would otherwise keep
    return LearningCurve(frame, against_frame, n_held_out=len(prepared.held_out), base=model.alias, task=task,
                         method=method, label_space=prepared.label_space, split=prepared.split,
                         held_out=prepared.frame("held_out"), comparison=comparison, settings=settings)


def _fit_heads(model, backend, prepared, *, sizes, seeds, batch_size, max_length, c, progress):
    """Features once, then one head per (size, seed): the `frame` rows and the settings."""
    import pandas as pd

    from .._compare import metrics as scores
    from ..backends.device import device_kind
    from ..backends.weights import share_frozen_base
    from ..progress import bar
    from ..settings import config
    from .head import build_classifier, fit_linear, head_features
    from .train import _wilson

    space = prepared.label_space
    batch_size = batch_size or config.batch_size
    classifier = build_classifier(backend.source, space, device=model.device, allow_pickle=backend.allow_pickle)
    share_frozen_base(classifier, backend)  # features only: the loaded base's encoder, not a second copy
    max_length = max_length or backend._max_length()
    try:
        features, stats = head_features(classifier, backend.tokenizer, prepared.texts, n_labels=len(space),
                                        device=model.device, batch_size=batch_size,
                                        token_budget=config.tokens_per_batch(device_kind(model.device)),
                                        max_length=max_length, progress=progress)
    finally:
        del classifier
    index = {x: i for i, x in enumerate(space)}
    targets = [index[y] for y in prepared.labels]
    held = prepared.held_out
    gold = [prepared.labels[i] for i in held]
    by_class = _per_class(prepared)
    rows = []
    fits = bar(total=len(sizes) * seeds, desc="learning curve", unit="fit", delay=config.progress_delay, leave=True,
              disable=not progress)
    try:
        for (size, s), subset in subsets(by_class, sizes, seeds).items():
            weight, bias, _ = fit_linear(features[subset], [targets[i] for i in subset], len(space), c=c)
            predicted = (features[held] @ weight.T + bias).argmax(-1).tolist()
            answers = [space[p] for p in predicted]
            interval = _wilson(sum(a == g for a, g in zip(answers, gold)), len(gold))
            rows.append({"size": size, "seed": s, "n_train": len(subset), "accuracy": interval["value"],
                         "low": interval["low"], "high": interval["high"],
                         "macro_f1": scores.macro_f1(gold, answers)})
            fits.update(1)
    finally:
        fits.close()
    frame = pd.DataFrame(rows, columns=["size", "seed", "n_train", "accuracy", "low", "high", "macro_f1"])
    frame = frame.sort_values(["size", "seed"], kind="stable").reset_index(drop=True)
    settings = {"method": "head", "c": c, "max_length": max_length, "batch_size": batch_size,
                "feature_seconds": stats.seconds}
    return frame, settings
