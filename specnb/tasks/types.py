"""Prediction types: one typed value per input, whatever the backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Prediction", "Label", "Span", "Entities", "Embedding", "Generation"]


@dataclass(frozen=True)
class Prediction:
    """Base of every prediction."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Label(Prediction):
    """A label (classify, sentiment, langid) and its score in [0, 1] (None when the model gives none)."""

    label: str
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": self.score}


@dataclass(frozen=True)
class Span:
    """An entity: ``text == input[start:end]``."""

    start: int
    end: int
    label: str
    text: str
    score: float | None = None


@dataclass(frozen=True)
class Entities(Prediction):
    """The entity spans found in one input, in text order."""

    spans: tuple[Span, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"spans": [s.__dict__.copy() for s in self.spans]}


@dataclass(frozen=True, eq=False)
class Embedding(Prediction):
    """A vector (numpy float32 array)."""

    vector: Any

    def __eq__(self, other) -> bool:
        import numpy as np

        return isinstance(other, Embedding) and np.array_equal(self.vector, other.vector)

    __hash__ = None

    def to_dict(self) -> dict[str, Any]:
        return {"vector": [float(v) for v in self.vector]}


@dataclass(frozen=True)
class Generation(Prediction):
    """Generated text."""

    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text}
