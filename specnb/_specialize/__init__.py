"""specialize: train a specialist in the notebook from labelled texts, save it as a plain transformers folder,
and compare it at once (`specialize`)."""

from .curve import LearningCurve, learning_curve
from .data import SPECIALIZE_TASKS, TRAINED_TASKS
from .monitor import TrainingMonitor
from .train import METHODS, specialize

__all__ = ["specialize", "learning_curve", "LearningCurve", "METHODS", "TRAINED_TASKS", "SPECIALIZE_TASKS",
           "TrainingMonitor"]
