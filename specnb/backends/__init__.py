"""Backends (transformers, GGUF, fastText, spaCy, lexicon, callable), device choice and the model registry."""

from .registry import Model, ModelRegistry, registry

__all__ = ["Model", "ModelRegistry", "registry"]
