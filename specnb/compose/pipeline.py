"""`Pipeline`: ordered stages over one record (a dict) per input — model, route, cascade and python stages.

A pipeline is its list of stage specs (plain dicts, exactly what its YAML holds); models are resolved
(loaded aliases first, then `specnb.load`) when it runs. Every model stage batches through the
engine (`Model.predict`); a route runs each branch on its records together; a cascade runs the
specialist on all its records and the fallback only on those it is unsure of.
"""

from __future__ import annotations

import importlib
import math
import time
from pathlib import Path

from ..errors import PipelineError, SpecnbError

__all__ = ["Pipeline", "stage", "STAGE_KINDS", "LABEL_TASKS"]

STAGE_KINDS = ("model", "cascade", "route", "python")
LABEL_TASKS = ("classify", "sentiment", "langid")
_ORDER = {
    "model": ("kind", "field", "model", "input", "task", "labels"),
    "cascade": ("kind", "field", "specialist", "fallback", "threshold", "input", "task", "labels"),
    "route": ("kind", "field", "branches", "default"),
    "python": ("kind", "function", "reads", "writes"),
}


def stage(fn=None, *, reads=(), writes=()):
    """Mark ``fn(records) -> records`` (a list of dicts in, a list of dicts out — or None after changing
    them in place) as a python stage. ``reads`` / ``writes`` name the fields it uses and adds, for
    validation. Usable as ``@specnb.stage`` or ``@specnb.stage(writes=["clean"])``."""

    def mark(function):
        if not callable(function):
            raise PipelineError(f"@specnb.stage decorates a function, got {type(function).__name__}")
        function._specnb_stage = {"reads": list(reads), "writes": list(writes)}
        return function

    return mark(fn) if fn is not None else mark


def _import_path(function) -> str:
    return f"{function.__module__}:{function.__qualname__}"


def _strip(spec):
    """A spec without the bookkeeping keys (``line``), keys in a fixed order."""
    if isinstance(spec, list):
        return [_strip(s) for s in spec]
    out = {}
    for key in _ORDER.get(spec.get("kind"), tuple(spec)):
        if key not in spec:
            continue
        value = spec[key]
        if key == "branches":
            value = {str(k): _strip(v) for k, v in value.items()}
        elif key == "default":
            value = _strip(value)
        out[key] = value
    return out


def _where(spec) -> str:
    return f"line {spec['line']}: " if spec.get("line") is not None else ""


def _short(value) -> str:
    """An option's value for display: label lists and {label: description} maps shortened."""
    if isinstance(value, dict):
        return "{" + ", ".join(map(repr, list(value)[:4])) + (", …" if len(value) > 4 else "") + ": descriptions}"
    text = repr(value)
    if isinstance(value, list) and len(text) > 60:
        return "[" + ", ".join(map(repr, value[:4])) + f", … {len(value)} labels]"
    return text


def render(spec) -> str:
    """A stage in the cell syntax (`lang = langid(text)`)."""
    kind = spec["kind"]
    if kind == "python":
        return spec["function"].rsplit(":", 1)[-1]
    if kind == "route":
        parts = [f"{value} -> {render(s[0]) if s else 'skip'}" for value, s in spec["branches"].items()]
        if "default" in spec:
            parts.append(f"* -> {render(spec['default'][0]) if spec['default'] else 'skip'}")
        return f"route {spec['field']}: " + "; ".join(parts)
    options = "".join(f", {k}={_short(spec[k])}" for k in ("task", "labels", "threshold") if k in spec)
    if kind == "cascade":
        return f"{spec['field']} = cascade({spec['specialist']}, {spec['fallback']}{options})({spec['input']})"
    return f"{spec['field']} = {spec['model']}({spec['input']}{options})"


class _Context:
    """One run's models, functions and per-stage statistics."""

    def __init__(self, functions: dict, capture: str | None = None):
        self.functions = functions
        self.models: dict = {}
        self.stats: dict[str, dict] = {}
        #: The stage id of a cascade whose specialist and fallback answers are kept for every record
        #: (`Pipeline.sweep`), and what was kept.
        self.capture = capture
        self.captured: dict | None = None

    def model(self, name: str, task: str):
        key = (name, task)
        if key not in self.models:
            from .. import load, registry

            self.models[key] = registry.get(name) if name in registry else load(name, task=task)
        return self.models[key]

    def record(self, key: str, spec: dict, items: int, seconds: float, **extra) -> None:
        entry = self.stats.setdefault(key, {"stage": render(spec), "kind": spec["kind"], "items": 0, "seconds": 0.0})
        entry["items"] += items
        entry["seconds"] += seconds
        for name, value in extra.items():
            entry[name] = entry.get(name, 0) + value if isinstance(value, (int, float)) else value


