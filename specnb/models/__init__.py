"""Backends, device choice and the model registry."""

from .registry import Model, ModelRegistry, registry

__all__ = ["Model", "ModelRegistry", "registry"]
