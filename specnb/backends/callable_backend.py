"""Any Python callable as a model: ``fn(list_of_texts) -> list_of_outputs``.

The function's answers are read per item: one that cannot be read as the task's prediction (None, a
score that is no number in [0, 1], a malformed span) is `Invalid` with the reason. An exception from the
function, or an output that is not one answer per input, is a `ModelOutputError` that names the model
and the batch (`Model.predict` adds them), with the function's own exception chained.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

from ..errors import ModelOutputError
from ..tasks import LABEL_TASKS, Embedding, Entities, Generation, Invalid, Label, Prediction, Span
from ..tasks.checks import score_problem
from .base import Backend

__all__ = ["CallableBackend", "coerce_prediction"]

_EXPECTED = {
    "generate": "a str",
    "embed": "a sequence of numbers",
    "ner": "a list of (start, end, label) or dicts with those keys",
}
_LABEL_EXPECTED = "a label str, a (label, score) pair or a dict with 'label' and 'score'"
# What a user function may answer per item: anything else is a function of the wrong kind (ModelOutputError).
_READABLE = (Prediction, str, Mapping, tuple, list, numbers.Number, type(None))


def _readable(value) -> bool:
    return isinstance(value, _READABLE) or hasattr(value, "__array__") or hasattr(value, "__iter__")


def _invalid(value, reason: str) -> Invalid:
    return Invalid(f"{value!r:.200}", reason)


def _label(value):
    if isinstance(value, str):
        return Label(value)
    if isinstance(value, Mapping) and "label" in value:
        label, score = value["label"], value.get("score")
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        label, score = value
    else:
        return _invalid(value, f"the callable returned {type(value).__name__} {value!r:.80}; expected {_LABEL_EXPECTED}")
    if not isinstance(label, str) or not label.strip():
        return _invalid(value, f"the label {label!r:.80} is not a non-empty str")
    problem = score_problem(score)
    if problem:
        return _invalid(value, problem)
    return Label(label, None if score is None else float(score))


def _entities(value, text: str):
    if not isinstance(value, (tuple, list)):
        return _invalid(value, f"the callable returned {type(value).__name__}; expected {_EXPECTED['ner']}")
    spans = []
    for item in value:
        if isinstance(item, Span):
            spans.append(item)
            continue
        if isinstance(item, Mapping):
            parts = (item.get("start"), item.get("end"), item.get("label"))
        elif isinstance(item, (tuple, list)) and len(item) >= 3:
            parts = tuple(item[:3])
        else:
            return _invalid(value, f"the span {item!r:.80} is not (start, end, label)")
        start, end, label = parts
        if any(isinstance(x, bool) or not isinstance(x, numbers.Integral) for x in (start, end)) or not isinstance(
                label, str):
            return _invalid(value, f"the span {item!r:.80} needs int start and end and a str label")
        start, end = int(start), int(end)
        spans.append(Span(start, end, label, text[start:end] if 0 <= start < end <= len(text) else ""))
    return Entities(tuple(spans))  # offsets, order and overlaps are checked with every backend's (tasks.checks)


def coerce_prediction(task: str, value, text: str) -> Prediction:
    """Turn what a user function returned for one input into the task's prediction type (`Invalid`
    with the reason when it cannot be read as one)."""
    if isinstance(value, Prediction):
        return value
    if not _readable(value):
        expected = _EXPECTED.get(task, _LABEL_EXPECTED)
        raise ModelOutputError(f"the callable returned {value!r:.200} (type {type(value).__name__}) for task {task!r}; "
                               f"it must return {expected} per input")
    if value is None:
        return _invalid(value, "the callable returned None for this input")
    if task in LABEL_TASKS:
        return _label(value)
    if task == "ner":
        return _entities(value, text)
    if task == "generate":
        return Generation(value) if isinstance(value, str) else _invalid(value, "the callable must return a str")
    if task == "embed":
        import numpy as np

        try:
            return Embedding(np.asarray(value, dtype=np.float32).reshape(-1))
        except (TypeError, ValueError):
            return _invalid(value, f"the callable must return {_EXPECTED['embed']}")
    return _invalid(value, f"task {task!r} takes no answers from a callable")


class CallableBackend(Backend):
    name = "callable"
    cpu_only = True

    def __init__(self, task: str, device: str, dtype: str | None, fn):
        super().__init__(task, device, dtype)
        self.fn = fn

    def load(self) -> None:
        pass

    def _call(self, chunk: list[str]) -> list:
        try:
            values = self.fn(chunk)
        except Exception as error:
            raise ModelOutputError(f"the callable raised {type(error).__name__}: {error!s:.300}") from error
        if values is None or isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
            raise ModelOutputError(f"the callable returned {type(values).__name__} {values!r:.80}; it must return "
                                   "a list with one output per input, in order")
        try:
            values = list(values)
        except Exception as error:
            raise ModelOutputError(f"the callable's output could not be read as a list: {type(error).__name__}: "
                                   f"{error!s:.200}") from error
        if len(values) != len(chunk):
            raise ModelOutputError(f"the callable returned {len(values)} outputs for {len(chunk)} inputs; it must "
                                   "return one per input, in order")
        return values

    def predict(self, texts, request):
        def step(batch):
            chunk = [texts[i] for i in batch]
            try:
                values = self._call(chunk)
            except ModelOutputError as error:
                error.batch_start = batch[0]  # Model.predict names the model and this input's position
                raise
            return [coerce_prediction(request.task, v, t) for v, t in zip(values, chunk)]

        return request.batches([len(t) for t in texts], step, torch_inference=False)

    def version(self) -> str | None:
        return getattr(self.fn, "__qualname__", None)

    def close(self) -> None:
        self.fn = None
