"""Tasks: one module each, defining its label space, prediction type, input checks and the
generalist's prompt and parser.

``TASKS`` maps each task name to what its predictions hold; `get_task` gives the task object.
"""

from __future__ import annotations

from .base import LabelTask, Task
from .classify import CLASSIFY
from .embed import EMBED
from .generate import GENERATE
from .langid import LANGID
from .ner import NER
from .prompts import Prompt
from .sentiment import SENTIMENT, SENTIMENT_LABELS, SENTIMENT_SYNONYMS, sentiment_label
from .types import Embedding, Entities, Generation, Invalid, Label, Prediction, Span, prediction_from_dict

__all__ = [
    "TASKS",
    "LABEL_TASKS",
    "SENTIMENT_LABELS",
    "SENTIMENT_SYNONYMS",
    "sentiment_label",
    "check_task",
    "get_task",
    "Task",
    "LabelTask",
    "Prompt",
    "Prediction",
    "prediction_from_dict",
    "Label",
    "Span",
    "Entities",
    "Embedding",
    "Generation",
    "Invalid",
]

_TASK_OBJECTS: dict[str, Task] = {t.name: t for t in (CLASSIFY, SENTIMENT, LANGID, NER, EMBED, GENERATE)}
# task -> what a prediction holds
TASKS = {name: task.description for name, task in _TASK_OBJECTS.items()}
LABEL_TASKS = tuple(name for name, task in _TASK_OBJECTS.items() if task.ranked)


def check_task(task: str, supported=None) -> str:
    """Return ``task`` if known (and in ``supported`` when given); TaskError listing valid ones otherwise."""
    from ..errors import TaskError

    if not isinstance(task, str):
        raise TaskError(f"task= must be one task name (a str), got {type(task).__name__} {task!r:.80}; valid tasks: "
                        f"{', '.join(TASKS)}")
    if task not in TASKS:
        import difflib

        close = difflib.get_close_matches(task.strip().lower(), TASKS, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise TaskError(f"unknown task {task!r}; {hint}valid tasks: {', '.join(TASKS)} (specnb.TASKS says what each predicts)")
    if supported is not None and task not in supported:
        raise TaskError(f"this model cannot serve task {task!r}; valid tasks for it: {', '.join(supported)}")
    return task


def get_task(task: str) -> Task:
    """The task object called ``task`` (TaskError listing the valid ones otherwise)."""
    return _TASK_OBJECTS[check_task(task)]