class Pipeline:
    """Ordered stages over one record per input; ``pipe(inputs)`` returns a DataFrame.

    Parameters
    ----------
    stages : list of dict, optional
        Stage specs (see the README's pipeline section, or build them with ``%%specnb pipe``).
    name : str
        Shown in profiles and saved in YAML.
    input : str
        The field holding each input's text (``text``): strings become ``{"text": s}``, DataFrame
        rows keep all their columns.
    """

    def __init__(self, stages=None, *, name: str = "pipeline", input: str = "text", functions=None):
        self.name = name
        self.input = input
        self.stages: list[dict] = []
        self.functions: dict = dict(functions or {})
        self._segments: list[tuple] = []  # (where the stages came from, how many), in order
        self.last_profile = None
        #: The notebook preview's data (set by ``%%specnb pipe --sample VAR``) and its last output.
        self.sample = None
        self.preview_size = 20
        self.last_preview = None
        if stages:
            self.add(stages)

    # -- building -------------------------------------------------------------------------------------
    def add(self, stages, *, namespace=None, segment=None) -> Pipeline:
        """Append stage specs (dicts, or stage functions for python stages), validated against the
        stages already there; ``namespace`` resolves ``{"var": name}`` values and function names.

        ``segment`` names where the stages come from (``%%specnb pipe`` passes the notebook cell): adding
        a segment again replaces its stages where they stand, so re-running a cell does not append twice.
        """
        specs = []
        for spec in stages if isinstance(stages, (list, tuple)) else [stages]:
            if callable(spec):
                specs.append(self._python_spec(spec))
            else:
                specs.append(self._resolve(dict(spec), namespace or {}))
        segments = list(self._segments)
        start = sum(count for _, count in segments)
        keys = [key for key, _ in segments]
        if segment is not None and segment in keys:
            at = keys.index(segment)
            start = sum(count for _, count in segments[:at])
            end = start + segments[at][1]
            stages_after = self.stages[:start] + specs + self.stages[end:]
            segments[at] = (segment, len(specs))
        else:
            stages_after = self.stages + specs
            segments.append((segment, len(specs)))
        self.validate(stages_after)
        self.stages[:] = stages_after
        self._segments = segments
        return self

    def _python_spec(self, function) -> dict:
        marks = getattr(function, "_specnb_stage", None)
        if marks is None:
            raise PipelineError(f"{getattr(function, '__name__', function)!r} is not a python stage: decorate it "
                                "with @specnb.stage")
        path = _import_path(function)
        self.functions[path] = function
        return {"kind": "python", "function": path, **{k: v for k, v in marks.items() if v}}

    def _resolve(self, spec: dict, namespace: dict) -> dict:
        kind = spec.get("kind")
        if kind not in STAGE_KINDS:
            raise PipelineError(f"{_where(spec)}unknown stage kind {kind!r}; valid: {', '.join(STAGE_KINDS)}")
        for key, value in list(spec.items()):
            if isinstance(value, dict) and set(value) == {"var"}:
                name = value["var"]
                if name not in namespace:
                    raise PipelineError(f"{_where(spec)}{key}={name}: no variable called {name!r} in the notebook")
                value = namespace[name]
                if key == "labels" and not isinstance(value, dict):
                    value = list(value)
                spec[key] = value
        if kind == "python":
            function = spec["function"]
            if ":" not in function:
                found = namespace.get(function)
                if found is None or not callable(found):
                    raise PipelineError(f"{_where(spec)}no function called {function!r} in the notebook")
                line = spec.get("line")
                spec = self._python_spec(found)
                if line is not None:
                    spec["line"] = line
        if kind == "route":
            spec["branches"] = {str(k): [self._resolve(dict(s), namespace) for s in v]
                                for k, v in spec.get("branches", {}).items()}
            if "default" in spec:
                spec["default"] = [self._resolve(dict(s), namespace) for s in spec["default"]]
        return spec

    # -- validation -----------------------------------------------------------------------------------------
    def validate(self, stages=None, *, fields=()) -> None:
        """Raise `PipelineError` naming the line for an unknown model, an unknown field, a field read before
        the stage that writes it (a cycle), or a model that cannot serve its task."""
        stages = self.stages if stages is None else stages
        writers: dict[str, dict] = {}
        for spec in _walk(stages):
            for field in _writes(spec):
                writers.setdefault(field, spec)
        known = {self.input, *fields}
        self._check(stages, known, writers)

    def _check(self, stages, known: set, writers: dict) -> None:
        for spec in stages:
            for field in _reads(spec):
                if field in known:
                    continue
                if field in writers and writers[field] is not spec:
                    later = writers[field]
                    raise PipelineError(f"{_where(spec)}reads {field!r} before `{render(later)}` "
                                        f"({_where(later).rstrip(': ') or 'a later stage'}) writes it: a cycle; "
                                        "stages run in order, so move the writer up")
                if field in writers:
                    raise PipelineError(f"{_where(spec)}reads {field!r}, which only this stage writes: a cycle")
                raise PipelineError(f"{_where(spec)}unknown field {field!r}; known here: {', '.join(sorted(known))}")
            kind = spec["kind"]
            if kind in ("model", "cascade"):
                self._check_models(spec)
            if kind == "cascade" and not (isinstance(spec.get("threshold"), (int, float))
                                          and 0 <= spec["threshold"] <= 1):
                raise PipelineError(f"{_where(spec)}threshold must be a number in [0, 1], got {spec.get('threshold')!r}")
            if kind == "python":
                _function(spec, self.functions)
            if kind == "route":
                branch_known = set(known)
                for branch in [*spec["branches"].values(), spec.get("default", [])]:
                    inner = set(known)
                    self._check(branch, inner, writers)
                    branch_known |= inner
                known |= branch_known
            known |= set(_writes(spec))

    def _check_models(self, spec: dict) -> None:
        for name, task in _stage_models(spec):
            tasks = _model_tasks(name, spec)
            if task not in tasks:
                raise PipelineError(f"{_where(spec)}model {name!r} cannot serve {task!r}; it serves {', '.join(tasks)}")
            if spec["kind"] == "cascade" and task not in LABEL_TASKS:
                raise PipelineError(f"{_where(spec)}a cascade needs a label task with scores "
                                    f"({', '.join(LABEL_TASKS)}), not {task!r}")

    # -- running ----------------------------------------------------------------------------------------
    def run(self, records: list[dict]) -> list[dict]:
        """Run every stage on ``records`` (dicts, changed in place and returned); `last_profile` keeps the
        per-stage statistics."""
        fields = set().union(*(r.keys() for r in records)) if records else set()
        self.validate(fields=fields)
        context = _Context(self.functions)
        started = time.perf_counter()
        _run(self.stages, records, context, prefix="")
        self.last_profile = _profile(context, time.perf_counter() - started)
        return records

    def records(self, inputs, *, text: str | None = None) -> list[dict]:
        """``inputs`` (list of str, Series or DataFrame) as records with the input field."""
        import pandas as pd

        if isinstance(inputs, pd.DataFrame):
            column = text or self.input
            if column not in inputs.columns:
                raise PipelineError(f"the data has no {column!r} column; columns: {', '.join(map(str, inputs.columns))}")
            frame = inputs.rename(columns={column: self.input}) if column != self.input else inputs
            return frame.to_dict("records")
        if isinstance(inputs, str):
            raise PipelineError("a pipeline takes a list of texts or a DataFrame, not one str: pipe([text])")
        return [{self.input: value} for value in list(inputs)]

    def __call__(self, inputs, *, text: str | None = None):
        """Run on a list of texts or a DataFrame; a DataFrame with the inputs and every field written."""
        import pandas as pd

        records = self.run(self.records(inputs, text=text))
        frame = pd.DataFrame.from_records(records)
        if isinstance(inputs, pd.DataFrame):
            if len(frame) == len(inputs):
                frame.index = inputs.index
            if text and text != self.input:
                frame = frame.rename(columns={self.input: text})  # the input column keeps its own name
        return frame

    @property
    def profile(self):
        """Per stage of the last run: items, seconds, items/s, share of the run's time, models' weight bytes,
        and for cascades the share sent to the fallback."""
        if self.last_profile is None:
            raise PipelineError("the pipeline has not run yet: call it on some inputs first")
        return self.last_profile

    # -- persistence ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"name": self.name, "input": self.input, "stages": _strip(self.stages)}

    @classmethod
    def from_dict(cls, spec: dict, *, functions=None) -> Pipeline:
        if not isinstance(spec, dict) or not isinstance(spec.get("stages"), list):
            raise PipelineError("a pipeline spec is a mapping with name, input and a list of stages")
        return cls(spec["stages"], name=spec.get("name", "pipeline"), input=spec.get("input", "text"),
                   functions=functions)

    def to_yaml(self, path=None) -> str:
        """The pipeline as YAML (python stages by import path); written to ``path`` when given."""
        from .yaml_io import dump

        text = dump(self.to_dict())
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_yaml(cls, source) -> Pipeline:
        """Read YAML text or a file; errors name the YAML line."""
        from .yaml_io import load

        text = source
        if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith(
                (".yaml", ".yml"))):
            path = Path(source)
            if not path.is_file():
                raise PipelineError(f"no pipeline file {path}")
            text = path.read_text(encoding="utf-8")
        return cls.from_dict(load(text))

    def sweep(self, stage: str, thresholds, labels, inputs=None, *, text: str | None = None, price_per_hour=None):
        """Try a cascade at several thresholds on labelled inputs: per threshold, the accuracy, the share
        sent to the fallback and the $ per 1M items (specialist on every item, fallback on that share).

        The pipeline runs once (the cascade's fallback answers every record that reaches it, so each
        threshold is scored on the same answers). ``stage`` is the cascade's field; ``labels`` the gold
        labels, one per input, or a column of the ``inputs`` DataFrame; ``inputs`` default to `sample`.
        Returns a `Sweep` (``.table``, ``.figure()``).
        """
        import numpy as np
        import pandas as pd

        from ..backends.device import device_kind
        from ..settings import config
        from ..tasks import Label

        key = next((k for k, spec in _walk_ids(self.stages) if spec["kind"] == "cascade" and spec["field"] == stage),
                   None)
        if key is None:
            fields = [spec["field"] for _, spec in _walk_ids(self.stages) if spec["kind"] == "cascade"]
            raise PipelineError(f"no cascade writes {stage!r}; cascades: {', '.join(fields) or 'none'}")
        inputs = self.sample if inputs is None else inputs
        if inputs is None:
            raise PipelineError("sweep needs inputs (or a pipeline sample)")
        if isinstance(labels, str):
            if not isinstance(inputs, pd.DataFrame) or labels not in inputs.columns:
                raise PipelineError(f"labels={labels!r} names no column of the inputs")
            labels = inputs[labels].tolist()
        labels = list(labels)
        records = self.records(inputs, text=text)
        if len(labels) != len(records):
            raise PipelineError(f"{len(labels)} labels for {len(records)} inputs")
        thresholds = sorted(float(t) for t in thresholds)
        if not thresholds or not all(0 <= t <= 1 for t in thresholds):
            raise PipelineError("thresholds must be numbers in [0, 1]")
        position = {id(r): i for i, r in enumerate(records)}
        self.validate(fields=set().union(*(r.keys() for r in records)))
        context = _Context(self.functions, capture=key)
        _run(self.stages, records, context, prefix="")
        captured = context.captured
        if not captured or not captured["records"]:
            raise PipelineError(f"no input reached the cascade {stage!r}")
        gold = [labels[position[id(r)]] for r in captured["records"]]
        first, every = captured["specialist"], captured["fallback"]
        scores = np.array([p.score if isinstance(p, Label) and p.score is not None else -1.0 for p in first])
        first_ok = np.array([isinstance(p, Label) and p.label == g for p, g in zip(first, gold)])
        fallback_ok = np.array([isinstance(p, Label) and p.label == g for p, g in zip(every, gold)])
        n = len(gold)
        per_item = (captured["specialist_seconds"] / n, captured["fallback_seconds"] / n)
        prices = []
        for model in captured["models"]:
            if isinstance(price_per_hour, dict):
                value = price_per_hour.get(model.alias, price_per_hour.get(device_kind(model.device)))
            else:
                value = price_per_hour
            prices.append(config.price(device_kind(model.device)) if value is None else float(value))
        rows = []
        for threshold in thresholds:
            unsure = scores < threshold
            correct = np.where(unsure, fallback_ok, first_ok)
            share = float(unsure.mean())
            usd = (prices[0] * per_item[0] + share * prices[1] * per_item[1]) / 3600 * 1e6
            rows.append({"threshold": threshold, "accuracy": float(correct.mean()), "fallback_share": share,
                         "usd_per_1m": usd, "items": n})
        return Sweep(pd.DataFrame(rows), stage=stage, models=tuple(m.alias for m in captured["models"]),
                     specialist_accuracy=float(first_ok.mean()), fallback_accuracy=float(fallback_ok.mean()))

    def to_cell(self) -> str:
        """The stages in the ``%%specnb pipe`` syntax."""
        return "\n".join(render(s) for s in self.stages)

    def __len__(self) -> int:
        return len(self.stages)

    def preview(self):
        """Run on the first `preview_size` items of `sample`; the output DataFrame (also `last_preview`)."""
        if self.sample is None:
            raise PipelineError("no sample to preview on: %%specnb pipe NAME --sample VAR (a list or DataFrame)")
        data = self.sample.head(self.preview_size) if hasattr(self.sample, "head") else list(self.sample)[
            :self.preview_size]
        self.last_preview = self(data)
        return self.last_preview

    def widget(self, **kwargs):
        """The pipeline view (`specnb.widgets.PipelineView`): the stage graph with each stage's items/s and
        share of the time, and the sample table with every field."""
        from ..widgets import PipelineView

        return PipelineView(self, **kwargs)

    def _ipython_display_(self) -> None:
        """In a Jupyter kernel, the pipeline view; elsewhere, the plain HTML table and text."""
        from ..widgets._base import show

        show(self)

    def _repr_html_(self) -> str:
        import html

        e = html.escape
        profile = self.last_profile
        rows = []
        for position, spec in enumerate(self.stages):
            stats = ""
            if profile is not None and str(position) in profile.index:
                row = profile.loc[str(position)]
                rate = row["items_per_s"]
                stats = (f"{int(row['items'])} items · {'∞' if rate == math.inf else f'{rate:,.1f}'}/s · "
                         f"{row['share'] * 100:.0f}% of the time")
                if row.get("fallback_share") is not None and not _nan(row.get("fallback_share")):
                    stats += f" · {row['fallback_share'] * 100:.0f}% to the fallback"
            rows.append(f"<tr><td>{position + 1}</td><td><code>{e(render(spec))}</code></td><td>{e(stats)}</td></tr>")
        table = ""
        if self.last_preview is not None:
            table = self.last_preview.head(self.preview_size).to_html(escape=True, max_cols=30, na_rep="–")
        return (f'<div class="specnb-pipeline-html"><strong>{e(self.name)}</strong> · {len(self.stages)} stages'
                f"<table><tbody>{''.join(rows)}</tbody></table>{table}</div>")

    def __repr__(self) -> str:
        body = "".join(f"\n  {render(s)}" for s in self.stages)
        return f"<specnb.Pipeline {self.name!r}: {len(self.stages)} stages{body}>"


