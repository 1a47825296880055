"""Any Python callable as a model: ``fn(list_of_texts) -> list_of_outputs``."""

from __future__ import annotations

from ..errors import ModelOutputError
from ..tasks import LABEL_TASKS, Embedding, Entities, Generation, Label, Prediction, Span
from .base import Backend

__all__ = ["CallableBackend", "coerce_prediction"]


def coerce_prediction(task: str, value, text: str) -> Prediction:
    """Turn what a user function returned into the task's prediction type."""
    if isinstance(value, Prediction):
        return value
    if task in LABEL_TASKS:
        if isinstance(value, str):
            return Label(value)
        if isinstance(value, dict) and "label" in value:
            score = value.get("score")
            return Label(str(value["label"]), None if score is None else float(score))
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return Label(str(value[0]), float(value[1]))
    elif task == "generate" and isinstance(value, str):
        return Generation(value)
    elif task == "embed":
        import numpy as np

        try:
            return Embedding(np.asarray(value, dtype=np.float32).reshape(-1))
        except (TypeError, ValueError):
            pass
    elif task == "ner" and isinstance(value, (list, tuple)):
        spans = []
        for item in value:
            start, end, label = (item["start"], item["end"], item["label"]) if isinstance(item, dict) else item[:3]
            spans.append(Span(int(start), int(end), str(label), text[int(start) : int(end)]))
        return Entities(tuple(spans))
    expected = {
        "generate": "a str",
        "embed": "a sequence of numbers",
        "ner": "a list of (start, end, label) or dicts with those keys",
    }.get(task, "a label str, a (label, score) pair or a dict with 'label' and 'score'")
    raise ModelOutputError(f"the callable returned {value!r:.200} (type {type(value).__name__}) for task {task!r}; "
                           f"it must return {expected} per input")


class CallableBackend(Backend):
    name = "callable"
    cpu_only = True

    def __init__(self, task: str, device: str, dtype: str | None, fn):
        super().__init__(task, device, dtype)
        self.fn = fn

    def load(self) -> None:
        pass

    def predict(self, texts, request):
        def step(batch):
            chunk = [texts[i] for i in batch]
            values = list(self.fn(chunk))
            if len(values) != len(chunk):
                raise ModelOutputError(f"the callable returned {len(values)} outputs for {len(chunk)} inputs; it must "
                                       "return one per input, in order")
            return [coerce_prediction(request.task, v, t) for v, t in zip(values, chunk)]

        return request.batches([len(t) for t in texts], step, torch_inference=False)

    def version(self) -> str | None:
        return getattr(self.fn, "__qualname__", None)

    def close(self) -> None:
        self.fn = None
