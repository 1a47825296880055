"""VADER: rule-based sentiment from a lexicon."""

from __future__ import annotations

from ..errors import MissingDependencyError
from ..tasks import SENTIMENT_LABELS, Label
from .base import FileBackend

__all__ = ["VaderBackend", "vader_label"]

# VADER's own convention: compound >= 0.05 positive, <= -0.05 negative, else neutral.
_THRESHOLD = 0.05


def vader_label(compound: float) -> Label:
    """Map VADER's compound score in [-1, 1] to a sentiment label and a score in [0, 1]."""
    if compound >= _THRESHOLD:
        return Label("positive", (1 + compound) / 2)
    if compound <= -_THRESHOLD:
        return Label("negative", (1 - compound) / 2)
    return Label("neutral", 1 - abs(compound))


class VaderBackend(FileBackend):
    name = "lexicon"
    package = "vadersentiment"

    def load(self) -> None:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as exc:
            raise MissingDependencyError("the 'vader' model needs vaderSentiment: pip install vadersentiment") from exc
        self.model = SentimentIntensityAnalyzer(lexicon_file=str(self.path))

    def labels(self):
        return SENTIMENT_LABELS

    def predict(self, texts, request):
        analyzer = self.model

        def step(batch):
            return [vader_label(analyzer.polarity_scores(texts[i])["compound"]) for i in batch]

        return request.batches([len(t) for t in texts], step, torch_inference=False)
