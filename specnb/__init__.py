"""specnb: specialist vs generalist models, side by side, inside Jupyter.

The public API lives here, re-exported from the modules that define it; ``__all__`` lists it exactly.
``import specnb`` imports neither torch, pandas, IPython nor any widget library. Imported inside a
running Jupyter kernel, it registers how its results show there (`specnb.widgets.display`).
"""

import sys as _sys

from . import errors as _errors
from ._catalog import catalog
from ._compare import Comparison, compare, delete_run, get_run, runs
from ._specialize import LearningCurve, TrainingMonitor, learning_curve, specialize
from .backends.model import Model
from .backends.model_registry import get, load, models, registry, unload
from .compose import Pipeline, stage
from .errors import *  # noqa: F403  (the SpecnbError tree, listed in errors.__all__)
from .settings import config
from .tasks import TASKS, Embedding, Entities, Generation, Invalid, Label, Prompt, Span

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "catalog",
    "config",
    "compare",
    "specialize",
    "learning_curve",
    "LearningCurve",
    "TrainingMonitor",
    "Comparison",
    "runs",
    "get_run",
    "delete_run",
    "Pipeline",
    "stage",
    "load",
    "unload",
    "models",
    "get",
    "registry",
    "Model",
    "TASKS",
    "Label",
    "Span",
    "Entities",
    "Embedding",
    "Generation",
    "Invalid",
    "Prompt",
    *_errors.__all__,
]


def load_ipython_extension(ipython) -> None:
    """``%load_ext specnb``: register the ``%specnb`` / ``%%specnb`` magics (and, in a kernel, the widgets)."""
    from .magics import load_ipython_extension as _load

    _load(ipython)


def _register_display() -> None:
    """Inside a running Jupyter kernel, show results as widgets (without ``%load_ext``). Only when IPython is
    already imported (a kernel always has): a plain script never imports it."""
    if "IPython" in _sys.modules:
        from .widgets.display import register

        register()


_register_display()
