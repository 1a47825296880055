"""`specialize`: train a specialist from labelled texts on any transformers encoder specnb loads, save it as a
plain transformers folder, and put it in the registry, ready to compare."""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

from ..backends.device import trim_heap
from ..backends.weights import share_frozen_base
from ..errors import InputError, TaskError
from ..settings import config
from .data import SPECIALIZE_TASKS, prepare, text_digest
from .finetune import DEFAULTS
from .folder import check_out, model_card, write_folder
from .monitor import monitor_for

__all__ = ["specialize", "METHODS", "DTYPES"]

#: Training methods (``method=``).
METHODS = ("head", "finetune")

#: ``dtype=`` choices: ``auto`` is bf16 autocast on a CUDA GPU that has it, float32 elsewhere.
DTYPES = ("auto", "float32", "bfloat16")


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


def _alias(alias, base_alias: str, task: str, overwrite: bool) -> str:
    """The trained model's alias. One already loaded is refused, or with ``overwrite`` replaced when the new model
    is ready (a re-run cell): until then the loaded one stays, so a failed run loses nothing."""
    from ..backends.model_registry import registry

    alias = alias or f"{base_alias}-{task}"
    if not isinstance(alias, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", alias):
        raise InputError(f"alias={alias!r} is not valid: letters, digits, '_', '.' and '-' only")
    if alias in registry and not overwrite:
        raise InputError(f"alias {alias!r} is already loaded; pass overwrite=True (--overwrite) to replace it and its "
                         f"folder, unload it first (specnb.unload({alias!r})) or pass another alias=")
    return alias


def _base_id(source: str) -> str:
    """What the card names as the base: a catalog name's original model id (its hub id), else the source."""
    from .._catalog import ENTRIES

    entry = ENTRIES.get(str(source))
    return entry.source if entry is not None else str(source)


def _positive(arg: str, value, kind=int) -> None:
    if value is None:
        return
    ok = (not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int) and value > 0
          and math.isfinite(value))
    if not ok:
        what = "a number > 0" if kind is float else "a positive int"
        raise InputError(f"{arg}= must be {what} or None, got {value!r:.40}")


def _check(*, task, method, epochs, learning_rate, batch_size, max_length, seed, patience, c, dtype, min_confidence):
    if not isinstance(task, str) or task not in SPECIALIZE_TASKS:
        raise TaskError(f"task= must be one of {', '.join(SPECIALIZE_TASKS)}, got {task!r:.60}")
    if method not in METHODS:
        raise InputError(f"method={method!r:.40} is not a training method; valid: {', '.join(map(repr, METHODS))}")
    for arg, value in (("epochs", epochs), ("batch_size", batch_size), ("max_length", max_length)):
        _positive(arg, value)
    _positive("learning_rate", learning_rate, float)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed= must be an int, got {seed!r:.40}")
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise InputError(f"patience= is how many epochs without a better held-out accuracy end training (an int >= 1),"
                         f" got {patience!r:.40}")
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
        raise InputError(f"c= is the inverse L2 strength (a number > 0, default 1.0), got {c!r:.40}")
    if dtype not in DTYPES:
        raise InputError(f"dtype={dtype!r:.40} is not valid; valid: {', '.join(map(repr, DTYPES))}")
    if min_confidence is not None and (isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float))
                                       or not 0 <= min_confidence <= 1):
        raise InputError(f"min_confidence= is a score between 0 and 1 (or None), got {min_confidence!r:.40}")
    if method == "head":
        for arg, value in (("epochs", epochs), ("learning_rate", learning_rate)):
            if value is not None:
                raise InputError(f"{arg}= is a setting of method='finetune'; method='head' fits its head in one go "
                                 "(its setting is c=)")


