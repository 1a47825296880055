"""Zero-shot labels from an embedding model: the label whose description is most similar.

An encoder that serves ``embed`` also answers ``classify`` and ``sentiment``: the texts and the
labels' descriptions are embedded by the same model, and each text gets the label whose
description is nearest by cosine similarity. Scores are a softmax over the similarities (divided
by `TEMPERATURE`), so they sum to one over the label space like a generalist's.
"""

from __future__ import annotations

import dataclasses
import time

from ..tasks import Embedding, Invalid, Label
from .base import Backend, Request

__all__ = ["ZERO_SHOT_TASKS", "TEMPERATURE", "zero_shot"]

#: Label tasks an embedding model answers by similarity to label descriptions.
ZERO_SHOT_TASKS = ("classify", "sentiment")
#: Sentence-embedding cosines sit in a narrow band; dividing by this spreads them into probabilities.
TEMPERATURE = 0.05


def _unit_rows(vectors):
    import numpy as np

    matrix = np.stack([np.asarray(v, dtype=np.float32) for v in vectors])
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def zero_shot(backend: Backend, texts, request: Request, descriptions: dict[str, str], cache: dict):
    """(one `Label` per text, `RunStats`) for ``request.labels``, each label embedded as its
    description (the label itself when it has none). ``cache`` keeps label embeddings between calls."""
    import numpy as np

    labels = request.labels
    phrases = tuple(descriptions.get(label) or label for label in labels)
    started = time.perf_counter()
    if phrases not in cache:
        embedded, _ = backend.predict(list(phrases), dataclasses.replace(request, task="embed", progress=False))
        cache[phrases] = _unit_rows([e.vector for e in embedded])
    label_seconds = time.perf_counter() - started
    outputs, stats = backend.predict(texts, dataclasses.replace(request, task="embed"))
    stats.add_shared(label_seconds)
    ran = [i for i, out in enumerate(outputs) if isinstance(out, Embedding)]
    results = list(outputs)
    if ran:
        sims = _unit_rows([outputs[i].vector for i in ran]) @ cache[phrases].T
        logits = sims / TEMPERATURE
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        for row, i in enumerate(ran):
            best = int(np.argmax(probs[row]))
            results[i] = Label(labels[best], float(probs[row, best]))
    return [r if isinstance(r, (Label, Invalid)) else Invalid("", "no embedding") for r in results], stats
