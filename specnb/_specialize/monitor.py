"""What a training run reports as it goes, and how it is asked to stop.

`specialize` calls a `TrainingMonitor`'s ``on_*`` methods: ``on_start(plan)`` once, ``on_step(row)`` after each
optimizer step, ``on_evaluate(row)`` after each evaluation on the held-out split, ``on_event(row)`` for things
worth a line (a batch halved after running out of memory, a stop), and ``on_end(status, summary)`` once.
The base class keeps everything (``plan``, ``steps``, ``evals``, ``events``, ``status``, ``summary``), so a
subclass only draws. `stop` asks the run to end after the current step; the best checkpoint so far is kept.

Rows are plain dicts:

- plan: ``alias, base, method, task, epochs, total_steps, train, held_out, batch_size, metric``
- step: ``step, epoch, loss, learning_rate, elapsed`` (seconds since the start)
- evaluation: ``step, epoch, accuracy, macro_f1, loss, elapsed``; ner (plan ``metric="f1"``): ``f1, precision,
  recall, token_accuracy`` (``accuracy`` and ``macro_f1`` None)
- event: ``step, elapsed, text``

Which monitor a run gets: ``progress=`` a `TrainingMonitor` is used as it is; ``progress=False`` reports to
none; ``None`` / ``True`` make the default one: a text progress bar, unless the notebook layer put its own
factory in place with `use` (specnb's widgets do: a live training view).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TrainingMonitor", "BarMonitor", "monitor_for", "use"]


class TrainingMonitor:
    """Receives a training run's progress; subclass it and override the ``on_*`` methods to draw it (call the
    base method first: it keeps the row)."""

    def __init__(self) -> None:
        self.stop_requested = False
        self.plan: dict = {}
        self.steps: list[dict] = []
        self.evals: list[dict] = []
        self.events: list[dict] = []
        self.status = "pending"
        self.summary: dict = {}
        self._started: float | None = None

    def stop(self) -> None:
        """End the run after the current step; the best checkpoint so far is kept."""
        self.stop_requested = True

    @property
    def elapsed(self) -> float:
        return 0.0 if self._started is None else time.perf_counter() - self._started

    @property
    def remaining(self) -> float | None:
        """Seconds left at the pace of the steps so far (None before the first step or without a plan)."""
        total = self.plan.get("total_steps")
        if not self.steps or not total:
            return None
        done = self.steps[-1]["step"]
        return max(0.0, self.steps[-1]["elapsed"] / done * (total - done)) if done else None

    def on_start(self, plan: dict) -> None:
        self._started = time.perf_counter()
        self.plan = dict(plan)
        self.status = "running"

    def on_step(self, row: dict) -> None:
        self.steps.append(dict(row))

    def on_evaluate(self, row: dict) -> None:
        self.evals.append(dict(row))

    def on_event(self, row: dict) -> None:
        self.events.append(dict(row))

    def on_end(self, status: str, summary: dict) -> None:
        self.status = status
        self.summary = dict(summary)


class BarMonitor(TrainingMonitor):
    """A progress bar over the optimizer steps (specnb's `progress.bar`), with the last loss and eval metric."""

    def __init__(self, disable: bool | None = None) -> None:
        super().__init__()
        self._disable = disable
        self._bar = None

    def on_start(self, plan: dict) -> None:
        from ..progress import bar

        super().on_start(plan)
        self._bar = bar(total=plan.get("total_steps") or None, desc=f"training {plan.get('alias', '')}".strip(),
                        unit="step", leave=True, disable=self._disable)

    def on_step(self, row: dict) -> None:
        super().on_step(row)
        if self._bar is not None:
            self._bar.update(row["step"] - self._bar.n)
            self._postfix()

    def on_evaluate(self, row: dict) -> None:
        super().on_evaluate(row)
        self._postfix()

    def _postfix(self) -> None:
        if self._bar is None:
            return
        shown = {}
        if self.steps and self.steps[-1].get("loss") is not None:
            shown["loss"] = f"{self.steps[-1]['loss']:.4f}"
        metric = self.plan.get("metric") or "accuracy"
        if self.evals and self.evals[-1].get(metric) is not None:
            shown[f"eval {'acc' if metric == 'accuracy' else metric}"] = f"{self.evals[-1][metric]:.3f}"
        self._bar.set_postfix(shown, refresh=False)

    def on_end(self, status: str, summary: dict) -> None:
        super().on_end(status, summary)
        if self._bar is not None:
            if status == "finished" and self._bar.total:
                self._bar.update(self._bar.total - self._bar.n)
            self._bar.close()
            self._bar = None


_factory: Callable[[], TrainingMonitor] | None = None


def use(factory: Callable[[], TrainingMonitor] | None) -> None:
    """Make ``progress=None`` runs report to ``factory()`` (None: back to the text bar)."""
    global _factory
    _factory = factory


def monitor_for(progress) -> TrainingMonitor:
    """The monitor a run reports to, from ``progress=`` (see the module's docstring)."""
    from ..errors import InputError

    if isinstance(progress, TrainingMonitor):
        return progress
    if progress is False:
        return TrainingMonitor()
    if progress is None or progress is True:
        if _factory is not None and progress is None:
            return _factory()
        return BarMonitor(disable=None if progress is None else False)
    raise InputError(f"progress= is True, False, None or a specnb TrainingMonitor, got {type(progress).__name__}")