# -- stage helpers ---------------------------------------------------------------------------------------------
class Sweep:
    """`Pipeline.sweep`'s result: ``table`` (threshold, accuracy, fallback_share, usd_per_1m, items) and
    ``figure()``, a plotly chart of accuracy against the share sent to the fallback and the cost."""

    def __init__(self, table, *, stage, models, specialist_accuracy, fallback_accuracy):
        self.table = table
        self.stage = stage
        self.models = models
        self.specialist_accuracy = specialist_accuracy
        self.fallback_accuracy = fallback_accuracy

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
        fig.update_layout(title=f"Cascade {self.stage}: {self.models[0]} → {self.models[1]}", template="plotly_white",
                          xaxis_title="threshold (specialist score under which the fallback answers)",
                          legend={"orientation": "h", "y": -0.25}, margin={"t": 50})
        fig.update_yaxes(title_text="accuracy / share", range=[0, 1.05], secondary_y=False)
        fig.update_yaxes(title_text="$ per 1M items", secondary_y=True)
        return fig

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.table)
        display(self.figure())

    def __repr__(self) -> str:
        return f"<specnb.Sweep of cascade {self.stage!r} ({self.models[0]} → {self.models[1]})>\n{self.table}"


def _walk_ids(stages, prefix: str = ""):
    for position, spec in enumerate(stages):
        key = f"{prefix}{position}"
        yield key, spec
        if spec["kind"] == "route":
            for branch, inner in spec["branches"].items():
                yield from _walk_ids(inner, f"{key}.{branch}.")
            yield from _walk_ids(spec.get("default", []), f"{key}.*.")


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _walk(stages):
    """Every stage spec, routes' branches included, in order."""
    return (spec for _, spec in _walk_ids(stages))


