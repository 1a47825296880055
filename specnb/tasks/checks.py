"""Checks on every prediction a backend makes, before it reaches the caller.

`check_prediction` holds each answer to what its type promises: a score is a number in [0, 1], a span
lies inside its input, covers ``text == input[start:end]`` and overlaps no other span, an embedding is
finite. An answer that breaks a promise becomes `Invalid` with the reason; it is never raised and never
silently repaired (a score off by rounding, within 1e-6, is put back in range; spans are put in text
order).
"""

from __future__ import annotations

import math
import numbers

from .types import Embedding, Entities, Generation, Invalid, Label, Prediction, Span

__all__ = ["check_prediction", "score_problem"]

_ROUNDING = 1e-6


def _shown(value) -> str:
    return f"{value!r:.200}"


def score_problem(score) -> str | None:
    """Why ``score`` is no score (None is one: the model gives none), or None."""
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, numbers.Real):
        return f"the score {_shown(score)} is not a number"
    value = float(score)
    if math.isnan(value):
        return "the score is NaN"
    if not -_ROUNDING <= value <= 1 + _ROUNDING:
        return f"the score {value!r} is outside [0, 1]"
    return None


def _clamped(score):
    return None if score is None else min(1.0, max(0.0, float(score)))


def _is_offset(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _span_problem(span, text: str) -> str | None:
    if not isinstance(span, Span):
        return f"{_shown(span)} is not a Span"
    where = f"span ({span.start!r}, {span.end!r}, {span.label!r})"
    if not _is_offset(span.start) or not _is_offset(span.end):
        return f"{where}: start and end must be ints"
    if not 0 <= span.start < span.end <= len(text):
        return f"{where} is not inside the text of {len(text)} characters (0 <= start < end <= len(text))"
    if not isinstance(span.label, str) or not span.label:
        return f"{where}: the label must be a non-empty str"
    if span.text != text[span.start:span.end]:
        return f"{where}: its text {span.text!r:.80} is not input[start:end] ({text[span.start:span.end]!r:.80})"
    problem = score_problem(span.score)
    return f"{where}: {problem}" if problem else None


def _check_entities(prediction: Entities, text: str) -> Prediction:
    spans = prediction.spans
    if not isinstance(spans, (tuple, list)):
        return Invalid(_shown(spans), "the spans are not a tuple of Span")
    for span in spans:
        problem = _span_problem(span, text)
        if problem:
            return Invalid(_shown(prediction), problem)
    ordered = sorted(spans, key=lambda s: (s.start, s.end))
    for before, after in zip(ordered, ordered[1:]):
        if after.start < before.end:
            return Invalid(_shown(prediction), f"spans ({before.start}, {before.end}) and ({after.start}, {after.end}) "
                                               "overlap; entity spans never do")
    spans = tuple(s if s.score is None else Span(int(s.start), int(s.end), s.label, s.text, _clamped(s.score))
                  for s in ordered)
    return prediction if spans == tuple(prediction.spans) else Entities(spans)


def check_prediction(prediction, text: str, kind: type) -> Prediction:
    """``prediction`` if it keeps its type's promises for input ``text`` and is a ``kind`` (the task's
    prediction type); `Invalid` with the reason otherwise."""
    if isinstance(prediction, Invalid):
        return prediction
    if not isinstance(prediction, kind):
        return Invalid(_shown(prediction), f"a {type(prediction).__name__} is not a {kind.__name__}, "
                                           "the prediction this task gives")
    if isinstance(prediction, Label):
        if not isinstance(prediction.label, str) or not prediction.label.strip():
            return Invalid(_shown(prediction), f"the label {prediction.label!r:.80} is not a non-empty str")
        problem = score_problem(prediction.score)
        if problem:
            return Invalid(_shown(prediction), problem)
        clamped = _clamped(prediction.score)
        return prediction if clamped == prediction.score else Label(prediction.label, clamped)
    if isinstance(prediction, Entities):
        return _check_entities(prediction, text)
    if isinstance(prediction, Embedding):
        import numpy as np

        try:
            vector = np.asarray(prediction.vector, dtype=np.float32)
        except (TypeError, ValueError):
            return Invalid(_shown(prediction.vector), "the embedding is not a vector of numbers")
        if vector.ndim != 1 or vector.size == 0:
            return Invalid(_shown(prediction.vector), f"the embedding has shape {vector.shape}, not one non-empty vector")
        if not np.isfinite(vector).all():
            return Invalid(_shown(prediction.vector), "the embedding holds NaN or infinite values")
        return prediction
    if isinstance(prediction, Generation) and not isinstance(prediction.text, str):
        return Invalid(_shown(prediction.text), "the generated text is not a str")
    return prediction
