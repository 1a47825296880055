"""The main job on the embedded offline defaults (`make demo`, ``specnb demo``).

For now: load every embedded model, run each on a few built-in examples, and report model, task,
device, load seconds, memory and sample outputs. Later issues grow it into the full comparison.
"""

from __future__ import annotations

from .catalog import ENTRIES
from .settings import format_bytes
from .tasks import Embedding, Entities, Generation, Label

__all__ = ["EXAMPLES", "run_demo", "describe"]

EXAMPLES: dict[str, list[str]] = {
    "langid": [
        "Bonjour tout le monde, comment allez-vous ?",
        "Guten Morgen zusammen, wie geht es euch?",
        "¿Dónde está la estación de tren más cercana?",
        "The weather in London is lovely today.",
        "Questa pizza è davvero buonissima.",
    ],
    "sentiment": [
        "I absolutely loved this film, the acting was wonderful!",
        "The service was slow and the food arrived cold.",
        "The meeting is scheduled for Tuesday at noon.",
    ],
    "ner": [
        "Angela Merkel met Emmanuel Macron in Paris on Monday.",
        "Apple opened a new office in Berlin, said Tim Cook.",
    ],
    "embed": [
        "A cat sits on the mat.",
        "A kitten is resting on a rug.",
        "Stock markets fell sharply on Friday.",
    ],
    "generate": [
        "What is the capital of France? Answer in one sentence.",
    ],
}


def describe(prediction) -> str:
    """A short human-readable form of one prediction."""
    if isinstance(prediction, Label):
        score = "" if prediction.score is None else f" ({prediction.score:.2f})"
        return f"{prediction.label}{score}"
    if isinstance(prediction, Entities):
        return ", ".join(f"{s.text}/{s.label}" for s in prediction.spans) or "(no entities)"
    if isinstance(prediction, Embedding):
        return f"{len(prediction.vector)}-d vector"
    if isinstance(prediction, Generation):
        return repr(prediction.text)
    return repr(prediction)


def _embedding_note(predictions) -> str:
    import numpy as np

    vectors = np.stack([p.vector for p in predictions])
    sims = vectors @ vectors.T
    return f"cos(text1, text2)={sims[0, 1]:.2f}, cos(text1, text3)={sims[0, 2]:.2f}"


def run_demo(names=None, *, device: str = "auto"):
    """Load each embedded model, predict on `EXAMPLES`, return (summary DataFrame, samples).

    ``samples`` maps model name to a list of (input, output) pairs.
    """
    import pandas as pd

    from . import load

    names = list(names or [e.name for e in ENTRIES.values() if e.embedded])
    rows, samples = [], {}
    for name in names:
        model = load(name, device=device)
        texts = EXAMPLES[model.task]
        predictions = model.predict(texts)
        pairs = [(t, describe(p)) for t, p in zip(texts, predictions)]
        if model.task == "embed":
            pairs.append(("similarity", _embedding_note(predictions)))
        samples[name] = pairs
        rows.append(
            {
                "model": name,
                "task": model.task,
                "role": model.role,
                "device": model.device,
                "dtype": model.dtype or "-",
                "load s": round(model.load_seconds, 2),
                "weights": format_bytes(model.weight_bytes),
                "memory": format_bytes(model.memory_bytes),
                "items/s": round(model.last_run.items_per_second, 1),
                "sample output": pairs[0][1] if len(pairs[0][1]) <= 40 else pairs[0][1][:37] + "...",
            }
        )
    return pd.DataFrame(rows), samples
