"""`specialize`: train a specialist from labelled texts on any transformers encoder specnb loads, save it as a
plain transformers folder, and put it in the registry, ready to compare."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

from ..errors import InputError, TaskError
from ..settings import config
from .data import TRAINED_TASKS, prepare, text_digest
from .folder import check_out, model_card, write_folder

__all__ = ["specialize", "METHODS"]

#: Training methods (``method=``).
METHODS = ("head",)


def _encoder(base, device: str):
    """The loaded base model and its transformers backend; `TaskError` when it is not an encoder."""
    from ..backends.hf import TransformersBackend
    from ..backends.model import Model
    from ..backends.model_registry import registry

    if isinstance(base, Model):
        model = registry.load(base)
    elif isinstance(base, (str, Path)):
        model = registry.by_name(str(base), device=device)
    else:
        raise InputError(f"base= is a model to build on: a catalog name ('minilm'), a folder, a hub id or a loaded "
                         f"specnb.Model; got {type(base).__name__}")
    backend = model._backend
    if not isinstance(backend, TransformersBackend) or backend.causal or model.role != "specialist":
        raise TaskError(f"base {model.alias!r} is a {model.backend} {model.role}; specialize trains on a transformers "
                        "encoder (BERT, RoBERTa, DistilBERT, MiniLM, XLM-R, … : a catalog name such as 'minilm', a "
                        "save_pretrained folder or a hub id), not on fastText, spaCy, lexicons, callables or causal LMs")
    return model, backend


def _wilson(hits: int, n: int) -> dict:
    if n == 0:
        return {"value": math.nan, "low": math.nan, "high": math.nan}
    z, p = 1.959964, hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"value": p, "low": max(0.0, centre - half), "high": min(1.0, centre + half)}


def _macro_f1(gold: list[int], pred: list[int], k: int) -> float:
    scores = []
    for c in range(k):
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else math.nan


def _metrics(gold: list[int], pred: list[int], k: int, seed: int) -> dict:
    """Held-out accuracy (Wilson interval) and macro-F1 (percentile bootstrap, 1,000 resamples, seeded)."""
    import numpy as np

    if not gold:
        return {}
    accuracy = _wilson(sum(g == p for g, p in zip(gold, pred)), len(gold))
    rng = np.random.default_rng(seed)
    g, p = np.asarray(gold), np.asarray(pred)
    draws = [_macro_f1(g[i].tolist(), p[i].tolist(), k) for i in rng.integers(0, len(g), (1000, len(g)))]
    low, high = np.nanpercentile(draws, [2.5, 97.5])
    return {"accuracy": accuracy, "macro_f1": {"value": _macro_f1(gold, pred, k), "low": float(low), "high": float(high)}}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("specnb")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
        return "unknown"


def _alias(alias, base_alias: str, task: str) -> str:
    from ..backends.model_registry import registry

    alias = alias or f"{base_alias}-{task}"
    if not isinstance(alias, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", alias):
        raise InputError(f"alias={alias!r} is not valid: letters, digits, '_', '.' and '-' only")
    if alias in registry:
        raise InputError(f"alias {alias!r} is already loaded; unload it first (specnb.unload({alias!r})) or pass "
                         "another alias=")
    return alias


def specialize(base, data, *, task: str = "classify", text: str = "text", label: str = "label", labels=None,
               method: str = "head", eval=0.2, batch_size: int | None = None, max_length: int | None = None,
               seed: int = 0, c: float = 1.0, device: str = "auto", out=None, alias: str | None = None,
               overwrite: bool = False, progress: bool | None = None):
    """Train a specialist on labelled texts and load it.

    Parameters
    ----------
    base : str or Model
        A transformers encoder: a catalog name (``'minilm'``), a ``save_pretrained`` folder, a hub id or a
        loaded `Model`. fastText, spaCy, lexicons, callables and causal LMs are refused (`TaskError`).
    data : DataFrame or (texts, labels)
        Labelled texts: a DataFrame with the ``text`` and ``label`` columns, or a pair of lists.
    task : str
        ``classify``, ``sentiment`` or ``langid``.
    labels : list, optional
        The label space; default the distinct labels of ``data``. A label outside it is an error.
    method : str
        ``'head'``: the encoder stays frozen; a logistic-regression head (L2 strength ``1 / c``) is fitted on
        the architecture's own pooled features, computed once through the engine.
    eval : float, DataFrame or None
        The held-out share (stratified, seeded by ``seed``), a held-out DataFrame of its own (it must not
        share a text with ``data``), or None.
    batch_size, max_length : int, optional
        Feature batches (default ``specnb.config.batch_size``) and the token cut (default: the model's).
    device : str
        Where the base runs (a loaded base keeps its own).
    out : path, optional
        The folder to write; default ``$SPECNB_HOME/specialists/ALIAS``. An existing one is refused unless
        ``overwrite=True``.
    alias : str, optional
        The registry alias; default ``BASE-TASK``.

    Returns
    -------
    Model
        Loaded from ``out``; ``model.training`` holds the metrics, split and settings, and
        ``model.eval_data`` the held-out DataFrame (``text``, ``label``) to compare on.
    """
    from ..backends.model_registry import registry

    if not isinstance(task, str) or task not in TRAINED_TASKS:
        raise TaskError(f"task= must be one of {', '.join(TRAINED_TASKS)}, got {task!r:.60}")
    if method not in METHODS:
        raise InputError(f"method={method!r:.40} is not a training method; valid: {', '.join(map(repr, METHODS))}")
    for arg, value in (("batch_size", batch_size), ("max_length", max_length)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"{arg}= must be a positive int or None, got {value!r:.40}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed= must be an int, got {seed!r:.40}")
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
        raise InputError(f"c= is the inverse L2 strength (a number > 0, default 1.0), got {c!r:.40}")
    prepared = prepare(data, task=task, text=text, label=label, labels=labels, eval=eval, seed=seed)
    model, backend = _encoder(base, device)
    alias = _alias(alias, model.alias, task)
    out = Path(out).expanduser() if out is not None else config.cache_dir / "specialists" / alias
    check_out(out, overwrite)
    return _train_head(model, backend, prepared, task=task, alias=alias, out=out, overwrite=overwrite,
                       batch_size=batch_size or config.batch_size, max_length=max_length, seed=seed, c=c,
                       progress=progress, registry=registry)


def _train_head(model, backend, prepared, *, task, alias, out, overwrite, batch_size, max_length, seed, c, progress,
                registry):
    import torch

    from ..backends.device import device_kind
    from .head import build_classifier, fit_linear, head_features, set_head

    started = time.perf_counter()
    torch.manual_seed(seed)
    space = prepared.label_space
    classifier = build_classifier(backend.source, space, device=model.device, allow_pickle=backend.allow_pickle)
    max_length = max_length or backend._max_length()
    features, stats = head_features(classifier, backend.tokenizer, prepared.texts, n_labels=len(space),
                                    device=model.device, batch_size=batch_size,
                                    token_budget=config.tokens_per_batch(device_kind(model.device)),
                                    max_length=max_length, progress=progress)
    index = {x: i for i, x in enumerate(space)}
    targets = [index[y] for y in prepared.labels]
    fit_started = time.perf_counter()
    weight, bias, losses = fit_linear(features[prepared.train], [targets[i] for i in prepared.train], len(space), c=c)
    fit_seconds = time.perf_counter() - fit_started
    set_head(classifier, weight, bias, len(space))
    held = prepared.held_out
    predicted = (features[held] @ weight.T + bias).argmax(-1).tolist() if held else []
    metrics = _metrics([targets[i] for i in held], predicted, len(space), seed)
    seconds = time.perf_counter() - started
    settings = {"method": "head", "c": c, "max_length": max_length, "batch_size": batch_size, "seed": seed,
                "optimizer": "L-BFGS (float64, standardised features folded into the head)"}
    data = {"train": len(prepared.train), "held_out": len(held), "digest": prepared.digest, "split": prepared.split}
    training = {
        "base": model.source, "method": "head", "task": task, "label_space": list(space), "data": data,
        "metrics": metrics, "settings": settings, "seconds": seconds, "feature_seconds": stats.seconds,
        "fit_seconds": fit_seconds, "items_per_s": len(prepared.texts) / stats.seconds if stats.seconds else None,
        "history": {"loss": losses}, "held_out_digests": [text_digest(prepared.texts[i]) for i in held],
        "train_digests": [text_digest(prepared.texts[i]) for i in prepared.train], "specnb": _version(),
    }
    card = model_card(alias=alias, base=model.source, method="head", task=task, label_space=space, data=data,
                      metrics=metrics, settings=settings, seconds=seconds, version=_version())
    write_folder(out, classifier.cpu(), backend.tokenizer, card=card, training=training, overwrite=overwrite,
                 max_length=max_length)
    del classifier
    trained = registry.load(str(out), alias=alias, task=task, device=model.device)
    trained.training = {**training, "out": str(out)}
    trained.eval_data = prepared.frame("held_out")
    return trained
