"""Checking a pipeline before it runs: every field is written before it is read, every model is known and
can serve its stage's task, cascades have a threshold, python stages resolve to ``@specnb.stage``
functions. Every error is a `PipelineError` naming the line.

The same rules decide, at run time, which (model, task) pairs a stage runs (`stage_models`).
"""

from __future__ import annotations

import importlib
import sys

from .._catalog import ENTRIES, close_matches
from ..errors import PipelineError, SpecnbError, TaskError, UnknownModelError
from ..tasks import LABEL_TASKS, check_task
from .spec import reads, render, stage_marks, walk, where, writes

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
    _check(stages, {input, *fields}, writers, functions, {})


#: What a model stage writes for these tasks: not text, so no model can read it (labels are text).
_NOT_TEXT = {"ner": "entities (a list of spans)", "embed": "a vector", "generate": "a generation (a dict with its text)"}


def _check(stages, known: set, writers: dict, functions: dict, kinds: dict) -> None:
    """``kinds``: the fields known here that hold no text, as (what they hold, the stage that wrote it)."""
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
        task = _check_models(spec) if kind in ("model", "cascade") else None
        if task is not None and spec["input"] in kinds:
            holds, writer = kinds[spec["input"]]
            at = f", {where(writer).rstrip(': ')}" if where(writer) else ""
            models = f"{spec['model']} ({task}) reads" if kind == "model" else \
                f"{spec['specialist']} and {spec['fallback']} ({task}) read"
            raise PipelineError(f"{where(spec)}`{render(spec)}` reads {spec['input']!r}, which holds {holds} "
                                f"(written by `{render(writer)}`{at}); {models} text: the input field, a text "
                                "column, a label field or a field a python stage writes")
        if kind == "cascade" and not (isinstance(spec.get("threshold"), (int, float))
                                      and 0 <= spec["threshold"] <= 1):
            raise PipelineError(f"{where(spec)}threshold must be a number in [0, 1], got {spec.get('threshold')!r}")
        if kind == "python":
            python_function(spec, functions)
        if kind == "route":
            branch_known, branch_kinds = set(known), {}
            for branch in [*spec["branches"].values(), spec.get("default", [])]:
                inner, inner_kinds = set(known), dict(kinds)
                _check(branch, inner, writers, functions, inner_kinds)
                branch_known |= inner
                for field, value in inner_kinds.items():  # a field some records hold as non-text stays refused
                    branch_kinds.setdefault(field, value)
            known |= branch_known
            kinds.update(branch_kinds)
        for field in writes(spec):
            if task in _NOT_TEXT:
                kinds[field] = (_NOT_TEXT[task], spec)
            else:
                kinds.pop(field, None)  # a label, or a python stage's own value
        known |= set(writes(spec))


def _check_models(spec: dict) -> str:
    """The task the stage's models answer, once they are known and can serve it."""
    pairs = stage_models(spec)
    for name, task in pairs:
        try:
            check_task(task)
        except TaskError as error:
            raise PipelineError(f"{where(spec)}{error}") from None
        tasks = model_tasks(name, spec)
        if task not in tasks:
            raise PipelineError(f"{where(spec)}model {name!r} cannot serve {task!r}; it serves {', '.join(tasks)}")
        if spec["kind"] == "cascade" and task not in LABEL_TASKS:
            raise PipelineError(f"{where(spec)}a cascade needs a label task with scores "
                                f"({', '.join(LABEL_TASKS)}), not {task!r}")
    return pairs[0][1]


def python_function(spec, functions: dict, *, trust_code: bool = True):
    """The function a python stage runs: from ``functions`` (by import path), else imported (and added).

    With ``trust_code=False`` nothing is imported: the module must already be in `sys.modules`."""
    path = spec["function"]
    if path in functions:
        return functions[path]
    module, _, qualname = path.partition(":")
    if not module or not qualname:
        raise PipelineError(f"{where(spec)}function: {path!r} is not an import path (module:function)")
    if not trust_code and module not in sys.modules:
        raise PipelineError(f"{where(spec)}function: python stage {path!r} needs module {module!r} imported, and "
                            "loading a pipeline file imports no code unless you allow it: import the module first, "
                            "or pass trust_code=True (specnb run --trust-code)")
    try:
        target = sys.modules[module] if not trust_code else importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise PipelineError(f"{where(spec)}python stage {path!r} cannot be imported ({error}); functions defined in "
                            "a notebook run only there: move it to a module to run the pipeline elsewhere") from None
    except Exception as error:  # the module's own code failed while importing
        raise PipelineError(f"{where(spec)}python stage {path!r}: importing {module!r} failed: "
                            f"{type(error).__name__}: {error}") from None
    if stage_marks(target) is None:
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
    aliases = [m.alias for m in registry]
    try:
        plan = resolve(name, task=None)
    except UnknownModelError:
        matches = close_matches(name, [*aliases, *(e for e in ENTRIES if e not in aliases)])
        hint = f"did you mean {' or '.join(map(repr, matches))}? " if matches else ""
        raise PipelineError(f"{where(spec)}unknown model {name!r}; {hint}loaded: {', '.join(aliases) or 'none'}; "
                            "specnb.catalog() lists the models specnb knows by name") from None
    except SpecnbError as error:  # a known kind of source that cannot load here: its own reason, once
        raise PipelineError(f"{where(spec)}model {name!r}: {type(error).__name__}: {error}") from None
    return own_first(plan.task, plan.tasks)


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
