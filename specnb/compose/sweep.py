"""A cascade's threshold, tried at several values on labelled inputs (`Pipeline.sweep`): per threshold, the
accuracy, the share sent to the fallback and the $ per 1M items. The pipeline runs once; the cascade's
fallback answers every record that reaches it, so every threshold is scored on the same answers.
"""

from __future__ import annotations

from ..backends.device import trim_heap
from ..errors import PipelineError
from .executor import Context, run_stages
from .spec import walk_ids

__all__ = ["Sweep", "run_sweep"]


class Sweep:
    """`Pipeline.sweep`'s result: ``table`` (threshold, accuracy, fallback_share, usd_per_1m, items) and
    ``figure()``, a plotly chart of accuracy against the share sent to the fallback and the cost.
    ``specialist_ece`` is the specialist's calibration error on the swept items, and ``note`` says when
    it is badly calibrated (a threshold on its scores then means less than it seems).

    In a notebook it shows as the table and the chart."""

    def __init__(self, table, *, stage, models, specialist_accuracy, fallback_accuracy, specialist_ece=float("nan")):
        from .._compare.calibration import calibration_note

        self.table = table
        self.stage = stage
        self.models = models
        self.specialist_accuracy = specialist_accuracy
        self.fallback_accuracy = fallback_accuracy
        #: The specialist's expected calibration error on the swept items (NaN when it gives no scores).
        self.specialist_ece = specialist_ece
        #: A warning when the specialist's scores are badly calibrated, else None.
        self.note = calibration_note(models[0], specialist_ece)

    def figure(self):
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        t = self.table
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        fig.add_trace(go.Scatter(x=t["threshold"], y=t["accuracy"], mode="lines+markers", name="accuracy"))
        fig.add_trace(go.Scatter(x=t["threshold"], y=t["fallback_share"], mode="lines+markers",
                                 name=f"share to {self.models[1]}", line={"dash": "dot"}))
        fig.add_trace(go.Scatter(x=t["threshold"], y=t["usd_per_1m"], mode="lines+markers", name="$ per 1M items"),
                      secondary_y=True)
        for value, name in ((self.specialist_accuracy, self.models[0]), (self.fallback_accuracy, self.models[1])):
            fig.add_hline(y=value, line={"width": 1, "color": "#9ca3af"}, annotation_text=f"{name} alone")
        title = f"Cascade {self.stage}: {self.models[0]} → {self.models[1]}"
        if self.note is not None:
            title += f"<br><sup>⚠ {self.models[0]}'s scores are badly calibrated (ECE {self.specialist_ece:.3f})</sup>"
        fig.update_layout(title=title, template="plotly_white",
                          xaxis_title="threshold (specialist score under which the fallback answers)",
                          legend={"orientation": "h", "y": -0.25}, margin={"t": 50})
        fig.update_yaxes(title_text="accuracy / share", range=[0, 1.05], secondary_y=False)
        fig.update_yaxes(title_text="$ per 1M items", secondary_y=True)
        return fig

    def _repr_html_(self) -> str:
        import html

        title = html.escape(f"Cascade {self.stage}: {self.models[0]} → {self.models[1]}")
        note = "" if self.note is None else f'<p style="color:#b45309">⚠ {html.escape(self.note)}</p>'
        return f"<div><strong>{title}</strong>{note}{self.table.to_html(index=False)}</div>"

    def __repr__(self) -> str:
        note = "" if self.note is None else f"\nnote: {self.note}"
        return f"<specnb.Sweep of cascade {self.stage!r} ({self.models[0]} → {self.models[1]})>{note}\n{self.table}"


