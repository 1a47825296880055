"""The progress bars of long work (a model's run, a comparison): `bar` makes one.

Outside a notebook it is ``tqdm.auto``'s bar. The notebook layer may put its own in place
(`use`): specnb's widgets do, so that a finished bar in a saved notebook is a line of text rather
than a widget whose model is gone when the notebook reopens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["bar", "use"]

_factory: Callable[..., Any] | None = None


def use(factory: Callable[..., Any] | None) -> None:
    """Make `bar` call ``factory`` (tqdm's keyword arguments; None: back to ``tqdm.auto``)."""
    global _factory
    _factory = factory


def bar(**kwargs):
    """A tqdm-compatible progress bar (``total``, ``desc``, ``unit``, ``delay``, ``leave``, ``disable``…)."""
    if _factory is not None:
        return _factory(**kwargs)
    from tqdm.auto import tqdm

    return tqdm(**kwargs)