def _reads(spec) -> list[str]:
    kind = spec["kind"]
    if kind in ("model", "cascade"):
        return [spec["input"]]
    if kind == "route":
        return [spec["field"]]
    return list(spec.get("reads", []))


def _writes(spec) -> list[str]:
    kind = spec["kind"]
    if kind in ("model", "cascade"):
        return [spec["field"]]
    if kind == "python":
        return list(spec.get("writes", []))
    return []


def _function(spec, functions: dict):
    path = spec["function"]
    if path in functions:
        return functions[path]
    module, _, qualname = path.partition(":")
    try:
        target = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise PipelineError(f"{_where(spec)}python stage {path!r} cannot be imported ({error}); functions defined in "
                            "a notebook run only there: move it to a module to run the pipeline elsewhere") from None
    if getattr(target, "_specnb_stage", None) is None:
        raise PipelineError(f"{_where(spec)}{path!r} is not decorated with @specnb.stage")
    functions[path] = target
    return target


def _model_tasks(name: str, spec) -> tuple:
    from .. import registry
    from ..backends.resolve import resolve

    def own_first(task, tasks):
        return (task, *[t for t in tasks if t != task])

    if name in registry:
        model = registry.get(name)
        return own_first(model.task, model.tasks)
    try:
        plan = resolve(name, task=None)
        return own_first(plan.task, plan.tasks)
    except SpecnbError as error:
        loaded = ", ".join(m.alias for m in registry) or "none"
        raise PipelineError(f"{_where(spec)}unknown model {name!r} ({type(error).__name__}: {error}); "
                            f"loaded: {loaded}; see specnb.catalog()") from None