def specialize(base, data, *, task: str = "classify", text: str = "text", label: str = "label", labels=None,
               method: str = "head", eval=0.2, epochs: int | None = None, learning_rate: float | None = None,
               batch_size: int | None = None, max_length: int | None = None, seed: int = 0, patience: int = 2,
               c: float = 1.0, teacher=None, min_confidence: float | None = None, device: str = "auto",
               dtype: str = "auto", out=None, alias: str | None = None, overwrite: bool = False, progress=None,
               store: bool = True):
    """Train a specialist on labelled texts (or on a teacher's answers) and load it.

    Parameters
    ----------
    base : str or Model
        A transformers encoder: a catalog name (``'minilm'``), a ``save_pretrained`` folder, a hub id or a
        loaded `Model`. fastText, spaCy, lexicons, callables and causal LMs are refused (`TaskError`).
    data : DataFrame, (texts, labels) or Comparison
        Labelled texts: a DataFrame with the ``text`` and ``label`` columns, or a pair of lists; with a
        ``teacher``, texts alone (a DataFrame with the ``text`` column, a list) or a `Comparison`.
        ner: each label is the text's entities: a `specnb.Entities`, a list of `Span`, of ``(start, end,
        type)`` tuples (character offsets, end exclusive) or of dicts with those keys; ``[]`` is a text
        without entities, None / NaN a missing label (refused). Out-of-range, empty or overlapping spans
        and types that are not names (letters and ``_``) are refused naming the row.
    task : str
        ``classify``, ``sentiment``, ``langid`` (a ``*ForSequenceClassification`` model) or ``ner`` (a
        ``*ForTokenClassification`` model, tags ``O``, ``B-T``, ``I-T`` per entity type T; a token
        overlapping an entity is B at the entity's first token and I after, special tokens count for
        nothing; held-out metrics are entity-level precision, recall and F1 on exact spans, as
        `specnb.compare` scores ner).
    labels : list, optional
        The label space (ner: the entity types, in the tag space's order); default the distinct labels of
        ``data`` (sorted). A label outside it is an error.
    method : str
        ``'head'``: the encoder stays frozen; a logistic-regression head (L2 strength ``1 / c``) is fitted on
        the architecture's own pooled features, computed once through the engine (ner: on the last hidden
        state of every training token; memory grows with the tokens, so prefer finetune on large data). ``'finetune'``: the whole
        encoder is trained with transformers' ``Trainer`` (AdamW, warm-up and linear decay, evaluation each
        epoch, early stopping after ``patience`` epochs, the best checkpoint restored, length-grouped
        batches, bf16 autocast on CUDA; ner keeps the best held-out entity F1).
    eval : float, DataFrame or None
        The held-out share (stratified, seeded by ``seed``; ner: a seeded shuffle), a held-out DataFrame of
        its own (it must not share a text with ``data``), or None.
    epochs, learning_rate, patience : optional
        ``finetune`` settings (defaults 3 epochs, 5e-5, 2).
    batch_size, max_length : int, optional
        Batches (default ``specnb.config.batch_size`` for head features, 16 for finetune) and the token cut
        (default: the model's).
    teacher, min_confidence : optional
        Distillation: a model whose answers are the training labels (kept in the run store, so a second
        call does not ask again); answers scored below ``min_confidence`` are left out. Not for ner.
    device, dtype : str
        Where the base runs (a loaded base keeps its own); ``dtype`` of finetune's autocast (``auto``,
        ``float32``, ``bfloat16``).
    out : path, optional
        The folder to write; default ``$SPECNB_HOME/specialists/ALIAS``. An existing one is refused unless
        ``overwrite=True``.
    alias : str, optional
        The registry alias; default ``BASE-TASK``.
    progress : None, bool or TrainingMonitor
        Who sees the run as it goes (see `specnb.TrainingMonitor`); a monitor's ``stop()`` ends it after the
        current step, keeping the best checkpoint.
    store : bool
        Keep the run (settings, split, per-step loss, per-epoch metrics) in the run store, kind ``train``.

    Returns
    -------
    Model
        Loaded from ``out``; ``model.training`` holds the metrics, split and settings, and
        ``model.eval_data`` the held-out DataFrame (``text``, ``label``; ner: labels as `Entities`) to
        compare on: ``specnb.compare(task, model.eval_data, [model])``.
    """
    _check(task=task, method=method, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
           max_length=max_length, seed=seed, patience=patience, c=c, dtype=dtype, min_confidence=min_confidence)
    if not isinstance(store, bool):
        raise InputError(f"store= is True or False, got {store!r:.40}")
    if task == "ner" and (teacher is not None or min_confidence is not None):
        raise InputError("teacher= / min_confidence= (distillation) are not available for task='ner' yet; give the "
                         "entities of each text as labels (a DataFrame with text and label columns)")
    monitor = monitor_for(progress)
    if task == "ner":
        from .ner import prepare_ner

        prepared = prepare_ner(data, text=text, label=label, labels=labels, eval=eval, seed=seed)
    else:
        prepared = _prepare(data, task=task, text=text, label=label, labels=labels, eval=eval, seed=seed,
                            teacher=teacher, min_confidence=min_confidence)
    model, backend = _encoder(base, device)
    if task == "ner":
        from .head import check_tokenizer

        check_tokenizer(backend.tokenizer, model.alias)
    alias = _alias(alias, model.alias, task, overwrite)
    out = Path(out).expanduser() if out is not None else config.cache_dir / "specialists" / alias
    check_out(out, overwrite)
    settings = {"method": method, "max_length": max_length or backend._max_length(), "seed": seed}
    if method == "head":
        settings.update(c=c, batch_size=batch_size or config.batch_size,
                        optimizer="L-BFGS (float64, standardised features folded into the head)")
    else:
        settings.update(epochs=epochs or DEFAULTS["epochs"], learning_rate=learning_rate or DEFAULTS["learning_rate"],
                        batch_size=batch_size or DEFAULTS["batch_size"], patience=patience, dtype=dtype,
                        optimizer="AdamW (weight decay 0.01), linear warm-up 10 % and decay",
                        batches="grouped by length, padded to the longest",
                        selection="best held-out entity F1 (ties: token accuracy)" if task == "ner" else "best held-out accuracy")
    return _run(model, backend, prepared, task=task, alias=alias, out=out, overwrite=overwrite, settings=settings,
                monitor=_recorded(monitor, prepared, store), progress=progress)


