"""What the widgets share: the built front-end files, JSON-safe trait values and the static ``text/html`` snapshot."""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import MissingDependencyError
from ..tasks.base import is_missing

STATIC = Path(__file__).resolve().parents[1] / "static"


def static_file(name: str) -> str:
    """The text of a built front-end file in ``specnb/static/``."""
    path = STATIC / name
    if not path.is_file():
        raise MissingDependencyError(
            f"specnb's widget front end {path} is missing: build it with `make js` (or `npm ci && npm run build` "
            "in js/), or install specnb from a wheel, which ships it"
        )
    return path.read_text(encoding="utf-8")


def json_value(value, *, cut: int | None = None, max_depth: int | None = None):
    """``value`` as a widget trait (JSON) carries it: numpy scalars and arrays unwrapped, NaN / inf / NA /
    NaT as None, integers past 2**53 as text, dicts and lists converted item by item (nested deeper than
    ``max_depth``: as text), strings longer than ``cut`` cut with their length noted, anything else as
    its ``str``."""
    import numpy as np

    def convert(value, depth: int):
        if isinstance(value, np.generic):
            value = value.item()
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value if abs(value) < 2**53 else str(value)
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, str):
            return value if cut is None or len(value) <= cut else value[:cut] + f"… ({len(value):,} characters)"
        if max_depth is None or depth < max_depth:
            if isinstance(value, dict):
                return {str(k): convert(v, depth + 1) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [convert(v, depth + 1) for v in value]
            if isinstance(value, np.ndarray):  # embeddings, figure data
                return convert(value.tolist(), depth)
        if is_missing(value) or type(value).__name__ == "NaTType":
            return None
        return convert(str(value), depth)

    return convert(value, 0)


def widget_base():
    """anywidget's base class, with a clear error when the notebook extra is not installed."""
    try:
        import anywidget
    except ImportError as error:
        raise MissingDependencyError(
            "specnb's widgets need anywidget and ipywidgets: pip install 'specnb[jupyter]'"
        ) from error
    return anywidget.AnyWidget


class Snapshot:
    """Mixin: the widget's mime bundle also carries a static ``text/html`` snapshot, so a saved notebook,
    nbconvert's HTML and GitHub show the result without a kernel (front ends that render widgets prefer
    the live view)."""

    def snapshot_html(self) -> str:  # pragma: no cover - each widget defines it
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        data = {**data, "text/html": saved_snapshot(type(self).__name__, self.snapshot_html())}
        return data, metadata


#: The one line a saved snapshot starts with.
SAVED_HINT = "Saved snapshot · re-run this cell for the live view"


def saved_snapshot(kind: str, html: str) -> str:
    """``html`` as a saved output shows it: marked ``data-specnb-snapshot`` (specnb's JupyterLab / Notebook 7
    extension shows it when the widget's model is gone) and led by `SAVED_HINT`."""
    from html import escape

    return (f'<div class="specnb-saved" {SNAPSHOT_MARKER}="{escape(kind)}">'
            f'<div class="specnb-saved-hint" style="color:#777;font-size:90%;margin-bottom:4px">'
            f"{escape(SAVED_HINT)}</div>{html}</div>")


#: The attribute js/lab/src/index.ts looks for.
SNAPSHOT_MARKER = "data-specnb-snapshot"