def _task(spec, name: str, tasks: tuple) -> str:
    if spec.get("task"):
        return spec["task"]
    if spec.get("labels") is not None or spec["kind"] == "cascade":
        return "classify" if spec.get("labels") is not None else tasks[0]
    own = tasks[0]
    if own in ("embed", "generate"):
        raise PipelineError(f"{_where(spec)}model {name!r} ({own}) needs task= or labels= to know what to answer")
    return own


def _stage_models(spec) -> list[tuple[str, str]]:
    """The (model, task) pairs a model stage, or a cascade's specialist and fallback, run: a cascade's two
    models both answer its specialist's task. Empty for routes and python stages."""
    if spec["kind"] == "model":
        names = [spec["model"]]
    elif spec["kind"] == "cascade":
        names = [spec["specialist"], spec["fallback"]]
    else:
        return []
    task = _task(spec, names[0], _model_tasks(names[0], spec))
    return [(name, task) for name in names]


def _write(record: dict, field: str, prediction) -> None:
    from ..tasks import Entities, Invalid, Label

    record.pop(f"{field}:error", None)
    if isinstance(prediction, Label):
        record[field], record[f"{field}:score"] = prediction.label, prediction.score
    elif isinstance(prediction, Entities):
        record[field] = [{"start": s.start, "end": s.end, "label": s.label, "text": s.text} for s in prediction.spans]
    elif isinstance(prediction, Invalid):
        record[field], record[f"{field}:error"] = None, prediction.reason
    else:
        record[field] = prediction.to_dict()


