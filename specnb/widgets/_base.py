"""What both widgets share: the built front-end files and the static ``text/html`` snapshot."""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingDependencyError

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
        data = {**data, "text/html": self.snapshot_html()}
        return data, metadata
