"""specnb's progress bar in a Jupyter kernel: tqdm's notebook bar, shown through a display handle.

When the bar finishes, its output becomes one line of text (the bar's last state) and the widget
closes, so a notebook saved with JupyterLab's defaults (no widget state) shows that line when it
reopens, not "Error displaying widget: model not found". A bar with ``leave=False`` leaves an empty
output. A bar that stops short (an error, an interrupt) stays a red widget, as tqdm draws it.
"""

from __future__ import annotations

__all__ = ["notebook_bar"]


def _bar_class():
    from IPython.display import display
    from tqdm.notebook import tqdm as notebook_tqdm

    class SavedBar(notebook_tqdm):
        def __init__(self, *args, **kwargs):
            self._handle = None
            show_now = kwargs.pop("display", True)
            kwargs["display"] = False  # shown here, with a handle
            super().__init__(*args, **kwargs)
            if show_now and not self.disable and self.delay <= 0:
                self._show()

        def _show(self) -> None:
            self._handle = display(self.container, display_id=True)
            self.displayed = True

        def display(self, msg=None, pos=None, close=False, bar_style=None, check_delay=True):
            if check_delay and self.delay > 0 and not self.displayed:
                self._show()
            return super().display(msg, pos, close=close, bar_style=bar_style, check_delay=False)

        def close(self):
            if self.disable or getattr(self, "_closed_to_text", False):
                return super().close()
            finished = not (self.total and self.n < self.total)
            line = self.format_meter(**self.format_dict) if finished and self.leave else ""
            super().close()
            if finished and self._handle is not None:
                self._closed_to_text = True
                self._handle.update({"text/plain": line}, raw=True)
                if self.leave:  # tqdm kept the widget: its output now holds the text instead
                    self.container.close()

    return SavedBar


_SAVED_BAR = None


def notebook_bar(**kwargs):
    """A `SavedBar` (tqdm's keyword arguments)."""
    global _SAVED_BAR
    if _SAVED_BAR is None:
        _SAVED_BAR = _bar_class()
    return _SAVED_BAR(**kwargs)