def _run(stages, records: list[dict], context: _Context, prefix: str) -> None:
    for position, spec in enumerate(stages):
        if not records:
            return
        key = f"{prefix}{position}"
        kind = spec["kind"]
        started = time.perf_counter()
        if kind == "model":
            ((name, task),) = _stage_models(spec)
            model = context.model(name, task)
            predictions = model.predict([r.get(spec["input"]) for r in records], task=task,
                                        labels=spec.get("labels"), progress=False)
            for record, prediction in zip(records, predictions):
                _write(record, spec["field"], prediction)
            context.record(key, spec, len(records), time.perf_counter() - started,
                           weight_bytes=model.weight_bytes or 0, models=model.alias)
        elif kind == "cascade":
            _cascade(spec, records, context, key, started)
        elif kind == "route":
            groups: dict[str, list] = {}
            for record in records:
                value = record.get(spec["field"])
                branch = str(value) if value is not None and str(value) in spec["branches"] else "*"
                groups.setdefault(branch, []).append(record)
            context.record(key, spec, len(records), time.perf_counter() - started)
            for branch, members in groups.items():
                inner = spec["branches"][branch] if branch != "*" else spec.get("default", [])
                _run(inner, members, context, prefix=f"{key}.{branch}.")
        else:
            function = _function(spec, context.functions)
            result = function(records)
            if result is not None:
                result = list(result)
                if len(result) != len(records) or not all(isinstance(r, dict) for r in result):
                    raise PipelineError(f"python stage {spec['function']!r} must return one dict per record "
                                        f"({len(records)}), or None after changing them in place")
                for record, new in zip(records, result):
                    if new is not record:
                        record.clear()
                        record.update(new)
            context.record(key, spec, len(records), time.perf_counter() - started)


