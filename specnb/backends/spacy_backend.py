"""spaCy pipelines for named-entity recognition."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import MissingDependencyError, NotAModelError
from ..tasks import Entities, Span
from .base import FileBackend

__all__ = ["SpacyBackend", "is_spacy_pipeline", "find_spacy_data_dir"]


def is_spacy_pipeline(path: Path) -> bool:
    return (path / "meta.json").is_file() and (path / "config.cfg").is_file()


def find_spacy_data_dir(package_dir: Path) -> Path | None:
    """A pip-installed spaCy model keeps its pipeline in ``<package>/<name>-<version>/``."""
    if is_spacy_pipeline(package_dir):
        return package_dir
    for child in sorted(package_dir.iterdir()):
        if child.is_dir() and is_spacy_pipeline(child):
            return child
    return None


class SpacyBackend(FileBackend):
    name = "spacy"

    def load(self) -> None:
        try:
            import spacy
        except ImportError as exc:
            raise MissingDependencyError("the spaCy backend needs spaCy: pip install 'spacy>=3.8,<3.9'") from exc
        try:
            nlp = spacy.load(self.path)
        except (OSError, ImportError, ValueError, TypeError, KeyError) as exc:  # ConfigValidationError: ValueError
            first = (str(exc).strip().splitlines() or [""])[0]
            raise NotAModelError(f"{str(self.path)!r} is not a spaCy pipeline spaCy {spacy.__version__} can load "
                                 f"({type(exc).__name__}: {first}): check its meta.json and config.cfg, or save it "
                                 "again with nlp.to_disk") from exc
        # Entities need only the tokenizer, tok2vec and ner; the rest would cost time for nothing.
        keep = {"tok2vec", "ner"}
        nlp.select_pipes(disable=[name for name in nlp.pipe_names if name not in keep])
        self.model = nlp

    def labels(self):
        return tuple(self.model.get_pipe("ner").labels) if "ner" in self.model.pipe_names else ()

    def predict(self, texts, request):
        nlp = self.model

        def step(batch):
            docs = nlp.pipe([texts[i] for i in batch], batch_size=len(batch))
            return [
                Entities(tuple(Span(e.start_char, e.end_char, e.label_, e.text) for e in doc.ents)) for doc in docs
            ]

        return request.batches([len(t) for t in texts], step, torch_inference=False)

    def version(self) -> str | None:
        meta = json.loads((self.path / "meta.json").read_text())
        return f"{meta.get('lang', '')}_{meta.get('name', '')} {meta.get('version', '')}".strip()
