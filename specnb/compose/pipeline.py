"""`Pipeline`: ordered stages over one record (a dict) per input — model, route, cascade and python stages.

A pipeline is its list of stage specs (plain dicts, exactly what its YAML holds: `specnb.compose.spec`);
models are resolved (loaded aliases first, then `specnb.load`) when it runs. `add` validates
(`specnb.compose.validate`) before anything changes; `run` and ``pipe(inputs)`` execute in this process
(`specnb.compose.executor`), `specnb.compose.ray_engine.run_ray` on Ray Data; `sweep` tries a cascade's
threshold (`specnb.compose.sweep`). ``sample`` / ``preview`` hold the notebook preview's data and output.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from ..backends.device import trim_heap
from ..errors import PipelineError
from ..presentation import plural, stage_stats, stage_texts
from ..tasks.base import normalize_input, text_list
from .executor import Context, profile_frame, records_frame, run_stages
from .spec import STAGE_KINDS, import_path, render, stage, stage_marks, strip, walk, where
from .sweep import Sweep, run_sweep
from .validate import python_function, validate

__all__ = ["Pipeline", "stage", "STAGE_KINDS", "Sweep"]


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
        if not isinstance(name, str) or not name:
            raise PipelineError(f"name= is the pipeline's name (a non-empty str), got {type(name).__name__} {name!r:.60}")
        if not isinstance(input, str) or not input:
            raise PipelineError(f"input= is the field holding each input's text (a non-empty str, default 'text'), "
                                f"got {type(input).__name__} {input!r:.60}")
        if functions is not None and not isinstance(functions, Mapping):
            raise PipelineError(f"functions= maps import paths to python stages (a dict), got {type(functions).__name__}")
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
        for position, spec in enumerate(stages if isinstance(stages, (list, tuple)) else [stages]):
            if callable(spec):
                specs.append(self._python_spec(spec))
            elif isinstance(spec, Mapping):
                specs.append(self._resolve(dict(spec), namespace or {}))
            else:
                raise PipelineError(f"stage {position + 1} is {type(spec).__name__} {spec!r:.60}; a stage is a dict "
                                    "(see the README's pipeline section) or a @specnb.stage function")
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
        marks = stage_marks(function)
        if marks is None:
            raise PipelineError(f"{getattr(function, '__name__', function)!r} is not a python stage: decorate it "
                                "with @specnb.stage")
        path = import_path(function)
        self.functions[path] = function
        return {"kind": "python", "function": path, **{k: v for k, v in marks.items() if v}}

    def _resolve(self, spec: dict, namespace: dict) -> dict:
        kind = spec.get("kind")
        if kind not in STAGE_KINDS:
            raise PipelineError(f"{where(spec)}unknown stage kind {kind!r}; valid: {', '.join(STAGE_KINDS)}")
        for key, value in list(spec.items()):
            if isinstance(value, dict) and set(value) == {"var"}:
                name = value["var"]
                if name not in namespace:
                    raise PipelineError(f"{where(spec)}{key}={name}: no variable called {name!r} in the notebook")
                value = namespace[name]
                if key == "labels" and not isinstance(value, dict):
                    value = list(value)
                spec[key] = value
        if kind == "python":
            function = spec["function"]
            if ":" not in function:
                found = namespace.get(function)
                if found is None or not callable(found):
                    raise PipelineError(f"{where(spec)}no function called {function!r} in the notebook")
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
        the stage that writes it (a cycle), or a model that cannot serve its task (see `validate.validate`)."""
        validate(self.stages if stages is None else stages, input=self.input, functions=self.functions,
                 fields=fields)

    # -- running ----------------------------------------------------------------------------------------
    def run(self, records: list[dict]) -> list[dict]:
        """Run every stage on ``records`` (dicts, changed in place and returned); `last_profile` keeps the
        per-stage statistics."""
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise PipelineError(f"Pipeline.run takes a list of dicts (records), got {type(records).__name__}; "
                                "call the pipeline on texts or a DataFrame instead: pipe(inputs)")
        fields = set().union(*(r.keys() for r in records)) if records else set()
        self.validate(fields=fields)
        context = Context(self.functions)
        started = time.perf_counter()
        run_stages(self.stages, records, context)
        self.last_profile = profile_frame(context.stats, time.perf_counter() - started)
        trim_heap()  # what the stages freed goes back to the system (a few ms; 90 MB after a CPU cascade)
        return records

    def records(self, inputs, *, text: str | None = None) -> list[dict]:
        """``inputs`` (list of str, Series or DataFrame) as records with the input field; texts normalised
        once, here (`normalize_input`: plain str, lone surrogates as U+FFFD), so that every stage, Ray and the
        output files see the same values."""
        import pandas as pd

        if text is not None and (not isinstance(text, str) or not text):
            raise PipelineError(f"text= names the DataFrame's text column (a non-empty str), got {type(text).__name__} {text!r:.60}")
        if isinstance(inputs, pd.DataFrame):
            column = text or self.input
            if column not in inputs.columns:
                raise PipelineError(f"the data has no {column!r} column; columns: {', '.join(map(str, inputs.columns))}")
            frame = inputs.rename(columns={column: self.input}) if column != self.input else inputs
            if frame.columns.duplicated().any():
                raise PipelineError(f"the data repeats column names {sorted(set(map(str, frame.columns[frame.columns.duplicated()])))}; "
                                    "rename them so that each column is one field")
            return [{k: normalize_input(v) for k, v in row.items()} for row in frame.to_dict("records")]
        if isinstance(inputs, str):
            raise PipelineError("a pipeline takes a list of texts or a DataFrame, not one str: pipe([text])")
        values = text_list(inputs, call="pipe", arg="inputs", error=PipelineError)
        return [{self.input: normalize_input(value)} for value in values]

    def __call__(self, inputs, *, text: str | None = None):
        """Run on a list of texts or a DataFrame; a DataFrame with the inputs and every field written."""
        import pandas as pd

        records = self.run(self.records(inputs, text=text))
        frame = records_frame(records)  # one row per input, also when a stage emptied the records
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
        """The pipeline as plain data (what its YAML holds): name, input and the stage specs."""
        return {"name": self.name, "input": self.input, "stages": strip(self.stages)}

    @classmethod
    def from_dict(cls, spec: dict, *, functions=None) -> Pipeline:
        """A pipeline from `to_dict` output (validated)."""
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
    def from_yaml(cls, source, *, trust_code: bool = False) -> Pipeline:
        """Read YAML text or a file (a safe loader: plain YAML only, at most 1 MB); every malformed document
        is a `PipelineError` naming the YAML line and the key.

        Loading never imports code unless ``trust_code=True``: a python stage's module must already be
        imported (``import mymodule`` first), and its function decorated with ``@specnb.stage``."""
        from .yaml_io import load, read

        text = source
        if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith(
                (".yaml", ".yml"))):
            text = read(Path(source))
        spec = load(text)
        functions: dict = {}
        for stage_spec in walk(spec["stages"]):
            if stage_spec["kind"] == "python" and ":" in stage_spec["function"]:
                python_function(stage_spec, functions, trust_code=trust_code)
        return cls.from_dict(spec, functions=functions)

    def sweep(self, stage: str, thresholds, labels, inputs=None, *, text: str | None = None, price_per_hour=None):
        """Try a cascade at several thresholds on labelled inputs: per threshold, the accuracy, the share
        sent to the fallback and the $ per 1M items (specialist on every item, fallback on that share).

        The pipeline runs once (the cascade's fallback answers every record that reaches it, so each
        threshold is scored on the same answers). ``stage`` is the cascade's field; ``labels`` the gold
        labels, one per input, or a column of the ``inputs`` DataFrame; ``inputs`` default to `sample`.
        Returns a `Sweep` (``.table``, ``.figure()``).
        """
        return run_sweep(self, stage, thresholds, labels, inputs, text=text, price_per_hour=price_per_hour)

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

    def _repr_html_(self) -> str:
        import html

        e = html.escape
        profile = self.last_profile
        rows = []
        for position, spec in enumerate(self.stages):
            stats = ""
            if profile is not None and str(position) in profile.index:
                row = profile.loc[str(position)]
                stats = stage_stats(stage_texts(row["items"], row["items_per_s"], row["seconds"], row["share"],
                                                row.get("fallback_share"), None))
            rows.append(f"<tr><td>{position + 1}</td><td><code>{e(render(spec))}</code></td><td>{e(stats)}</td></tr>")
        table = ""
        if self.last_preview is not None:
            table = self.last_preview.head(self.preview_size).to_html(escape=True, max_cols=30, na_rep="–")
        return (f'<div class="specnb-pipeline-html"><strong>{e(self.name)}</strong> · {plural(len(self.stages), "stage")}'
                f"<table><tbody>{''.join(rows)}</tbody></table>{table}</div>")

    def __repr__(self) -> str:
        body = "".join(f"\n  {render(s)}" for s in self.stages)
        return f"<specnb.Pipeline {self.name!r}: {plural(len(self.stages), 'stage')}{body}>"
