"""sentiment: classify over positive / negative / neutral."""

from __future__ import annotations

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

    label_kind = f"among {', '.join(SENTIMENT_LABELS)} (or pos, neg, neu)"
    same_kind = "sentiment"

    def canonical(self, label):
        return sentiment_label(label)

    def synonyms(self, label: str) -> tuple[str, ...]:
        return tuple(k for k, v in SENTIMENT_SYNONYMS.items() if v == label and k != label)

    def default_prompt(self) -> Prompt:
        # No label list: rank scoring already keeps the answer in the label space, and a listed
        # set anchors small models on its first label (see `specnb.tasks.classify`).
        return Prompt("What is the sentiment of this text?", answer="The sentiment of this text is")


SENTIMENT = Sentiment()