def _usd_per_item(model, seconds: float, run, n: int, price_per_hour) -> float:
    """Dollars one item costs on ``model``: an endpoint model's tokens at its ``price_per_1m_tokens`` (NaN when
    it has none), else its device-hour price over the seconds it took."""
    from ..backends.device import device_kind
    from ..settings import config

    if model.device == "remote":
        prices = model.token_price()
        if prices is None or run is None:
            return float("nan")
        return (run.input_tokens * prices["input"] + run.output_tokens * prices["output"]) / 1e6 / n
    return config.price_for(device_kind(model.device), alias=model.alias, override=price_per_hour) * seconds / 3600


def run_sweep(pipeline, stage: str, thresholds, labels, inputs=None, *, text: str | None = None,
              price_per_hour=None) -> Sweep:
    """`Pipeline.sweep` (see there)."""
    import numpy as np
    import pandas as pd

    from .._compare.calibration import expected_calibration_error
    from ..tasks import Label

    key = next((k for k, spec in walk_ids(pipeline.stages) if spec["kind"] == "cascade" and spec["field"] == stage),
               None)
    if key is None:
        fields = [spec["field"] for _, spec in walk_ids(pipeline.stages) if spec["kind"] == "cascade"]
        raise PipelineError(f"no cascade writes {stage!r}; cascades: {', '.join(fields) or 'none'}")
    inputs = pipeline.sample if inputs is None else inputs
    if inputs is None:
        raise PipelineError("sweep needs inputs (or a pipeline sample)")
    if isinstance(labels, str):
        if not isinstance(inputs, pd.DataFrame) or labels not in inputs.columns:
            raise PipelineError(f"labels={labels!r} names no column of the inputs")
        labels = inputs[labels].tolist()
    labels = list(labels)
    records = pipeline.records(inputs, text=text)
    if len(labels) != len(records):
        raise PipelineError(f"{len(labels)} labels for {len(records)} inputs")
    thresholds = sorted(float(t) for t in thresholds)
    if not thresholds or not all(0 <= t <= 1 for t in thresholds):
        raise PipelineError("thresholds must be numbers in [0, 1]")
    position = {id(r): i for i, r in enumerate(records)}
    pipeline.validate(fields=set().union(*(r.keys() for r in records)))
    context = Context(pipeline.functions, capture=key)
    run_stages(pipeline.stages, records, context)
    trim_heap()  # what the stages freed goes back to the system, as after Pipeline.run
    captured = context.captured
    if not captured or not captured["records"]:
        raise PipelineError(f"no input reached the cascade {stage!r}")
    gold = [labels[position[id(r)]] for r in captured["records"]]
    first, every = captured["specialist"], captured["fallback"]
    scores = np.array([p.score if isinstance(p, Label) and p.score is not None else -1.0 for p in first])
    first_ok = np.array([isinstance(p, Label) and p.label == g for p, g in zip(first, gold)])
    fallback_ok = np.array([isinstance(p, Label) and p.label == g for p, g in zip(every, gold)])
    n = len(gold)
    runs = (None, captured.get("fallback_run"))
    per_item = [_usd_per_item(model, seconds / n, run, n, price_per_hour) for model, seconds, run in
                zip(captured["models"], (captured["specialist_seconds"], captured["fallback_seconds"]), runs)]
    rows = []
    for threshold in thresholds:
        unsure = scores < threshold
        correct = np.where(unsure, fallback_ok, first_ok)
        share = float(unsure.mean())
        usd = (per_item[0] + share * per_item[1]) * 1e6
        rows.append({"threshold": threshold, "accuracy": float(correct.mean()), "fallback_share": share,
                     "usd_per_1m": usd, "items": n})
    scored = scores >= 0  # answers with a score (the others are -1)
    probabilities = scored.any() and bool((scores[scored] <= 1).all())
    ece = expected_calibration_error(scores[scored], first_ok[scored]) if probabilities else float("nan")
    return Sweep(pd.DataFrame(rows), stage=stage, models=tuple(m.alias for m in captured["models"]),
                 specialist_accuracy=float(first_ok.mean()), fallback_accuracy=float(fallback_ok.mean()),
                 specialist_ece=ece)
