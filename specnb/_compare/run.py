"""`compare`: the same inputs through several models, written to the run store as it goes."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping

from ..backends.device import trim_heap
from ..engine import ENDPOINT_COUNTS
from ..errors import ConfigError, InputError, InputWarning, ModelUnloadedError, StoreError, TaskError
from ..settings import config
from ..store import default_store, dumps, encode_input
from ..tasks import check_task, get_task
from ..tasks.base import is_missing, text_digest
from ..tasks.ner import entity_type
from .arguments import check_options, gold_labels, split_inputs
from .comparison import Comparison
from .training_run import TrainingRun

__all__ = ["compare", "runs", "get_run", "delete_run", "COMPARED_TASKS"]

#: Tasks a comparison scores (embed and generate have no label to compare).
COMPARED_TASKS = ("classify", "sentiment", "langid", "ner")


def _spans(value, i: int, types: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """Gold entities of one input as (start, end, type), types in the run's spelling."""
    from ..tasks import Entities, Span

    if is_missing(value):
        return []
    if isinstance(value, Entities):
        value = value.spans
    out = []
    for span in value:
        if isinstance(span, Span):
            start, end, kind = span.start, span.end, span.label
        elif isinstance(span, Mapping):
            start, end, kind = span.get("start"), span.get("end"), span.get("label")
        elif isinstance(span, (tuple, list)) and len(span) >= 3:
            start, end, kind = span[:3]
        else:
            raise InputError(f"gold entity {span!r:.80} of input {i} is not (start, end, type), a dict with those "
                             "keys or a specnb.Span")
        if not isinstance(kind, str) or not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end:
            raise InputError(f"gold entity {span!r:.80} of input {i} needs int offsets 0 <= start < end and a str type")
        mapped = entity_type(kind, types)
        if mapped is None:
            raise InputError(f"gold entity type {kind!r} of input {i} is not in the entity types {list(types)}; "
                             "pass label_space= with every type your labels use")
        out.append((start, end, mapped))
    return sorted(set(out))


def _label_space(spec, task: str, label_space, gold):
    """(label space, descriptions) of the run, and the gold labels in its spelling."""
    descriptions = {}
    if label_space is not None:
        space = spec.label_space(label_space)
        if isinstance(label_space, Mapping):
            descriptions = {k: str(v) for k, v in zip(space, label_space.values())}
    elif task == "classify":
        if gold is None:
            raise TaskError("classify needs a label space: pass label_space=[...] (or gold labels=, whose distinct "
                            "values become the label space)")
        space = spec.label_space(sorted({str(y) for y in gold}))
    elif task == "ner":
        space = spec.label_space(None)
    else:
        default = spec.label_space(None)
        extra = [] if gold is None else sorted({spec.canonical(str(y)) or str(y) for y in gold} - set(default))
        space = spec.label_space([*default, *extra])
    if gold is None:
        return space, descriptions, None
    if task == "ner":
        return space, descriptions, [_spans(y, i, space) for i, y in enumerate(gold)]
    folded = {x.casefold(): x for x in space}
    mapped = [folded.get((spec.canonical(str(y)) or str(y)).casefold()) for y in gold]
    outside = sorted({str(y) for y, m in zip(gold, mapped) if m is None})
    if outside:
        raise InputError(f"gold labels {outside[:10]} are not in the label space {list(space)}; add them to "
                         "label_space= or fix the labels")
    return space, descriptions, mapped


def _model_name(model) -> str:
    from ..backends.model import Model

    return model.alias if isinstance(model, Model) else str(model)