def _prepare(data, *, teacher, min_confidence, **kwargs):
    if teacher is None and min_confidence is None:
        return prepare(data, **kwargs)
    return prepare(data, teacher=teacher, min_confidence=min_confidence, **kwargs)


def _recorded(monitor, prepared, store: bool):
    """The monitor, writing to the run store too when ``store``."""
    if not store:
        return monitor
    try:
        from .history import RecordingMonitor
    except ImportError:  # pragma: no cover - the store recorder lands separately
        return monitor
    return RecordingMonitor.wrap(monitor, prepared)


def _run(model, backend, prepared, *, task, alias, out, overwrite, settings, monitor, progress):
    import torch

    from ..backends.device import device_kind
    from ..backends.model_registry import registry

    started = time.perf_counter()
    device = model.device
    space, held = prepared.label_space, prepared.held_out
    bar = None if progress is None or progress is True else False  # engine bars only where the monitor is a bar
    budget = config.tokens_per_batch(device_kind(model.device))
    epochs = settings.get("epochs")
    steps_per_epoch = math.ceil(len(prepared.train) / settings["batch_size"])
    plan = {"alias": alias, "base": model.source, "method": settings["method"], "task": task, "epochs": epochs,
            "total_steps": steps_per_epoch * epochs if epochs else None, "train": len(prepared.train),
            "held_out": len(held), "batch_size": settings["batch_size"], "metric": "f1" if task == "ner" else "accuracy",
            "label_space": list(space), "settings": settings, "data_digest": prepared.digest}
    if task == "ner":
        plan["tags"] = list(prepared.tags)
    monitor.on_start(plan)
    try:
        torch.manual_seed(settings["seed"])
        if task == "ner":
            from .ner import fit_ner

            classifier, details, metrics = fit_ner(model, backend, prepared, settings=settings, monitor=monitor,
                                                   out=out, bar=bar, budget=budget)
        else:
            classifier, details, metrics = _fit_labels(model, backend, prepared, settings=settings, monitor=monitor,
                                                       out=out, bar=bar, budget=budget)
        seconds = time.perf_counter() - started
        data = {"train": len(prepared.train), "held_out": len(held), "digest": prepared.digest,
                "split": prepared.split}
        if getattr(prepared, "teacher", None):
            data["teacher"] = prepared.teacher
        tags = {"tags": list(prepared.tags)} if task == "ner" else {}
        training = {
            "base": model.source, "method": settings["method"], "task": task, "label_space": list(space), **tags,
            "data": data, "metrics": metrics, "settings": settings, "seconds": seconds, **details,
            "held_out_digests": [text_digest(prepared.texts[i]) for i in held],
            "train_digests": [text_digest(prepared.texts[i]) for i in prepared.train], "specnb": _version(),
        }
        card = model_card(alias=alias, base=_base_id(model.source), method=settings["method"], task=task, label_space=space,
                          data=data, metrics=metrics, settings=settings, seconds=seconds, version=_version(),
                          tags=tags.get("tags"))
        write_folder(out, classifier.cpu(), backend.tokenizer, card=card, training=training, overwrite=overwrite,
                     max_length=settings["max_length"])
        del classifier
        if alias in registry:  # overwrite=True: the model this run replaces (its folder is replaced already)
            registry.unload(alias)
        trained = registry.load(str(out), alias=alias, task=task, device=device)
        if trained.device == "cpu":
            # what training freed (features, the optimizer's state, activations) goes back to the system: glibc
            # kept 380 MB of a MiniLM fine-tune resident otherwise
            trim_heap()
    except KeyboardInterrupt:
        monitor.on_end("interrupted", {"seconds": time.perf_counter() - started})
        raise
    except BaseException as exc:
        monitor.on_end("failed", {"seconds": time.perf_counter() - started, "error": f"{type(exc).__name__}: {exc}"})
        raise
    trained.training = {**training, "out": str(out), "run_id": getattr(monitor, "run_id", None)}
    trained.eval_data = prepared.frame("held_out")
    status = "stopped" if details.get("stopped") else "finished"
    monitor.on_end(status, {"metrics": metrics, "seconds": seconds, "out": str(out), "alias": alias,
                            **{k: v for k, v in details.items() if k != "history"}})
    return trained


