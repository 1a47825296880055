"""specnb's Jupyter widgets (anywidget): the model panel, the compare view, the pipeline view and the training
view.

Each is traitlets plus one built ESM file in ``specnb/static/`` (sources in ``js/``). They show what the
Python objects hold and call the public API; nothing here is needed outside Jupyter. `display` registers
how the core's results show in a kernel (a `Comparison` as the compare view, a `Pipeline` as the pipeline
view).
"""

from __future__ import annotations

__all__ = ["ModelPanel", "CompareView", "PipelineView", "TrainingView"]


def __getattr__(name):
    if name == "ModelPanel":
        from .model_panel import ModelPanel

        return ModelPanel
    if name == "CompareView":
        from .compare_view import CompareView

        return CompareView
    if name == "PipelineView":
        from .pipeline_view import PipelineView

        return PipelineView
    if name == "TrainingView":
        from .training_view import TrainingView

        return TrainingView
    raise AttributeError(f"module 'specnb.widgets' has no attribute {name!r}")