def _plan_models(models, task: str) -> list:
    """Check every model can serve ``task`` before anything runs; loaded handles, or sources to load."""
    from ..backends.model import Model
    from ..backends.model_registry import registry
    from ..backends.resolve import resolve

    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    elif isinstance(models, Model) or callable(models):
        models = [models]
    elif not isinstance(models, (list, tuple)) and type(models).__name__ != "Series":
        raise InputError(f"models= is a list of models (aliases, specnb.Model handles, sources or callables) or one "
                         f"of them, e.g. models=['langid', 'smollm2']; got {type(models).__name__} {models!r:.60}")
    models = list(models)
    if not models:
        raise InputError("compare needs at least one model: models=['langid', 'smollm2'] (aliases, handles or sources)")
    planned, names = [], []
    for model in models:
        if isinstance(model, Model):
            if not model.loaded:
                raise ModelUnloadedError(f"model {model.alias!r} was unloaded; load it again with specnb.load({model.source!r})")
            tasks, entry = model.tasks, model
        elif isinstance(model, str) and model in registry:
            entry = registry.get(model)
            tasks = entry.tasks
        elif isinstance(model, str):
            plan = resolve(model, task=None)
            tasks, entry = plan.tasks, model
        elif callable(model):
            from ..backends.model_registry import load

            entry = load(model, task=task)  # a function is cheap to "load"; it needs the task to know its outputs
            tasks, model = entry.tasks, entry
        else:
            raise InputError(f"model {model!r:.60} is not an alias, a specnb.Model, a source string or a callable")
        if task not in tasks:
            raise TaskError(f"model {_model_name(model)!r} cannot serve {task!r}; it serves {', '.join(tasks)}")
        name = _model_name(model)
        if name in names:
            raise InputError(f"model {name!r} is listed twice; list each model once")
        names.append(name)
        planned.append(entry)
    return planned


def _trained_on(model) -> set:
    """Digests of the texts ``model`` was trained on: what `specialize` recorded on it, or in the
    ``training.json`` of the folder it was loaded from; empty when unknown."""
    from pathlib import Path

    training = getattr(model, "training", None)
    if training is None:
        path = Path(str(model.source)) / "training.json"
        try:
            training = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except (OSError, ValueError):
            training = None
    digests = training.get("train_digests") if isinstance(training, dict) else None
    return set(digests) if isinstance(digests, list) else set()


def _warn_leaks(model, items) -> int:
    """Warn (`InputWarning`, naming how many) when inputs were in the model's training data; their count."""
    import warnings

    trained = _trained_on(model)
    if not trained:
        return 0
    leaked = sum(isinstance(x, str) and text_digest(x) in trained for x in items)
    if leaked:
        warnings.warn(f"{leaked:,} of the {len(items):,} inputs were in the training data of {model.alias!r}; its scores "
                      f"on them flatter it — compare on held-out items (e.g. {model.alias}.eval_data)", InputWarning,
                      stacklevel=3)
    return leaked


def _digest(items, gold) -> str:
    payload = dumps([[encode_input(x) for x in items], gold])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _check_price(price_per_hour) -> None:
    values = price_per_hour.values() if isinstance(price_per_hour, Mapping) else [price_per_hour]
    for value in values:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0):
            raise InputError(f"price_per_hour must be dollars per hour >= 0 (a number, or a dict by model alias or "
                             f"device kind), got {value!r}")


def _price(model, price_per_hour) -> float:
    from ..backends.device import device_kind

    return config.price_for(device_kind(model.device), alias=model.alias, override=price_per_hour)


def _mark_stopped(writer, run_id: str, exc: BaseException, stage: str) -> None:
    """Mark a run that ``exc`` stopped ``interrupted`` (Ctrl-C) or ``failed``, so that no run of a live process
    stays ``running``; a run already recorded as finished stays so."""
    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    try:
        marked = writer.stop_run(run_id, status)
    except StoreError as error:
        note = None if isinstance(exc, StoreError) else f"specnb: run {run_id!r} could not be marked {status}: {error}"
    else:
        note = (f"specnb: the run stopped {stage}; its finished items are kept in run {run_id!r} "
                f"(specnb.get_run({run_id!r}))") if marked else None
    if note and hasattr(exc, "add_note"):
        exc.add_note(note)


