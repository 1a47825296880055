"""specialize: train a specialist in the notebook from labelled texts, save it as a plain transformers folder,
and compare it at once (`specialize`)."""

from .data import TRAINED_TASKS
from .train import METHODS, specialize

__all__ = ["specialize", "METHODS", "TRAINED_TASKS"]
