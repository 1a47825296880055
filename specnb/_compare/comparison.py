"""`Comparison`: what `specnb.compare` returns and `specnb.get_run` rebuilds from the store.

It holds plain data (inputs, gold labels, each model's predictions and per-item seconds, what was
known about each model) and derives everything else from it, so a comparison rebuilt in another
process gives the same summary, table and charts.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from ..errors import InputError, TaskError
from ..tasks import Entities, Invalid, Label, Prediction, prediction_from_dict
from . import metrics
from .calibration import calibration_table, ece_by_model
from .paired import default_reference, paired_table, verdict_lines
from .tables import INVALID, comparison_dict, confusion_frame

__all__ = ["Comparison", "INVALID", "answer_key", "display_input"]



def answer_key(prediction: Prediction | None):
    """What two answers are compared by: a label, a frozenset of (start, end, type), or None."""
    if prediction is None or not prediction.valid:
        return None
    if isinstance(prediction, Label):
        return prediction.label
    if isinstance(prediction, Entities):
        return frozenset((s.start, s.end, s.label) for s in prediction.spans)
    raise TaskError(f"{type(prediction).__name__} predictions have no answer to compare; compare scores label tasks "
                    "(classify, sentiment, langid) and ner")


def display_input(value) -> str | None:
    """An input as text for tables: strings as they are, None stays None, other values as their repr."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and "repr" in value:
        return value["repr"]
    return repr(value)


def display_entities(spans) -> str:
    return "; ".join(f"{text}/{label}" for text, label in spans)


def _latency_ms(seconds: list[float], q: float) -> float:
    ran = sorted(s for s in seconds if s is not None and s > 0)
    if not ran:
        return float("nan")
    return float(np.quantile(ran, q)) * 1000