def compare(task, inputs, models, *, labels=None, label_space=None, text: str = "text", sample=None, seed: int = 0,
            price_per_hour=None, name: str | None = None, batch_size: int | None = None, progress: bool | None = None,
            store: bool = True, reference: str | None = None) -> Comparison:
    """Run specialists and generalists on the same inputs and score them the same way.

    Parameters
    ----------
    task : str
        ``classify``, ``sentiment``, ``langid`` or ``ner``.
    inputs : list of str, pandas Series or DataFrame
        A DataFrame gives its ``text`` column; its ``label`` column is the gold labels unless
        ``labels`` says otherwise. Bad items (None, NaN, non-strings, empty or over-long texts) are
        answered `Invalid` one by one; the others run.
    models : str, list
        Aliases of loaded models, `Model` handles or sources to load (catalog names, folders,
        hub ids), specialists and generalists mixed; a str may list several, comma separated.
    labels : list or str, optional
        Gold labels, one per input (ner: a list of ``(start, end, type)``, dicts or `Span` per
        input), or the name of a DataFrame column.
    label_space : list or dict, optional
        The labels every model answers within (ner: the entity types). A dict maps each label to a
        description that embedding models compare texts with (zero-shot). Default: classify, the
        distinct gold labels; sentiment and langid, the task's default space plus any gold label
        outside it; ner, PERSON, ORG, GPE, LOC.
    text : str
        The text column of a DataFrame.
    sample : int, optional
        Compare on this many inputs drawn at random (without replacement, under ``seed``).
    seed : int
        Seeds the sample and the bootstrap intervals.
    price_per_hour : float or dict, optional
        Dollars per device-hour for the cost column: one number for all models, or a dict by
        model alias or device kind. Default ``specnb.config.price_per_hour``.
    name : str, optional
        A name for the run in the store.
    batch_size, progress : optional
        As in `Model.predict`.
    store : bool
        Write the run to ``$SPECNB_HOME/runs.sqlite`` as it goes (default True).
    reference : str, optional
        The model the others are compared with, item by item (`Comparison.paired`, the summary's
        ``verdict``); default the best specialist.

    Returns
    -------
    Comparison
    """
    import numpy as np

    from ..backends.device import device_kind
    from ..backends.model import Model
    from ..backends.model_registry import load as _load
    from ..engine import PeakMemory
    from ..progress import bar as progress_bar

    if not isinstance(task, str):
        raise TaskError(f"task must be a str, one of {', '.join(COMPARED_TASKS)}; got {task!r:.60}")
    task = check_task(task)
    if task not in COMPARED_TASKS:
        raise TaskError(f"compare scores {', '.join(COMPARED_TASKS)}; {task!r} has no label to compare "
                        "(run Model.predict for it)")
    spec = get_task(task)
    check_options(text=text, name=name, batch_size=batch_size, progress=progress, store=store)
    items, gold = split_inputs(inputs, labels, text)
    gold = gold_labels(task, gold, len(items))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an int, got {seed!r}")
    index = list(range(len(items)))
    if sample is not None:
        if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
            raise InputError(f"sample must be a positive int (how many inputs to draw), got {sample!r}")
        if sample < len(items):
            index = sorted(np.random.default_rng(seed).choice(len(items), sample, replace=False).tolist())
            items = [items[i] for i in index]
            gold = None if gold is None else [gold[i] for i in index]
    if not items:
        raise InputError("compare needs at least one input")
    try:
        space, descriptions, gold = _label_space(spec, task, label_space, gold)
    except TaskError as error:
        if label_space is None:
            raise
        raise TaskError(f"label_space=: {error}") from None
    _check_price(price_per_hour)
    planned = _plan_models(models, task)
    names = [_model_name(m) for m in planned]
    reference = None if reference is None else _model_name(reference)
    if reference is not None and reference not in names:
        raise InputError(f"reference={reference!r} is not one of the compared models; models: {', '.join(names)}")
    progress = config.progress if progress is None else progress
    chunk = config.store_chunk
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ConfigError(f"specnb.config.store_chunk must be a positive int (items between two writes to the run "
                          f"store), got {chunk!r}; e.g. specnb.config.store_chunk = 256")
    labels_arg = descriptions or space  # descriptions are keyed by the space's labels
    settings = {"batch_size": batch_size or config.batch_size, "token_budget": dict(config.token_budget),
                "store_chunk": chunk, **({} if reference is None else {"reference": reference})}
    meta = {"models": names, "label_space": list(space), "descriptions": descriptions, "seed": seed,
            "sample": sample, "index": index, "has_labels": gold is not None, "settings": settings}

    writer = default_store() if store else None
    run_id = None if writer is None else writer.new_run_id()
    created = time.time()
    n = len(items)
    predictions = {m: [None] * n for m in names}
    seconds = {m: [None] * n for m in names}
    info, stats = {}, {}
    stage = "before any model ran"
    try:  # from the run's first write to its last: whatever stops it (Ctrl-C included) marks it in the store
        if writer is not None:
            writer.start_run(run_id, task=task, name=name, inputs=items, labels=gold, digest=_digest(items, gold),
                             meta=meta, created=created)
        for position, (entry, alias) in enumerate(zip(planned, names)):
            stage = f"at model {alias!r}"
            model = entry if isinstance(entry, Model) else _load(entry)
            leaked = _warn_leaks(model, items)

            info[alias] = {
                "source": str(model.source), "version": model.version, "backend": model.backend, "role": model.role,
                "device": model.device, "device_kind": device_kind(model.device), "dtype": model.dtype,
                "parameters": model.parameters, "weight_bytes": model.weight_bytes, "load_seconds": model.load_seconds,
                "trained_on_inputs": leaked,
            }
            remote = model.device == "remote"
            if remote:
                described = model.endpoint or {}
                info[alias]["endpoint"] = {k: described.get(k) for k in ("url", "host", "model", "capabilities")}
            totals = {"seconds": 0.0, "items": 0, "batches": 0, "oom_retries": 0, "run_peak_bytes": 0,
                      "price_per_hour": None if remote else _price(model, price_per_hour)}
            if remote:  # priced by the token; what the requests did
                totals.update({"method": None, "price_per_1m_tokens": model.token_price(),
                               **{k: 0 for k in ENDPOINT_COUNTS}})
            stats[alias] = totals
            if writer is not None:
                writer.add_model(run_id, position, alias, info[alias])
            bar = progress_bar(total=n, desc=f"{alias} {task}", unit="item", delay=config.progress_delay,
                               disable=not progress)
            try:
                for start in range(0, n, chunk):
                    part = items[start:start + chunk]
                    with PeakMemory(model.device) as meter:
                        out = model.predict(part, task=task, labels=labels_arg, batch_size=batch_size, progress=False)
                    run = model.last_run
                    totals["seconds"] += run.seconds
                    totals["items"] += len(part)
                    totals["batches"] += run.batches
                    totals["oom_retries"] += run.oom_retries
                    totals["run_peak_bytes"] = max(totals["run_peak_bytes"], meter.peak_bytes)
                    if remote:
                        totals["method"] = run.method
                        for key in ENDPOINT_COUNTS:
                            totals[key] += getattr(run, key)
                    for j, prediction in enumerate(out):
                        predictions[alias][start + j] = prediction
                        seconds[alias][start + j] = float(run.item_seconds[j])
                    if writer is not None:
                        rows = [(start + j, p.to_dict(), run.item_seconds[j]) for j, p in enumerate(out)]
                        writer.add_predictions(run_id, alias, rows, totals)
                    bar.update(len(part))
            finally:
                bar.close()
                if model.device == "cpu":
                    trim_heap()  # what the run freed goes back to the system before the next model runs
        stage = "after every model ran"
        comparison = Comparison(task=task, models=names, inputs=[encode_input(x) for x in items], labels=gold,
                                index=index, label_space=space, descriptions=descriptions, predictions=predictions,
                                item_seconds=seconds, model_info=info, model_stats=stats, seed=seed, run_id=run_id,
                                name=name, status="finished", created=created, settings=settings)
        if writer is not None:
            summary = json.loads(comparison.summary.to_json(orient="index"))
            writer.finish_run(run_id, "finished", summary)
    except BaseException as exc:
        if writer is not None:
            _mark_stopped(writer, run_id, exc, stage)
        raise
    return comparison


def runs():
    """Stored runs, comparisons and training runs, newest first: id, created, status (``finished``,
    ``stopped``, ``running``, ``interrupted``, ``failed``), kind (``compare`` / ``train``), task, name, items,
    models, done (share of predictions stored; a training run: of its planned steps), seconds."""
    return default_store().runs()


def get_run(run_id: str):
    """Rebuild a stored run (in any process): a `Comparison`, or a `TrainingRun` for a training run; an
    interrupted run keeps its finished items (or steps)."""
    if not isinstance(run_id, str):
        raise InputError(f"run ids are strings such as '20261129-181500-a1b2c3', got {run_id!r:.40}")
    record = default_store().read(run_id)
    if record["meta"].get("kind") == "train":
        return TrainingRun.from_record(record)
    return Comparison.from_record(record)


def delete_run(run_id: str) -> None:
    """Delete a stored run (a comparison or a training run) and everything kept with it."""
    default_store().delete(run_id)
