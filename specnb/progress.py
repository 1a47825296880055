"""The progress bars of long work (a model's run, a comparison): `bar` makes one.

Outside a notebook it is ``tqdm.auto``'s bar on a terminal. On a stream that is not one (a log file, a pipe,
``make demo > log``) tqdm's redraws (``\\r`` and a last refresh at close) would read as the bar written over
and over, its final line twice; there a bar writes nothing while it runs and one line, its last state, when
it closes, ``leave=False`` or not (a log keeps what happened); none when it closed before its ``delay`` passed,
as on a terminal.

The notebook layer may put its own in place (`use`): specnb's widgets do, so that a finished bar in a saved
notebook is a line of text rather than a widget whose model is gone when the notebook reopens.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["bar", "use"]

_factory: Callable[..., Any] | None = None
_LOG_BAR = None


def use(factory: Callable[..., Any] | None) -> None:
    """Make `bar` call ``factory`` (tqdm's keyword arguments; None: back to ``tqdm.auto``)."""
    global _factory
    _factory = factory


def bar(**kwargs):
    """A tqdm-compatible progress bar (``total``, ``desc``, ``unit``, ``delay``, ``leave``, ``disable``…)."""
    if _factory is not None:
        return _factory(**kwargs)
    from tqdm.auto import tqdm

    notebook = any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)  # in a kernel without specnb's bars
    if not notebook and not _redraws(kwargs.get("file")):
        return _log_bar_class(tqdm)(**kwargs)
    return tqdm(**kwargs)


def _redraws(stream) -> bool:
    """Whether ``stream`` (None: stderr, tqdm's default) shows a line redrawn in place: a terminal, or a Jupyter
    kernel's stream (the front end draws ``\\r``)."""
    stream = sys.stderr if stream is None else stream
    if type(stream).__module__.startswith("ipykernel"):
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def _log_bar_class(base):
    """`base` (``tqdm.auto``'s text bar) drawn for a log: silent while it runs, one line when it closes."""
    global _LOG_BAR
    if _LOG_BAR is not None and _LOG_BAR.__bases__ == (base,):
        return _LOG_BAR

    class LogBar(base):
        """tqdm for a stream that is not a terminal: silent while it runs, one line when it closes."""

        def display(self, msg=None, pos=None):  # no redraws
            return True

        def clear(self, nolock=False):  # nothing drawn, nothing to clear (tqdm.write calls it)
            pass

        def close(self):
            if self.disable:
                return super().close()
            line = None
            if self._time() - self.start_t >= self.delay:  # shown, as on a terminal, once its delay passed
                self._ema_dt = lambda: None  # the overall rate, as tqdm's own last line
                line = self.format_meter(**self.format_dict)
            fp = self.fp
            self.sp = None  # tqdm's close writes nothing then (no "\r", no newline)
            super().close()
            if line is not None:
                with self._lock:
                    fp.write(line + "\n")
                    getattr(fp, "flush", lambda: None)()

    _LOG_BAR = LogBar
    return LogBar