class Comparison:
    """Specialists and generalists on the same inputs, scored the same way.

    Attributes
    ----------
    run_id : str or None
        The id in the run store (`specnb.get_run` rebuilds it); None when not stored.
    task : str
    models : list of str
        Model aliases, in run order.
    inputs : list
        The inputs as given (non-strings kept as ``{"type", "repr"}``).
    labels : list or None
        Gold labels (label tasks: str; ner: list of (start, end, type)).
    index : list of int
        Each item's position in the data passed to `compare` (differs when ``sample`` was used).
    label_space : tuple of str
    predictions : dict
        Model -> one `Prediction` per item (None for items an interrupted run never reached).
    item_seconds : dict
        Model -> per-item latency in seconds (None where not run).
    model_info : dict
        Model -> source, version, backend, role, device, dtype, parameters, weight_bytes,
        load_seconds.
    model_stats : dict
        Model -> seconds, items, run_peak_bytes, batches, oom_retries, price_per_hour.
    status : str
        ``finished``, ``running``, ``interrupted`` or ``failed``.
    """

    def __init__(self, *, task, models, inputs, labels, index, label_space, predictions, item_seconds,
                 model_info, model_stats, seed=0, run_id=None, name=None, status="finished", created=None,
                 descriptions=None, settings=None):
        self.task = task
        self.models = list(models)
        self.inputs = list(inputs)
        self.labels = None if labels is None else list(labels)
        self.index = list(index)
        self.label_space = tuple(label_space)
        self.descriptions = dict(descriptions or {})
        self.predictions = predictions
        self.item_seconds = item_seconds
        self.model_info = model_info
        self.model_stats = model_stats
        self.seed = seed
        self.run_id = run_id
        self.name = name
        self.status = status
        self.created = created
        self.settings = dict(settings or {})

    # -- derived data --------------------------------------------------------------------------
    @property
    def ner(self) -> bool:
        return self.task == "ner"

    @functools.cached_property
    def _keys(self) -> dict[str, list]:
        return {m: [answer_key(p) for p in self.predictions[m]] for m in self.models}

    @functools.cached_property
    def _gold(self) -> list | None:
        if self.labels is None:
            return None
        if self.ner:
            return [frozenset(tuple(x) for x in spans) for spans in self.labels]
        return list(self.labels)

    @functools.cached_property
    def done(self) -> list[int]:
        """Positions of the items every model has answered (all of them once a run finished)."""
        return [i for i in range(len(self.inputs)) if all(self.predictions[m][i] is not None for m in self.models)]

    @property
    def complete(self) -> bool:
        return len(self.done) == len(self.inputs)

    def _pick(self, values, rows):
        return [values[i] for i in rows]

    @functools.cached_property
    def summary(self):
        """One row per model (indexed by model): quality with 95 % bootstrap intervals, agreement,
        validity, latency, throughput, load time, memory and cost.

        Columns: role, device, dtype, items, valid; accuracy / macro_f1 (label tasks) or
        precision / recall / f1 (ner), each with ``_low`` and ``_high``, when gold labels are
        given; ``agree:<model>`` per model; p50_ms, p95_ms, p99_ms, items_per_s, load_s,
        weight_bytes, run_peak_bytes, price_per_hour, usd_per_1m (an endpoint model: its tokens at
        its ``price_per_1m_tokens``); an endpoint model's method (how it answered), requests (sent, retries
        included) and cached (answers from the response cache). Only the items every model
        answered count (all items, unless the run was interrupted).
        """
        import pandas as pd

        rows = self.done
        gold = None if self._gold is None else self._pick(self._gold, rows)
        records = []
        for m in self.models:
            keys = self._pick(self._keys[m], rows)
            info, stats = self.model_info[m], self.model_stats.get(m, {})
            record = {
                "model": m,
                "role": info.get("role"),
                "device": info.get("device"),
                "dtype": info.get("dtype") or "-",
                "items": len(rows),
                "valid": float(np.mean([k is not None for k in keys])) if rows else float("nan"),
            }
            if gold is not None:
                record.update(self._quality[m])
            for other in self.models:
                record[f"agree:{other}"] = metrics.agreement(keys, self._pick(self._keys[other], rows))
            seconds = self._pick(self.item_seconds[m], rows)
            run_seconds = float(stats.get("seconds", 0.0))
            run_items = int(stats.get("items", 0))
            per_second = run_items / run_seconds if run_seconds > 0 else float("nan")
            price = stats.get("price_per_hour")
            usd_per_1m = (price / 3600 / per_second * 1e6) if price is not None and per_second > 0 else None
            tokens = stats.get("price_per_1m_tokens")
            if tokens and run_items:  # an endpoint model: its answers' tokens at its prices
                usd = (stats.get("input_tokens", 0) * tokens["input"] + stats.get("output_tokens", 0) * tokens["output"]) / 1e6
                usd_per_1m = usd / run_items * 1e6
            record.update({
                "method": stats.get("method"),
                "requests": stats.get("requests"),
                "cached": stats.get("cached"),
                "p50_ms": _latency_ms(seconds, 0.50),
                "p95_ms": _latency_ms(seconds, 0.95),
                "p99_ms": _latency_ms(seconds, 0.99),
                "items_per_s": per_second,
                "load_s": info.get("load_seconds"),
                "weight_bytes": info.get("weight_bytes"),
                "run_peak_bytes": stats.get("run_peak_bytes"),
                "price_per_hour": price,
                "usd_per_1m": usd_per_1m,
            })
            records.append(record)
        frame = pd.DataFrame.from_records(records).set_index("model")
        if gold is not None:  # the paired verdict against the reference, and calibration
            paired, metric = self.paired(), self.quality_column
            frame["delta"], frame["delta_low"] = paired[f"{metric}_delta"], paired[f"{metric}_delta_low"]
            frame["delta_high"] = paired[f"{metric}_delta_high"]
            frame["p_value"] = paired["p_value"] if "p_value" in paired else float("nan")
            frame["verdict"], frame["ece"] = paired["verdict"], pd.Series(ece_by_model(self))
            frame.loc[frame["verdict"] == "reference", ["delta", "delta_low", "delta_high", "p_value"]] = float("nan")
        for column in ("usd_per_1m", "load_s", "price_per_hour"):
            frame[column] = frame[column].astype(float)
        return frame

    @functools.cached_property
    def _resamples(self) -> dict:
        """Per model, the headline scores on the bootstrap resamples every model shares (`metrics`)."""
        rows = self.done
        gold = self._pick(self._gold, rows)
        keys = {m: self._pick(self._keys[m], rows) for m in self.models}
        if self.ner:
            return {m: metrics.entity_f1_samples(gold, keys[m], seed=self.seed) for m in self.models}
        return metrics.paired_label_samples(gold, keys, seed=self.seed)

    @functools.cached_property
    def _quality(self) -> dict:
        """Per model, the quality scores with their 95 % intervals (the summary's)."""
        if self.ner:
            gold = self._pick(self._gold, self.done)
            return {m: metrics.entity_metrics(gold, self._pick(self._keys[m], self.done), seed=self.seed)
                    for m in self.models}
        if not self.done:
            return {m: metrics.label_metrics([], []) for m in self.models}
        return {m: metrics.label_scores(*drawn) for m, drawn in self._resamples.items()}

    @property
    def reference(self) -> str | None:
        """The model others are compared with (``reference=`` of `specnb.compare`; default the best
        specialist); None without gold labels."""
        if self.quality_column is None:
            return None
        chosen = self.settings.get("reference")
        return chosen if chosen in self.models else default_reference(self)

    def paired(self, reference: str | None = None):
        """Each model against ``reference`` (default `reference`) on the same items: score differences
        with paired bootstrap 95 % intervals, McNemar's exact test on accuracy (label tasks) and the
        verdict (``better``, ``worse``, ``no difference at 95 %``); see `specnb._compare.paired`."""
        return paired_table(self, reference)

    def verdicts(self, reference: str | None = None) -> list[str]:
        """One line per model other than the reference: its verdict, difference and p-value."""
        return verdict_lines(self, reference)

    def calibration(self):
        """The reliability bins (equal-mass) of every model that gives scores: a DataFrame with model, bin,
        items, score, accuracy, low, high. The summary's ``ece`` column sums them up."""
        return calibration_table(self)

    @property
    def quality_column(self) -> str | None:
        """The headline quality metric: ``accuracy`` (label tasks) or ``f1`` (ner); None without labels."""
        if self.labels is None:
            return None
        return "f1" if self.ner else "accuracy"

    def _answer_text(self, prediction):
        if prediction is None or not prediction.valid:
            return None
        if isinstance(prediction, Label):
            return prediction.label
        return display_entities((s.text, s.label) for s in prediction.spans)

    def _score(self, prediction):
        if isinstance(prediction, Label) and prediction.score is not None:
            return float(prediction.score)
        if isinstance(prediction, Entities) and prediction.spans:
            scores = [s.score for s in prediction.spans if s.score is not None]
            return float(np.mean(scores)) if scores else float("nan")
        return float("nan")

    def _gold_text(self, i):
        if self.labels is None:
            return None
        if not self.ner:
            return self.labels[i]
        text = self.inputs[i] if isinstance(self.inputs[i], str) else ""
        return display_entities((text[s:e], t) for s, e, t in sorted(self.labels[i]))

    @functools.cached_property
    def table(self):
        """One row per item, indexed by its position in the data given to `compare`: ``input``,
        ``label`` (gold, when given), and per model ``<model>`` (its answer; None when invalid),
        ``<model>:score``, ``<model>:correct`` (with gold labels) and ``<model>:error`` (why an
        answer is invalid)."""
        import pandas as pd

        columns: dict[str, list] = {"input": [display_input(x) for x in self.inputs]}
        if self.labels is not None:
            columns["label"] = [self._gold_text(i) for i in range(len(self.inputs))]
        for m in self.models:
            preds = self.predictions[m]
            columns[m] = [self._answer_text(p) for p in preds]
            columns[f"{m}:score"] = [self._score(p) for p in preds]
            if self._gold is not None:
                columns[f"{m}:correct"] = [
                    None if p is None else (k is not None and k == g) for p, k, g in zip(preds, self._keys[m], self._gold)
                ]
            columns[f"{m}:error"] = [
                "not run (the run was interrupted)" if p is None else (p.reason if isinstance(p, Invalid) else None)
                for p in preds
            ]
        frame = pd.DataFrame(columns, index=pd.Index(self.index, name="item"))
        return frame

    @property
    def disagreements(self):
        """The rows of `table` where the models give different answers or any model is wrong."""
        rows = []
        for i in self.done:
            keys = [self._keys[m][i] for m in self.models]
            differ = any(k != keys[0] for k in keys[1:]) or any(k is None for k in keys)
            wrong = self._gold is not None and any(k != self._gold[i] for k in keys)
            if differ or wrong:
                rows.append(i)
        return self.table.iloc[rows]

    def confusion(self, model: str):
        """Gold labels (rows) against the model's answers (columns), as counts.

        Label tasks: the label space, plus an ``(invalid)`` column. NER: entity types matched on
        exact offsets, with ``(none)`` for spans only one side has.
        """
        self._check_model(model)
        return confusion_frame(self, model)

    def _check_model(self, model: str) -> None:
        if model not in self.models:
            raise InputError(f"no model {model!r} in this comparison; models: {', '.join(self.models)}")

    # -- charts and exports --------------------------------------------------------------------
    def figures(self) -> dict:
        """Plotly figures by name: ``quality_vs_latency``, ``quality_vs_cost`` (Pareto front
        marked; with gold labels), ``latency``, ``confusion`` (with gold labels), ``memory``."""
        from .charts import figures

        return figures(self)

    def to_html(self, path) -> Path:
        """Write a self-contained report (works offline: plotly.js inlined once) and return its path."""
        from .report import write_html

        return write_html(self, path)

    def to_csv(self, path) -> Path:
        """Write `table` as CSV."""
        path = Path(path)
        self.table.to_csv(path)
        return path

    def to_parquet(self, path) -> Path:
        """Write `table` as Parquet."""
        path = Path(path)
        self.table.to_parquet(path)
        return path

    def to_dict(self) -> dict:
        """The run as JSON-able data: ``run`` (id, task, models, label space, settings),
        ``summary`` (records) and ``items`` (records of `table`)."""
        return comparison_dict(self)

    def to_json(self, path) -> Path:
        """Write `to_dict` as JSON."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    # -- display -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        state = "" if self.status == "finished" else f", {self.status}: {len(self.done)}/{len(self.inputs)} items done"
        return (f"<specnb.Comparison {self.run_id or '(not stored)'} task={self.task} items={len(self.inputs)} "
                f"models={','.join(self.models)}{state}>")

    def _repr_html_(self) -> str:
        from .report import summary_html

        return summary_html(self)

    # -- rebuilding ----------------------------------------------------------------------------
    @classmethod
    def from_record(cls, record: dict) -> Comparison:
        """Rebuild from `specnb.store.RunStore.read` output."""
        meta = record["meta"]
        n = record["n_items"]
        models = list(meta["models"])
        predictions, seconds, info, stats = {}, {}, {}, {}
        for m in models:
            stored = record["models"].get(m, {"info": {}, "stats": {}, "predictions": {}})
            predictions[m] = [None] * n
            seconds[m] = [None] * n
            for idx, (pred, sec) in stored["predictions"].items():
                predictions[m][idx] = prediction_from_dict(pred)
                seconds[m][idx] = sec
            info[m] = stored["info"]
            stats[m] = stored["stats"]
        labels = record["labels"] if meta.get("has_labels") else None
        return cls(task=record["task"], models=models, inputs=record["inputs"], labels=labels,
                   index=meta.get("index") or list(range(n)), label_space=meta["label_space"],
                   descriptions=meta.get("descriptions"), predictions=predictions, item_seconds=seconds,
                   model_info=info, model_stats=stats, seed=meta.get("seed", 0), run_id=record["id"],
                   name=record["name"], status=record["status"], created=record["created"],
                   settings=meta.get("settings"))

