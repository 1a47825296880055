"""Prediction types: one typed value per input, whatever the backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Prediction", "Label", "Span", "Entities", "Embedding", "Generation", "Invalid", "prediction_from_dict"]


@dataclass(frozen=True)
class Prediction:
    """Base of every prediction."""

    #: False only for `Invalid`: the model's answer could not be read as the task's prediction.
    valid = True

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


@dataclass(frozen=True)
class Invalid(Prediction):
    """An answer that could not be read as the task's prediction (or an input that could not be run).

    Counted in a comparison's validity rate; never raised and never dropped.

    Attributes
    ----------
    raw : str
        What the model wrote (empty when the input never reached it).
    reason : str
        Why it is invalid, in words.
    """

    raw: str
    reason: str
    valid = False

    def to_dict(self) -> dict[str, Any]:
        return {"invalid": True, "raw": self.raw, "reason": self.reason}


def prediction_from_dict(data: dict[str, Any]) -> Prediction:
    """The prediction whose `to_dict` gave ``data`` (the run store keeps predictions this way)."""
    if data.get("invalid"):
        return Invalid(data.get("raw", ""), data.get("reason", ""))
    if "label" in data:
        return Label(data["label"], data.get("score"))
    if "spans" in data:
        return Entities(tuple(Span(**span) for span in data["spans"]))
    if "vector" in data:
        import numpy as np

        return Embedding(np.asarray(data["vector"], dtype=np.float32))
    if "text" in data:
        return Generation(data["text"])
    from ..errors import StoreError

    raise StoreError(f"not a stored prediction: {data!r:.200}; the run store holds an entry this version of specnb "
                     "cannot read: delete that run (specnb.delete_run) or read it with the version that wrote it")
