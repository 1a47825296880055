"""`TrainingRun`: a stored training run (kind ``train``), as `specnb.get_run` rebuilds it from the run store.

It holds plain data — the settings, the split, the per-step and per-epoch history, the summary — so it reads
the same in any later session, without the model it trained (``load()`` brings that back from ``out``).
"""

from __future__ import annotations

import html
import math

__all__ = ["TrainingRun"]

_STEP_COLUMNS = ["step", "epoch", "loss", "learning_rate", "elapsed"]
_EVAL_COLUMNS = ["step", "epoch", "accuracy", "macro_f1", "loss", "elapsed"]
_EVENT_COLUMNS = ["step", "elapsed", "text"]


def _frame(rows: list[dict], columns: list[str]):
    import pandas as pd

    extra = [k for row in rows for k in row if k not in columns]
    return pd.DataFrame.from_records(rows, columns=[*columns, *dict.fromkeys(extra)])


def _metric_text(value) -> str:
    """``0.912 [0.850, 0.950]`` from ``{"value", "low", "high"}``, a number as it is."""
    if isinstance(value, dict):
        v, low, high = value.get("value"), value.get("low"), value.get("high")
        if isinstance(v, (int, float)) and not math.isnan(v):
            interval = (f" [{low:.3f}, {high:.3f}]" if isinstance(low, (int, float)) and isinstance(high, (int, float))
                        and not (math.isnan(low) or math.isnan(high)) else "")
            return f"{v:.3f}{interval}"
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return "-" if value is None else str(value)


class TrainingRun:
    """A training run kept in the run store.

    Attributes
    ----------
    run_id, status : str
        ``status``: ``finished``, ``stopped`` (asked to stop; the best checkpoint kept), ``running``,
        ``interrupted`` or ``failed``.
    alias, base, method, task : str
    label_space : tuple of str
    settings, split : dict
        The training settings, and the split (kind, fraction, seed, sizes).
    steps, evals, events : DataFrame
        Per optimizer step (step, epoch, loss, learning_rate, elapsed), per evaluation (step, epoch,
        accuracy, macro_f1, loss, elapsed) and the events (out-of-memory batch halvings, stops).
    metrics : dict
        Held-out metrics (``{"value", "low", "high"}`` each); distilled runs: ``agreement`` with the teacher
        and, with gold labels, ``accuracy``.
    best_epoch, seconds, items_per_s, peak_memory_bytes, out
        From the run's summary (None when the run did not get there).
    teacher : dict or None
        The teacher's report of a distilled run.
    """

    def __init__(self, *, run_id, status, created, finished, task, meta: dict, inputs: list, labels: list, log):
        summary = dict(meta.get("summary") or {})
        self.run_id = run_id
        self.status = status
        self.created = created
        self.finished = finished
        self.task = task
        self.meta = meta
        self.summary = summary
        self.alias = meta.get("alias")
        self.base = meta.get("base")
        self.method = meta.get("method")
        self.label_space = tuple(meta.get("label_space") or ())
        self.settings = dict(meta.get("settings") or {})
        self.split = dict(meta.get("split") or {})
        self.teacher = meta.get("teacher")
        self.metrics = dict(summary.get("metrics") or {})
        self.best_epoch = summary.get("best_epoch")
        self.out = summary.get("out")
        seconds = summary.get("seconds")
        self.seconds = seconds if seconds is not None or finished is None else round(finished - created, 3)
        self.items_per_s = summary.get("items_per_s")
        self.peak_memory_bytes = summary.get("peak_memory_bytes")
        self.texts = list(inputs)
        self.labels = list(labels)
        self.held_out = list(meta.get("held_out") or [])
        self.gold = meta.get("gold")
        self._log = [(event, data if isinstance(data, dict) else {}) for event, data in log]
        self.steps = _frame([d for e, d in self._log if e == "step"], _STEP_COLUMNS)
        self.evals = _frame([d for e, d in self._log if e == "eval"], _EVAL_COLUMNS)
        self.events = _frame([d for e, d in self._log if e == "event"], _EVENT_COLUMNS)

    @classmethod
    def from_record(cls, record: dict) -> TrainingRun:
        """Rebuild from `specnb.store.RunStore.read` output of a training run."""
        return cls(run_id=record["id"], status=record["status"], created=record["created"],
                   finished=record["finished"], task=record["task"], meta=record["meta"], inputs=record["inputs"],
                   labels=record["labels"], log=record.get("log") or [])

    def frame(self, which: str = "held_out"):
        """``train``, ``held_out`` or ``all`` items as a DataFrame: ``text``, ``label`` (the training label:
        the teacher's when distilled), ``gold`` when the run had gold labels."""
        import pandas as pd

        from ..errors import InputError

        held = set(self.held_out)
        if which == "held_out":
            index = sorted(held)
        elif which == "train":
            index = [i for i in range(len(self.texts)) if i not in held]
        elif which == "all":
            index = list(range(len(self.texts)))
        else:
            raise InputError(f"frame() takes 'train', 'held_out' or 'all', got {which!r:.40}")
        columns = {"text": [self.texts[i] for i in index], "label": [self.labels[i] for i in index]}
        if self.gold is not None:
            columns["gold"] = [self.gold[i] for i in index]
        return pd.DataFrame(columns, index=pd.Index(index, name="item"))

    def load(self, alias: str | None = None):
        """The trained model, loaded from ``out`` (`specnb.load`)."""
        from ..backends.model_registry import load
        from ..errors import InputError

        if not self.out:
            raise InputError(f"training run {self.run_id!r} ended {self.status} without writing a model folder; "
                             "only a finished (or stopped) run has one to load")
        return load(self.out, alias=alias, task=self.task)

    # -- display ---------------------------------------------------------------------------------------
    def _rows(self) -> list[tuple[str, str]]:
        rows = [("status", self.status), ("base", self.base), ("method", self.method), ("task", self.task),
                ("labels", ", ".join(self.label_space)),
                ("split", ", ".join(f"{k}={v}" for k, v in self.split.items())),
                *((name, _metric_text(value)) for name, value in self.metrics.items()),
                ("best epoch", self.best_epoch), ("steps", len(self.steps)), ("evaluations", len(self.evals)),
                ("seconds", _metric_text(self.seconds)), ("items/s", _metric_text(self.items_per_s)),
                ("peak memory bytes", self.peak_memory_bytes), ("out", self.out)]
        if self.teacher:
            shown = ("alias", "asked", "cached", "kept", "invalid", "unsure")
            rows.append(("teacher", ", ".join(f"{k}={self.teacher.get(k)}" for k in shown if k in self.teacher)))
        rows += [(f"setting: {k}", v) for k, v in self.settings.items()]
        return [(k, "-" if v is None else str(v)) for k, v in rows]

    def __repr__(self) -> str:
        quality = ", ".join(f"{k}={_metric_text(v)}" for k, v in self.metrics.items()
                            if k in ("accuracy", "agreement"))
        return (f"<specnb.TrainingRun {self.run_id} alias={self.alias} method={self.method} task={self.task} "
                f"status={self.status} steps={len(self.steps)} evals={len(self.evals)} best_epoch={self.best_epoch}"
                f"{' ' + quality if quality else ''}>")

    def _repr_html_(self) -> str:
        e = html.escape
        body = "".join(f"<tr><th style='text-align:left'>{e(k)}</th><td style='text-align:left'>{e(v)}</td></tr>"
                       for k, v in self._rows())
        return (f"<div class='specnb-training-run'><b>training run {e(str(self.run_id))}</b> "
                f"<code>{e(str(self.alias))}</code><table>{body}</table></div>")
