"""Checking a pipeline before it runs: every field is written before it is read, every model is known and
can serve its stage's task, cascades have a threshold, python stages resolve to ``@specnb.stage``
functions. Every error is a `PipelineError` naming the line.

The same rules decide, at run time, which (model, task) pairs a stage runs (`stage_models`).
"""

from __future__ import annotations

import importlib

from ..errors import PipelineError, SpecnbError
from ..tasks import LABEL_TASKS
from .spec import reads, render, walk, where, writes

__all__ = ["validate", "stage_models", "model_tasks", "python_function"]


def validate(stages, *, input: str, functions: dict, fields=()) -> None:
    """Raise `PipelineError` naming the line for an unknown model, an unknown field, a field read before
    the stage that writes it (a cycle), or a model that cannot serve its task.

    ``input`` is the pipeline's input field, ``fields`` the other fields the records bring, ``functions``
    the python stages known by import path (resolved ones are added)."""
    writers: dict[str, dict] = {}
    for spec in walk(stages):
        for field in writes(spec):
            writers.setdefault(field, spec)
    _check(stages, {input, *fields}, writers, functions)


def _check(stages, known: set, writers: dict, functions: dict) -> None:
    for spec in stages:
        for field in reads(spec):
            if field in known:
                continue
            if field in writers and writers[field] is not spec:
                later = writers[field]
                raise PipelineError(f"{where(spec)}reads {field!r} before `{render(later)}` "
                                    f"({where(later).rstrip(': ') or 'a later stage'}) writes it: a cycle; "
                                    "stages run in order, so move the writer up")
            if field in writers:
                raise PipelineError(f"{where(spec)}reads {field!r}, which only this stage writes: a cycle")
            raise PipelineError(f"{where(spec)}unknown field {field!r}; known here: {', '.join(sorted(known))}")
        kind = spec["kind"]
        if kind in ("model", "cascade"):
            _check_models(spec)
        if kind == "cascade" and not (isinstance(spec.get("threshold"), (int, float))
                                      and 0 <= spec["threshold"] <= 1):
            raise PipelineError(f"{where(spec)}threshold must be a number in [0, 1], got {spec.get('threshold')!r}")
        if kind == "python":
            python_function(spec, functions)
        if kind == "route":
            branch_known = set(known)
            for branch in [*spec["branches"].values(), spec.get("default", [])]:
                inner = set(known)
                _check(branch, inner, writers, functions)
                branch_known |= inner
            known |= branch_known
        known |= set(writes(spec))


def _check_models(spec: dict) -> None:
    for name, task in stage_models(spec):
        tasks = model_tasks(name, spec)
        if task not in tasks:
            raise PipelineError(f"{where(spec)}model {name!r} cannot serve {task!r}; it serves {', '.join(tasks)}")
        if spec["kind"] == "cascade" and task not in LABEL_TASKS:
            raise PipelineError(f"{where(spec)}a cascade needs a label task with scores "
                                f"({', '.join(LABEL_TASKS)}), not {task!r}")


def python_function(spec, functions: dict):
    """The function a python stage runs: from ``functions`` (by import path), else imported (and added)."""
    path = spec["function"]
    if path in functions:
        return functions[path]
    module, _, qualname = path.partition(":")
    try:
        target = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise PipelineError(f"{where(spec)}python stage {path!r} cannot be imported ({error}); functions defined in "
                            "a notebook run only there: move it to a module to run the pipeline elsewhere") from None
    if getattr(target, "_specnb_stage", None) is None:
        raise PipelineError(f"{where(spec)}{path!r} is not decorated with @specnb.stage")
    functions[path] = target
    return target


def model_tasks(name: str, spec) -> tuple:
    """The tasks model ``name`` serves, its own default first: a loaded alias's, else what loading it would
    give. `PipelineError` naming the stage's line when the name is neither."""
    from ..backends.model_registry import registry
    from ..backends.resolve import resolve

    def own_first(task, tasks):
        return (task, *[t for t in tasks if t != task])

    if name in registry:
        model = registry.get(name)
        return own_first(model.task, model.tasks)
    try:
        plan = resolve(name, task=None)
        return own_first(plan.task, plan.tasks)
    except SpecnbError as error:
        loaded = ", ".join(m.alias for m in registry) or "none"
        raise PipelineError(f"{where(spec)}unknown model {name!r} ({type(error).__name__}: {error}); "
                            f"loaded: {loaded}; see specnb.catalog()") from None


def _task(spec, name: str, tasks: tuple) -> str:
    if spec.get("task"):
        return spec["task"]
    if spec.get("labels") is not None or spec["kind"] == "cascade":
        return "classify" if spec.get("labels") is not None else tasks[0]
    own = tasks[0]
    if own in ("embed", "generate"):
        raise PipelineError(f"{where(spec)}model {name!r} ({own}) needs task= or labels= to know what to answer")
    return own


def stage_models(spec) -> list[tuple[str, str]]:
    """The (model, task) pairs a model stage, or a cascade's specialist and fallback, run: a cascade's two
    models both answer its specialist's task. Empty for routes and python stages."""
    if spec["kind"] == "model":
        names = [spec["model"]]
    elif spec["kind"] == "cascade":
        names = [spec["specialist"], spec["fallback"]]
    else:
        return []
    task = _task(spec, names[0], model_tasks(names[0], spec))
    return [(name, task) for name in names]
