"""Distillation's labels: a teacher model answers the training texts in the label space, its answers kept in the
run store's ``answers`` table so that a second call — or a call after a crash — asks only what is not answered yet.

- The teacher is a loaded `Model`, an alias, a catalog name / folder / hub id, or a callable (loaded for the
  task). With no gold labels and no ``teacher=``, `specialize` distils from `DEFAULT_TEACHER` (the embedded
  generalist, SmolLM2).
- Answers are cached by (teacher key, text digest). The key is a digest of what decides an answer: the
  model's source, backend, version, dtype and role, the task, the label space, a generalist's prompt, the
  files of a local folder (their sizes and times: a folder trained again is a new teacher) and a callable's
  code (module, name, bytecode and constants: an edited function is a new teacher; state it reads from
  outside is not seen).
- The texts are asked in chunks of ``specnb.config.store_chunk``, each chunk written in its own transaction:
  a crash keeps every finished chunk.
- `screen` keeps the valid answers in the label space, scored at least ``min_confidence``, counting the
  rest (``invalid``, ``unsure``).
- `from_comparison` takes a model's answers from a `Comparison` without running anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import types
from pathlib import Path

from ..errors import ConfigError, InputError, TaskError
from ..settings import config
from ..tasks import Label, get_task, prediction_from_dict
from ..tasks.base import text_digest

__all__ = ["DEFAULT_TEACHER", "resolve_teacher", "teacher_key", "ask", "screen", "from_comparison"]

#: The teacher of a run without gold labels and without ``teacher=``: the embedded generalist.
DEFAULT_TEACHER = "smollm2"


def resolve_teacher(teacher, task: str):
    """The loaded teacher `Model` for ``task``; `InputError` / `TaskError` naming what a teacher can be."""
    from ..backends.model import Model
    from ..backends.model_registry import registry

    if isinstance(teacher, Model):
        model = registry.load(teacher)
    elif isinstance(teacher, (str, Path)):
        model = registry.by_name(str(teacher), task=task)
    elif callable(teacher):
        model = registry.load(teacher, task=task)
    else:
        raise InputError(f"teacher= is the model whose answers become the training labels: an alias, a catalog name "
                         f"('smollm2'), a folder, a hub id, a loaded specnb.Model or a callable; got "
                         f"{type(teacher).__name__}")
    if task not in model.tasks:
        raise TaskError(f"teacher {model.alias!r} cannot answer {task!r}; it serves {', '.join(model.tasks)}")
    return model


def _code_digest(fn, h) -> None:
    code = getattr(fn, "__code__", None) or getattr(type(fn).__dict__.get("__call__"), "__code__", None)
    h.update(f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}".encode())
    stack = [code] if code is not None else []
    while stack:
        code = stack.pop()
        h.update(code.co_code)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                stack.append(const)
            else:
                h.update(repr(const).encode("utf-8", "replace"))


def _files_digest(path: Path, h) -> None:
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        stat = file.stat()
        h.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns};".encode("utf-8", "replace"))


def teacher_key(model, task: str, space) -> str:
    """The cache key of ``model``'s answers to ``task`` in ``space`` (see the module docstring)."""
    from ..store import dumps

    identity = {"source": str(model.source), "backend": model.backend, "version": model.version,
                "dtype": model.dtype, "role": model.role, "task": task, "labels": list(space)}
    if model.role == "generalist":
        identity["prompt"] = dataclasses.asdict(model.prompt_for(task))
    h = hashlib.sha256(dumps(identity).encode("utf-8"))
    if model.backend == "callable":
        _code_digest(model.native, h)
    else:
        path = Path(str(model.source))
        if path.is_dir():
            _files_digest(path, h)
    return f"teacher:{h.hexdigest()[:32]}"


def _chunk() -> int:
    chunk = config.store_chunk
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ConfigError(f"specnb.config.store_chunk must be a positive int (items between two writes to the run "
                          f"store), got {chunk!r}; e.g. specnb.config.store_chunk = 256")
    return chunk


