"""sentiment: classify over positive / negative / neutral."""

from __future__ import annotations

from ..errors import TaskError
from .base import LabelTask
from .prompts import Prompt

__all__ = ["Sentiment", "SENTIMENT", "SENTIMENT_LABELS", "SENTIMENT_SYNONYMS", "sentiment_label"]

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


class Sentiment(LabelTask):
    name = "sentiment"
    description = "positive / negative / neutral, with a score"
    default_labels = SENTIMENT_LABELS

    def label_space(self, labels):
        if labels is None:
            return SENTIMENT_LABELS
        checked = super().label_space(labels)
        unknown = [x for x in checked if sentiment_label(x) is None]
        if unknown:
            raise TaskError(f"sentiment labels must be among {', '.join(SENTIMENT_LABELS)}; {unknown} are not")
        mapped = tuple(sentiment_label(x) for x in checked)
        if len(set(mapped)) < len(mapped):
            raise TaskError(f"sentiment labels {list(checked)} name the same sentiment twice ({list(mapped)}); give each once")
        return mapped

    def synonyms(self, label: str) -> tuple[str, ...]:
        return tuple(k for k, v in SENTIMENT_SYNONYMS.items() if v == label and k != label)

    def default_prompt(self) -> Prompt:
        return Prompt("What is the sentiment of the text? Answer with one word: {labels}.")


SENTIMENT = Sentiment()