def _cascade(spec, records, context, key, started) -> None:
    from ..tasks import Label

    (first_name, task), (second_name, _) = _stage_models(spec)
    specialist = context.model(first_name, task)
    fallback = context.model(second_name, task)
    values = [r.get(spec["input"]) for r in records]
    first = specialist.predict(values, task=task, labels=spec.get("labels"), progress=False)
    specialist_seconds = time.perf_counter() - started
    unsure = [i for i, p in enumerate(first)
              if not isinstance(p, Label) or p.score is None or p.score < spec["threshold"]]
    if context.capture == key:  # a sweep: the fallback answers every record, once
        fallback_started = time.perf_counter()
        every = fallback.predict(values, task=task, labels=spec.get("labels"), progress=False)
        context.captured = {"records": list(records), "specialist": first, "fallback": every,
                            "specialist_seconds": specialist_seconds,
                            "fallback_seconds": time.perf_counter() - fallback_started,
                            "models": (specialist, fallback)}
        second = [every[i] for i in unsure]
    else:
        second = fallback.predict([values[i] for i in unsure], task=task, labels=spec.get("labels"),
                                  progress=False) if unsure else []
    answers = list(first)
    by = [specialist.alias] * len(records)
    for i, prediction in zip(unsure, second):
        answers[i], by[i] = prediction, fallback.alias
    for record, prediction, model in zip(records, answers, by):
        _write(record, spec["field"], prediction)
        record[f"{spec['field']}:by"] = model
    seconds = time.perf_counter() - started
    context.record(key, spec, len(records), seconds, fallback_items=len(unsure),
                   specialist_seconds=specialist_seconds, fallback_seconds=seconds - specialist_seconds,
                   weight_bytes=(specialist.weight_bytes or 0) + (fallback.weight_bytes or 0),
                   models=f"{specialist.alias} → {fallback.alias}")


def _profile(context: _Context, total: float):
    import pandas as pd

    rows = []
    for key, entry in context.stats.items():
        row = {"stage_id": key, **entry}
        row["items_per_s"] = entry["items"] / entry["seconds"] if entry["seconds"] > 0 else math.inf
        row["share"] = entry["seconds"] / total if total > 0 else float("nan")
        if "fallback_items" in entry:
            row["fallback_share"] = entry["fallback_items"] / entry["items"] if entry["items"] else float("nan")
        rows.append(row)
    columns = ["stage_id", "stage", "kind", "models", "items", "seconds", "items_per_s", "share", "weight_bytes",
               "fallback_share"]
    frame = pd.DataFrame(rows)
    for column in columns:
        if column not in frame:
            frame[column] = None
    return frame[columns].set_index("stage_id")