def _fit_labels(model, backend, prepared, *, settings, monitor, out, bar, budget):
    """A sequence classifier trained on a label task and scored on the held-out items: ``(classifier, details,
    metrics)``."""
    from .head import build_classifier, fit_linear, head_features, logits, set_head

    seed, max_length, space, held = settings["seed"], settings["max_length"], prepared.label_space, prepared.held_out
    index = {x: i for i, x in enumerate(space)}
    targets = [index[y] for y in prepared.labels]
    classifier = build_classifier(backend.source, space, device=model.device, allow_pickle=backend.allow_pickle)
    if settings["method"] == "head":
        share_frozen_base(classifier, backend)  # the encoder stays frozen: the loaded base's, not a second copy
        features, stats = head_features(classifier, backend.tokenizer, prepared.texts, n_labels=len(space),
                                        device=model.device, batch_size=settings["batch_size"],
                                        token_budget=budget, max_length=max_length, progress=bar)
        fit_started = time.perf_counter()
        weight, bias, losses = fit_linear(features[prepared.train], [targets[i] for i in prepared.train],
                                          len(space), c=settings["c"])
        set_head(classifier, weight, bias, len(space))
        predicted = (features[held] @ weight.T + bias).argmax(-1).tolist() if held else []
        details = {"feature_seconds": stats.seconds, "fit_seconds": time.perf_counter() - fit_started,
                   "items_per_s": len(prepared.texts) / stats.seconds if stats.seconds else None,
                   "history": {"loss": losses}}
    else:
        from .finetune import finetune

        work = out.parent / f".{out.name}.checkpoints-{os.getpid()}"
        details = finetune(classifier, backend.tokenizer, prepared.texts, targets, train=prepared.train,
                           held=held, n_labels=len(space), epochs=settings["epochs"],
                           learning_rate=settings["learning_rate"], batch_size=settings["batch_size"],
                           max_length=max_length, seed=seed, patience=settings["patience"], device=model.device,
                           dtype=settings["dtype"], monitor=monitor, work=work)
        details["history"] = {"steps": list(monitor.steps), "evals": list(monitor.evals),
                              "events": list(monitor.events)}
        predicted = []
        if held:
            scores, _ = logits(classifier, backend.tokenizer, [prepared.texts[i] for i in held],
                               device=model.device, batch_size=settings["batch_size"] * 2, token_budget=budget,
                               max_length=max_length, progress=bar)
            predicted = scores.argmax(-1).tolist()
    metrics = _metrics([targets[i] for i in held], predicted, len(space), seed)
    gold = getattr(prepared, "gold", None)
    if gold is not None and held:  # distilled: the metrics above are agreement with the teacher
        metrics = {"agreement": metrics.get("accuracy"), "agreement_macro_f1": metrics.get("macro_f1"),
                   **_gold_metrics(gold, held, predicted, space, seed)}
    return classifier, details, metrics


def _gold_metrics(gold, held, predicted, space, seed) -> dict:
    """Accuracy on the gold labels of the held-out items that have one (a distilled model's real score)."""
    index = {x: i for i, x in enumerate(space)}
    pairs = [(index[gold[i]], p) for i, p in zip(held, predicted) if gold[i] is not None and gold[i] in index]
    if not pairs:
        return {}
    return _metrics([g for g, _ in pairs], [p for _, p in pairs], len(space), seed)

