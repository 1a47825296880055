"""The machinery that holds models: backends (transformers, GGUF, fastText, spaCy, lexicon, callable), device
and dtype choice (`device`), load planning (`resolve`, `folder`), the `Model` handle (`model`) and the
kernel's registry (`model_registry`)."""

from .model import Model
from .model_registry import ModelRegistry, registry

__all__ = ["Model", "ModelRegistry", "registry"]