def ask(model, texts: list[str], *, task: str, space, store: bool = True, progress: bool | None = None):
    """The teacher's answer (a `Prediction`) to every text, and its report: alias, source, key, asked (distinct
    texts asked now), cached (distinct texts answered from the store), seconds, items_per_s (of the asking)."""
    from ..progress import bar as progress_bar
    from ..store import default_store

    writer = default_store() if store else None
    key = teacher_key(model, task, space)
    digests = [text_digest(t) for t in texts]
    answers = {}
    if writer is not None:
        for digest, stored in writer.cached_answers(key, digests).items():
            try:
                answers[digest] = prediction_from_dict(stored)
            except Exception:  # noqa: BLE001 - an entry this version cannot read is asked again
                continue
    cached = len(answers)
    todo = list({d: t for d, t in zip(digests, texts) if d not in answers}.items())
    chunk = _chunk()
    seconds = 0.0
    progress = config.progress if progress is None else progress
    bar = progress_bar(total=len(todo), desc=f"{model.alias} labels", unit="item", delay=config.progress_delay,
                       disable=not progress or not todo)
    done = 0
    try:
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            started = time.perf_counter()
            out = model.predict([t for _, t in part], task=task, labels=list(space), progress=False)
            seconds += time.perf_counter() - started
            answers.update((d, p) for (d, _), p in zip(part, out))
            if writer is not None:
                writer.add_answers(key, [(d, p.to_dict()) for (d, _), p in zip(part, out)])
            done += len(part)
            bar.update(len(part))
    except BaseException as exc:
        if writer is not None and hasattr(exc, "add_note"):
            exc.add_note(f"specnb: teacher {model.alias!r} answered {cached + done:,} of {len(todo) + cached:,} "
                         "distinct texts; those answers are kept in the run store and are not asked again")
        raise
    finally:
        bar.close()
    report = {"alias": model.alias, "source": str(model.source), "key": key, "asked": len(todo), "cached": cached,
              "seconds": round(seconds, 6), "items_per_s": len(todo) / seconds if seconds > 0 else None}
    return [answers[d] for d in digests], report


def screen(answers, space, min_confidence: float | None, teacher: str):
    """The training label of each answer (None when it is left out) and the counts: ``invalid`` (an `Invalid`
    answer, or none, or one outside the label space) and ``unsure`` (scored below ``min_confidence``, or
    without a score when one is asked for)."""
    folded = {x.casefold(): x for x in space}
    labels, invalid, unsure, scored = [], 0, 0, 0
    for answer in answers:
        name = folded.get(answer.label.casefold()) if isinstance(answer, Label) else None
        if name is None:
            labels.append(None)
            invalid += 1
            continue
        scored += answer.score is not None
        if min_confidence is not None and (answer.score is None or answer.score < min_confidence):
            labels.append(None)
            unsure += 1
        else:
            labels.append(name)
    if min_confidence is not None and unsure and not scored:
        raise InputError(f"teacher {teacher!r} gives no scores, so min_confidence={min_confidence} would leave out "
                         "every answer; pass min_confidence=None, or a teacher that scores its answers")
    return labels, {"kept": sum(x is not None for x in labels), "invalid": invalid, "unsure": unsure}


def from_comparison(comparison, teacher, *, task: str, labels):
    """(texts, answers, gold, space, report) from a stored or returned `Comparison`: the texts it ran on, the
    answers of its model ``teacher`` (an alias in it, or a `Model` of one; default its only generalist) and
    its gold labels (or None). Nothing is run."""
    from ..backends.model import Model
    from ..tasks import Invalid

    names = comparison.models
    if teacher is None:
        generalists = [m for m in names if (comparison.model_info.get(m) or {}).get("role") == "generalist"]
        if len(generalists) != 1:
            raise InputError(f"teacher= names the model of the comparison whose answers become the labels; its models: "
                             f"{', '.join(names)}")
        teacher = generalists[0]
    name = teacher.alias if isinstance(teacher, Model) else teacher
    if not isinstance(name, str) or name not in names:
        raise InputError(f"teacher={name!r:.60} is not a model of comparison {comparison.run_id or '(not stored)'}; "
                         f"its models: {', '.join(names)}")
    if comparison.task != task:
        raise InputError(f"the comparison is a {comparison.task!r} run; pass task={comparison.task!r} to train on it")
    space = get_task(task).label_space(labels) if labels is not None else tuple(comparison.label_space)
    texts, answers = [], []
    for item, answer in zip(comparison.inputs, comparison.predictions[name]):
        ok = isinstance(item, str) and bool(item.strip())
        texts.append(item if isinstance(item, str) else "")
        answers.append(answer if ok and answer is not None else Invalid("", "not answered"))
    stats = comparison.model_stats.get(name) or {}
    run_seconds, run_items = float(stats.get("seconds") or 0.0), int(stats.get("items") or 0)
    report = {"alias": name, "source": (comparison.model_info.get(name) or {}).get("source"), "key": None,
              "asked": 0, "cached": 0, "from_run": comparison.run_id, "seconds": 0.0,
              "items_per_s": run_items / run_seconds if run_seconds > 0 else None}
    return texts, answers, comparison.labels, space, report
