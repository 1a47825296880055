"""Task names and the typed predictions each task returns.

Later issues give every task its own module (label space, validation, generalist prompt and parser);
this package is where they live.
"""

from __future__ import annotations

from .types import Embedding, Entities, Generation, Label, Prediction, Span

__all__ = [
    "TASKS",
    "LABEL_TASKS",
    "SENTIMENT_LABELS",
    "sentiment_label",
    "check_task",
    "Prediction",
    "Label",
    "Span",
    "Entities",
    "Embedding",
    "Generation",
]

# task -> what a prediction holds
TASKS = {
    "classify": "a label from a label set, with a score",
    "sentiment": "positive / negative / neutral, with a score",
    "langid": "an ISO 639-1 language code, with a score",
    "ner": "entity spans with character offsets",
    "embed": "a vector",
    "generate": "free text",
}
LABEL_TASKS = ("classify", "sentiment", "langid")
SENTIMENT_LABELS = ("positive", "negative", "neutral")
# How sentiment classifiers spell their labels, mapped to SENTIMENT_LABELS.
SENTIMENT_SYNONYMS = {
    "positive": "positive", "pos": "positive",
    "negative": "negative", "neg": "negative",
    "neutral": "neutral", "neu": "neutral",
}


def sentiment_label(label: str) -> str | None:
    """``'POSITIVE'`` / ``'pos'`` -> ``'positive'``; None when the label is not a sentiment."""
    return SENTIMENT_SYNONYMS.get(label.strip().lower())


def check_task(task: str, supported=None) -> str:
    """Return ``task`` if known (and in ``supported`` when given); TaskError listing valid ones otherwise."""
    from ..errors import TaskError

    if task not in TASKS:
        raise TaskError(
            f"unknown task {task!r}; valid tasks: "
            + ", ".join(f"{name} ({what})" for name, what in TASKS.items())
        )
    if supported is not None and task not in supported:
        raise TaskError(f"this model cannot serve task {task!r}; valid tasks for it: {', '.join(supported)}")
    return task
