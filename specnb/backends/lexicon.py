"""VADER: rule-based sentiment from a lexicon."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..engine import run_batches
from ..errors import MissingDependencyError
from ..tasks import Label
from .base import Backend

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


class VaderBackend(Backend):
    name = "lexicon"
    cpu_only = True

    def __init__(self, task: str, device: str, dtype: str | None, lexicon_path: Path):
        super().__init__(task, device, dtype)
        self.lexicon_path = Path(lexicon_path)
        self.analyzer = None

    def load(self) -> None:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as exc:
            raise MissingDependencyError("the 'vader' model needs vaderSentiment: pip install vadersentiment") from exc
        self.analyzer = SentimentIntensityAnalyzer(lexicon_file=str(self.lexicon_path))

    def predict(self, texts, batch_size):
        analyzer = self.analyzer

        def step(batch):
            return [vader_label(analyzer.polarity_scores(texts[i])["compound"]) for i in batch]

        return run_batches([len(t) for t in texts], step, batch_size=batch_size, torch_inference=False)

    def weight_bytes(self) -> int:
        return self.lexicon_path.stat().st_size

    def version(self) -> str | None:
        try:
            return version("vadersentiment")
        except PackageNotFoundError:
            return None

    def close(self) -> None:
        self.analyzer = None
