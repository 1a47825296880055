"""Running stages on records (dicts) in one process: what `Pipeline.run` does and what each Ray Data step
runs on its batch (`specnb.compose.ray_engine`), so a record comes out the same either way.

A model stage batches through the engine (`Model.predict`); a route runs each branch on its records
together; a cascade runs the specialist on all its records and the fallback only on those it is unsure
of. A `Context` holds one run's models and per-stage statistics (keyed by stage id); `profile_frame`
turns them into the profile table.
"""

from __future__ import annotations

import math
import time

from ..errors import PipelineError, TaskError
from ..presentation import plural
from .spec import DEFAULT_BRANCH, branch_prefix, render, stage_id, where
from .validate import python_function, stage_models

__all__ = ["Context", "run_stages", "write_prediction", "profile_frame", "records_frame", "PROFILE_COLUMNS"]

#: The profile's columns (indexed by stage id).
PROFILE_COLUMNS = ["stage_id", "stage", "kind", "models", "items", "seconds", "items_per_s", "share", "weight_bytes",
                   "fallback_share"]


class Context:
    """One run's models, python functions and per-stage statistics.

    Parameters
    ----------
    functions : dict
        Python stages by import path (the pipeline's own, plus those imported on the way).
    capture : str, optional
        The stage id of a cascade whose specialist and fallback answers are kept for every record that
        reaches it (`Pipeline.sweep`), in ``captured``.
    """

    def __init__(self, functions: dict, capture: str | None = None):
        self.functions = functions
        self.models: dict = {}
        self.stats: dict[str, dict] = {}
        self.capture = capture
        self.captured: dict | None = None

    def model(self, name: str, task: str):
        """The model a stage names, found once per run: a loaded alias, else ``name`` loaded with its own
        default task (`ModelRegistry.by_name`); the stage's ``task`` is asked per call, never made the
        model's default."""
        if name not in self.models:
            from ..backends.model_registry import registry

            self.models[name] = registry.by_name(name, task=task)
        model = self.models[name]
        if task not in model.tasks:
            raise TaskError(f"model {model.alias!r} cannot serve {task!r}; it serves {', '.join(model.tasks)}")
        return model

    def record(self, key: str, spec: dict, items: int, seconds: float, **extra) -> None:
        """Add a batch's statistics to stage ``key``: numbers add up, text (the models) is kept."""
        entry = self.stats.setdefault(key, {"stage": render(spec), "kind": spec["kind"], "items": 0, "seconds": 0.0})
        entry["items"] += items
        entry["seconds"] += seconds
        for name, value in extra.items():
            entry[name] = entry.get(name, 0) + value if isinstance(value, (int, float)) else value


def write_prediction(record: dict, field: str, prediction) -> None:
    """Write one prediction into a record: ``field`` (and ``field:score`` for labels, ``field:error`` with the
    reason for `Invalid`)."""
    from ..tasks import Entities, Invalid, Label

    record.pop(f"{field}:error", None)
    if isinstance(prediction, Label):
        record[field], record[f"{field}:score"] = prediction.label, prediction.score
    elif isinstance(prediction, Entities):
        record[field] = [{"start": s.start, "end": s.end, "label": s.label, "text": s.text} for s in prediction.spans]
    elif isinstance(prediction, Invalid):
        record[field], record[f"{field}:error"] = None, prediction.reason
    else:
        record[field] = prediction.to_dict()


def run_stages(stages, records: list[dict], context: Context, prefix: str = "", first: int = 0) -> None:
    """Run ``stages`` in order on ``records`` (changed in place). Their stage ids start at ``prefix`` +
    ``first`` (a Ray step runs the pipeline's stage ``first`` alone)."""
    for offset, spec in enumerate(stages):
        if not records:
            return
        key = stage_id(prefix, first + offset)
        kind = spec["kind"]
        started = time.perf_counter()
        if kind == "model":
            ((name, task),) = stage_models(spec)
            model = context.model(name, task)
            predictions = model.predict([r.get(spec["input"]) for r in records], task=task,
                                        labels=spec.get("labels"), progress=False)
            for record, prediction in zip(records, predictions):
                write_prediction(record, spec["field"], prediction)
            context.record(key, spec, len(records), time.perf_counter() - started,
                           weight_bytes=model.weight_bytes or 0, models=model.alias)
        elif kind == "cascade":
            _cascade(spec, records, context, key, started)
        elif kind == "route":
            groups: dict[str, list] = {}
            for record in records:
                value = record.get(spec["field"])
                branch = str(value) if value is not None and str(value) in spec["branches"] else DEFAULT_BRANCH
                groups.setdefault(branch, []).append(record)
            context.record(key, spec, len(records), time.perf_counter() - started)
            for branch, members in groups.items():
                inner = spec["branches"][branch] if branch != DEFAULT_BRANCH else spec.get("default", [])
                run_stages(inner, members, context, prefix=branch_prefix(key, branch))
        else:
            _python(spec, records, context)
            context.record(key, spec, len(records), time.perf_counter() - started)


