"""Training runs in the run store (kind ``train``, beside the comparisons): a `RecordingMonitor` wraps the monitor
a run reports to, forwards every call to it, and writes what it sees to the store as it goes.

How `specialize` uses it::

    monitor = RecordingMonitor.wrap(monitor, prepared)   # or record(monitor, prepared, store=...)
    monitor.on_start(plan)             # the run is recorded: its items, split, settings (``monitor.run_id``)
    ...                                # on_step / on_evaluate / on_event: forwarded, and logged
    monitor.on_end(status, summary)    # forwarded; the run ends ``finished`` / ``stopped`` / ``failed`` /
                                       # ``interrupted`` with the summary

What is written: at ``on_start`` the run (``meta``: ``kind="train"``, the plan's keys — alias, base, method,
task, epochs, total_steps, batch_size, label_space, settings, data_digest —, the split and the held-out
positions, the teacher's report, the gold labels when distilled) and one item per text with its training
label; then the log (`specnb.store.RunStore.add_train_log`): steps are buffered and written every
``every`` (50) steps and at each evaluation, event and the end; evaluations and events at once. ``on_end``
finishes the run with the summary, completed with ``best_epoch`` (from the evaluations when the summary
has none), ``seconds``, ``items_per_s``, ``peak_memory_bytes`` and ``out``.

Faults: a store that cannot be written at ``on_start`` is a `StoreError` (nothing has been trained yet); a
write that fails later warns once (`SpecnbWarning`) and the run goes on unrecorded, since training is worth
more than its record. ``on_end`` marks the run even when the wrapped monitor's ``on_end`` raises; used as a
context manager (``with monitor:``) a run that an exception (Ctrl-C included) ends before ``on_end`` is
marked ``interrupted`` / ``failed``. A run whose process dies is reported ``interrupted`` by the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import warnings
from pathlib import Path

from ..errors import SpecnbWarning, StoreError
from .monitor import TrainingMonitor

__all__ = ["RecordingMonitor", "record", "plain"]

#: How a training run can end.
END_STATUSES = ("finished", "stopped", "failed", "interrupted")


def plain(value):
    """``value`` as JSON-able data: numpy and torch scalars as numbers, paths as str, anything else as its str."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        try:
            return plain(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


def _best_epoch(evals: list[dict]):
    scored = [e for e in evals if isinstance(e.get("accuracy"), (int, float)) and not math.isnan(e["accuracy"])]
    return max(scored, key=lambda e: e["accuracy"]).get("epoch") if scored else None


class RecordingMonitor(TrainingMonitor):
    """Forwards every call to ``inner`` and records the run in ``store`` (see the module docstring).

    Parameters
    ----------
    inner : TrainingMonitor
        The monitor that draws (a bar, the live view); its ``stop()`` stops the run as before.
    store : RunStore, optional
        Default: specnb's store (``$SPECNB_HOME/runs.sqlite``).
    texts, labels : list of str
        Every item of the run (training and held-out) and its training label (the teacher's when distilled).
    held_out : list of int
        Positions in ``texts`` of the held-out items.
    meta : dict, optional
        More settings to keep with the run (the split, the teacher's report, ``gold``...).
    every : int
        Steps between two writes of the log.
    """

    def __init__(self, inner: TrainingMonitor, *, store=None, texts, labels, held_out=(), meta: dict | None = None,
                 name: str | None = None, every: int = 50) -> None:
        self.inner = inner
        self._stop = False
        super().__init__()
        self._store = store
        self._texts, self._labels = list(texts), list(labels)
        self._held = sorted(int(i) for i in held_out)
        self._meta = dict(meta or {})
        self._name = name
        self._every = max(1, int(every))
        self._buffer: list[tuple[str, dict]] = []
        self._broken = False
        self._ended = False
        self.run_id: str | None = None

    @classmethod
    def wrap(cls, inner: TrainingMonitor, prepared, *, store=None, every: int = 50) -> RecordingMonitor:
        """A recorder of a run on ``prepared`` (`TrainingData`): its texts, labels, split, teacher and gold."""
        meta = {"split": dict(prepared.split), "teacher": getattr(prepared, "teacher", None)}
        gold = getattr(prepared, "gold", None)
        if gold is not None:
            meta["gold"] = list(gold)
        return cls(inner, store=store, texts=prepared.texts, labels=prepared.labels, held_out=prepared.held_out,
                   meta=meta, every=every)

    # -- stopping and everything else the wrapped monitor has: its own ---------------------------------
    @property
    def stop_requested(self) -> bool:
        return self._stop or bool(getattr(self.inner, "stop_requested", False))

    @stop_requested.setter
    def stop_requested(self, value: bool) -> None:
        self._stop = bool(value)

    def stop(self) -> None:
        self._stop = True
        self.inner.stop()

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)  # e.g. how a live view shows itself in the notebook

    # -- the store -------------------------------------------------------------------------------------
    def _writer(self):
        if self._store is None:
            from ..store import default_store

            self._store = default_store()
        return self._store

    def _write(self, write) -> None:
        """Run one store write; a failure warns once and ends the recording (the training goes on)."""
        if self._broken or self.run_id is None:
            return
        try:
            write()
        except StoreError as exc:
            self._broken = True
            warnings.warn(f"{exc}; training run {self.run_id!r} goes on but is no longer recorded",
                          SpecnbWarning, stacklevel=4)

    def _flush(self) -> None:
        if not self._buffer:
            return
        rows = list(self._buffer)

        def write():
            self._writer().add_train_log(self.run_id, rows)
            del self._buffer[:len(rows)]  # only once written: an interrupted write is retried at the next flush

        self._write(write)

    def _log(self, event: str, row: dict, flush: bool) -> None:
        self._buffer.append((event, plain(row)))
        if flush or len(self._buffer) >= self._every:
            self._flush()

    # -- the protocol ----------------------------------------------------------------------------------
    def on_start(self, plan: dict) -> None:
        from ..store import dumps

        super().on_start(plan)
        writer = self._writer()
        meta = {**plain(plan), **plain(self._meta), "kind": "train", "held_out": self._held}
        meta.setdefault("alias", None)
        digest = hashlib.sha256(dumps([self._texts, self._labels]).encode("utf-8")).hexdigest()
        run_id = writer.new_run_id()
        writer.start_run(run_id, task=str(plan.get("task") or "classify"), name=self._name or meta["alias"],
                         inputs=self._texts, labels=self._labels, digest=digest, meta=meta)
        self.run_id = run_id
        self.inner.on_start(plan)

    def on_step(self, row: dict) -> None:
        super().on_step(row)
        try:
            self.inner.on_step(row)
        finally:
            self._log("step", row, flush=False)

    def on_evaluate(self, row: dict) -> None:
        super().on_evaluate(row)
        try:
            self.inner.on_evaluate(row)
        finally:
            self._log("eval", row, flush=True)

    def on_event(self, row: dict) -> None:
        super().on_event(row)
        try:
            self.inner.on_event(row)
        finally:
            self._log("event", row, flush=True)

    def on_end(self, status: str, summary: dict) -> None:
        super().on_end(status, summary)
        try:
            self.inner.on_end(status, summary)
        finally:
            self._finish(status, summary)

    def _finish(self, status: str, summary: dict) -> None:
        if self._ended:
            return
        self._ended = True
        done = dict(plain(summary or {}))
        done.setdefault("best_epoch", _best_epoch(self.evals))
        for key in ("seconds", "items_per_s", "peak_memory_bytes", "out", "metrics"):
            done.setdefault(key, None)
        try:
            self._flush()
            self._write(lambda: self._writer().finish_run(self.run_id, status, done))
        except BaseException as exc:  # Ctrl-C while finishing: the run is still marked, never left running
            self._mark(exc)
            raise

    def _mark(self, exc: BaseException) -> None:
        if self.run_id is None or self._broken:
            return
        with contextlib.suppress(StoreError):
            self._writer().stop_run(self.run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")

    def __enter__(self) -> RecordingMonitor:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if exc is not None and self.run_id is not None and not self._ended:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            self.on_end(status, {"seconds": self.elapsed, "error": f"{type(exc).__name__}: {exc}"[:500]})


def record(inner: TrainingMonitor, prepared, *, store=True, every: int = 50) -> TrainingMonitor:
    """``inner``, recording the run in the store when ``store`` (True: specnb's store; a `RunStore`; False:
    ``inner`` as it is)."""
    if store is False or store is None:
        return inner
    return RecordingMonitor.wrap(inner, prepared, store=None if store is True else store, every=every)
