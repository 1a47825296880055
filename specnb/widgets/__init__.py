"""specnb's Jupyter widgets (anywidget): the model panel and the compare view.

Each is traitlets plus one built ESM file in ``specnb/static/`` (sources in ``js/``). They show what the
Python objects hold and call the public API; nothing here is needed outside Jupyter.
"""

from __future__ import annotations

__all__ = ["ModelPanel", "CompareView"]


def __getattr__(name):
    if name == "ModelPanel":
        from .model_panel import ModelPanel

        return ModelPanel
    if name == "CompareView":
        from .compare_view import CompareView

        return CompareView
    raise AttributeError(f"module 'specnb.widgets' has no attribute {name!r}")