def _python(spec, records: list[dict], context: Context) -> None:
    """Run a python stage: it changes the records in place (returns None) or returns one dict per record;
    anything else — an exception, a record dropped or added, a non-dict — is a `PipelineError` naming it."""
    name = f"{where(spec)}python stage {spec['function']!r}"
    function = python_function(spec, context.functions)
    try:
        result = function(records)
    except Exception as error:  # the user's own code: say which stage, keep the original chained
        raise PipelineError(f"{name} raised {type(error).__name__}: {error} (on {plural(len(records), 'record')}, "
                            f"the first {_first(records)})") from error
    if result is None:
        if not all(isinstance(r, dict) for r in records):
            raise PipelineError(f"{name} put a non-dict into the records; change the dicts in place or return one dict per record")
        return
    if not isinstance(result, (list, tuple)):
        raise PipelineError(f"{name} returned {type(result).__name__} {result!r:.40}; return None (records changed in place) or "
                            f"a list of one dict per record ({len(records)})")
    result = list(result)
    if len(result) != len(records) or not all(isinstance(r, dict) for r in result):
        kinds = sorted({type(r).__name__ for r in result})
        raise PipelineError(f"{name} must return one dict per record: got {plural(len(result), 'item')} "
                            f"({', '.join(kinds) or 'nothing'}) for {plural(len(records), 'record')}; return None "
                            "after changing them in place, or a list of the same length (one output row per input)")
    for record, new in zip(records, result):
        if new is not record:
            record.clear()
            record.update(new)


def _first(records: list[dict]) -> str:
    return repr({k: v for k, v in list(records[0].items())[:4]})[:80] if records else "none"


def _cascade(spec, records, context: Context, key: str, started: float) -> None:
    from ..tasks import Label

    (first_name, task), (second_name, _) = stage_models(spec)
    specialist = context.model(first_name, task)
    fallback = context.model(second_name, task)
    values = [r.get(spec["input"]) for r in records]
    first = specialist.predict(values, task=task, labels=spec.get("labels"), progress=False)
    specialist_seconds = time.perf_counter() - started
    unsure = [i for i, p in enumerate(first)
              if not isinstance(p, Label) or p.score is None or p.score < spec["threshold"]]
    if context.capture == key:  # a sweep: the fallback answers every record, once
        fallback_started = time.perf_counter()
        every = fallback.predict(values, task=task, labels=spec.get("labels"), progress=False)
        context.captured = {"records": list(records), "specialist": first, "fallback": every,
                            "specialist_seconds": specialist_seconds,
                            "fallback_seconds": time.perf_counter() - fallback_started,
                            "models": (specialist, fallback), "fallback_run": fallback.last_run}
        second = [every[i] for i in unsure]
    else:
        second = fallback.predict([values[i] for i in unsure], task=task, labels=spec.get("labels"),
                                  progress=False) if unsure else []
    answers = list(first)
    by = [specialist.alias] * len(records)
    for i, prediction in zip(unsure, second):
        answers[i], by[i] = prediction, fallback.alias
    for record, prediction, model in zip(records, answers, by):
        write_prediction(record, spec["field"], prediction)
        record[f"{spec['field']}:by"] = model
    seconds = time.perf_counter() - started
    context.record(key, spec, len(records), seconds, fallback_items=len(unsure),
                   specialist_seconds=specialist_seconds, fallback_seconds=seconds - specialist_seconds,
                   weight_bytes=(specialist.weight_bytes or 0) + (fallback.weight_bytes or 0),
                   models=f"{specialist.alias} → {fallback.alias}")


def records_frame(records: list[dict]):
    """The records as a DataFrame with one row per record, also when stages emptied every one of them."""
    import pandas as pd

    frame = pd.DataFrame.from_records(records)
    return frame if len(frame) == len(records) else pd.DataFrame(index=range(len(records)))


def profile_frame(stats: dict, total: float):
    """The profile table from `Context.stats`: per stage id, items, seconds, items/s, the share of ``total``
    seconds, weight bytes and, for cascades, the share sent to the fallback."""
    import pandas as pd

    rows = []
    for key, entry in stats.items():
        row = {"stage_id": key, **entry}
        row["items_per_s"] = entry["items"] / entry["seconds"] if entry["seconds"] > 0 else math.inf
        row["share"] = entry["seconds"] / total if total > 0 else float("nan")
        if "fallback_items" in entry:
            row["fallback_share"] = entry["fallback_items"] / entry["items"] if entry["items"] else float("nan")
        rows.append(row)
    frame = pd.DataFrame(rows)
    for column in PROFILE_COLUMNS:
        if column not in frame:
            frame[column] = None
    return frame[PROFILE_COLUMNS].set_index("stage_id")
