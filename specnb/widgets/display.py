"""How specnb's results show in a Jupyter kernel: the notebook layer's display formatters.

The core classes (`Comparison`, `Pipeline`, `Sweep`) know how to be text and HTML (``__repr__``,
``_repr_html_``) and nothing of widgets. `register` adds IPython display formatters, by type *name*
(nothing is imported to register them), so that in a kernel a `Comparison` shows as the compare view,
a `Pipeline` as the pipeline view and a `Sweep` as its table and chart — as the last expression of a
cell or through ``display()``. ``%load_ext specnb`` registers them, and so does ``import specnb``
inside a running kernel; both also make specnb's progress bars `widgets.progress.notebook_bar`,
which turns into a line of text when it finishes, and make every ``specialize(..., progress=None)``
run report to a live `widgets.training_view.TrainingView`. Outside a kernel (terminal IPython,
scripts) nothing is registered and IPython shows the HTML and text as it would for any object.
"""

from __future__ import annotations

__all__ = ["register", "unregister", "DISPLAYED_TYPES", "in_kernel"]

def in_kernel(shell) -> bool:
    """Whether ``shell`` runs in a Jupyter kernel (where widgets can show), not a terminal."""
    return shell is not None and getattr(shell, "kernel", None) is not None


def _fallback(obj) -> None:
    """The object's own HTML and text, for a kernel without the widget packages."""
    from IPython.display import display

    display({"text/plain": repr(obj), "text/html": obj._repr_html_()}, raw=True)


def _show_view(obj, view_class: str) -> None:
    """Display ``obj`` as the widget ``view_class`` of this package (its HTML and text without anywidget)."""
    from IPython.display import display

    from .. import widgets
    from ..errors import MissingDependencyError

    try:
        view = getattr(widgets, view_class)(obj)  # imports anywidget: MissingDependencyError without it
    except MissingDependencyError:
        _fallback(obj)
        return
    display(view)


def _show_comparison(comparison) -> None:
    _show_view(comparison, "CompareView")


def _show_pipeline(pipeline) -> None:
    _show_view(pipeline, "PipelineView")


def _show_sweep(sweep) -> None:
    from IPython.display import display

    display(sweep.table)
    display(sweep.figure())


_PRINTERS = {
    ("specnb._compare.comparison", "Comparison"): _show_comparison,
    ("specnb.compose.pipeline", "Pipeline"): _show_pipeline,
    ("specnb.compose.sweep", "Sweep"): _show_sweep,
}
#: (module, class name) of each core class shown here: the compare view, the pipeline view, a sweep's table
#: and chart.
DISPLAYED_TYPES = tuple(_PRINTERS)


def register(shell=None) -> bool:
    """Show `DISPLAYED_TYPES` as widgets in ``shell`` (default: the running IPython) when it is a Jupyter
    kernel. Idempotent. Returns whether the formatters are registered (False outside a kernel)."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if not in_kernel(shell):
        return False
    formatter = shell.display_formatter.ipython_display_formatter
    for (module, name), printer in _PRINTERS.items():
        formatter.for_type_by_name(module, name, printer)
    _use_notebook_bars(True)
    _use_training_view(True)
    return True


def _use_notebook_bars(on: bool) -> None:
    """specnb's progress bars as `widgets.progress.notebook_bar` (when ipywidgets is there)."""
    from .. import progress

    if not on:
        progress.use(None)
        return
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return
    from .progress import notebook_bar

    progress.use(notebook_bar)


def _training_view():
    """The monitor of a ``specialize(..., progress=None)`` run in a kernel: the live training view (none at all
    when ``specnb.config.progress`` is off)."""
    from .._specialize.monitor import TrainingMonitor
    from ..settings import config

    if not config.progress:
        return TrainingMonitor()
    from .training_view import TrainingView

    return TrainingView()


def _use_training_view(on: bool) -> None:
    """``specialize(..., progress=None)`` reports to `_training_view` (when anywidget is there)."""
    from .._specialize import monitor

    if not on:
        monitor.use(None)
        return
    try:
        import anywidget  # noqa: F401
    except ImportError:
        return
    monitor.use(_training_view)


def unregister(shell=None) -> None:
    """Remove the formatters `register` added (the objects then show as their HTML and text)."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.ipython_display_formatter
    for module, name in _PRINTERS:
        formatter.pop(f"{module}.{name}", None)
    _use_notebook_bars(False)
    _use_training_view(False)
