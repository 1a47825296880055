"""Run a `Pipeline` on Ray Data: one ``map_batches`` step per top-level stage.

    from specnb.compose.ray_engine import run_ray
    records = run_ray(pipe, pipe.records(frame), batch_size=64)

Each step runs specnb's own local executor (``_run``) on its batch, so a record comes out exactly as
``pipe.run`` leaves it. A step that holds a model — a model or cascade stage, or a route with one
inside — is a callable class on an actor pool (``ActorPoolStrategy(size=1)``) that loads its models
once, in ``__init__``; a python stage, or a route of python stages only, is a plain task.

Records cross Ray's blocks as one binary column of pickled dicts (plus their position), not as one
column per field: Arrow would turn a field a route skipped into None or NaN, an empty span list into
null, and mixed types into whatever it can unify, whereas pickle keeps every value, its type and every
missing key as they were.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import pickle
import shutil
import sys
import tempfile
from pathlib import Path

from ..errors import MissingDependencyError, PipelineError, SpecnbError
from .pipeline import _Context, _function, _model_tasks, _run, _task, _walk

__all__ = ["run_ray"]

_INSTALL_HINT = "pip install 'specnb[ray]'"
#: Variables a worker needs to find the same caches and behave as the driver does.
_SHARED_ENV = (
    "SPECNB_HOME", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "TRANSFORMERS_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY", "XDG_CACHE_HOME", "TORCH_HOME", "TOKENIZERS_PARALLELISM",
)
_INDEX, _RECORD = "_specnb_i", "_specnb_record"
_MODEL_KINDS = ("model", "cascade")


def _ray():
    """``ray`` with Ray Data, imported without telemetry or an auth token in ``~/.ray``."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as error:
        raise MissingDependencyError(f"the ray engine needs Ray Data ({error}): {_INSTALL_HINT}") from None
    return ray


def _short_temp_dir() -> str:
    """A fresh temp folder with a short path (Ray's socket paths must stay under 107 characters)."""
    base = "/tmp" if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK) else tempfile.gettempdir()
    path = tempfile.mkdtemp(prefix="ray", dir=base)
    atexit.register(shutil.rmtree, path, True)  # registered before ray.init, so it runs after Ray's shutdown
    return path


def _init(ray, num_cpus) -> None:
    if ray.is_initialized():
        return
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _temp_dir=_short_temp_dir(),
             ignore_reinit_error=True)


# -- what a worker needs ----------------------------------------------------------------------------------
def _encode(index, records: list[dict]):
    """A block: each record's position and the record pickled (every value, type and missing key kept)."""
    import pyarrow as pa

    return pa.table({
        _INDEX: pa.array(index, pa.int64()),
        _RECORD: pa.array([pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in records], pa.large_binary()),
    })


def _decode(batch) -> tuple[list[int], list[dict]]:
    return batch.column(_INDEX).to_pylist(), [pickle.loads(b) for b in batch.column(_RECORD).to_pylist()]


def _model_names(spec) -> list[str]:
    return [spec["model"]] if spec["kind"] == "model" else [spec["specialist"], spec["fallback"]]


def _recipes(specs) -> dict:
    """How a worker loads each model the driver has under an alias (a worker's registry starts empty)."""
    from .. import registry

    recipes = {}
    for spec in _walk(specs):
        if spec["kind"] not in _MODEL_KINDS:
            continue
        for name in _model_names(spec):
            if name in recipes or name not in registry:
                continue
            model = registry.get(name)
            source = model.source
            key = model._key[0]
            if model.backend == "callable":
                source = model.native  # the function itself, pickled by Ray (cloudpickle)
            elif isinstance(key, str) and key.startswith("path:"):
                source = key[len("path:"):]  # absolute: a worker's working directory is not the driver's
            on_cpu = str(model.device).startswith("cpu")
            recipes[name] = {"source": source, "task": model.task, "device": "cpu" if on_cpu else "auto",
                             "dtype": model.dtype if on_cpu and model.dtype else "auto"}
    return recipes


def _import_roots(functions) -> list[str]:
    """The folders the driver imported each python stage's module from. A worker finds only installed
    packages and the driver's working directory; this puts those folders on its PYTHONPATH too, so it
    imports ``module:qualname`` from the same file. (Functions of ``__main__`` — a notebook's — have
    no such folder: Ray pickles them by value.)"""
    roots = []
    for function in functions:
        module = sys.modules.get(getattr(function, "__module__", None) or "")
        path = getattr(module, "__file__", None)
        if module is None or module.__name__ == "__main__" or not path:
            continue
        root = Path(path).resolve().parent
        for _ in range(module.__name__.count(".") + (Path(path).stem == "__init__")):
            root = root.parent
        if str(root) not in roots:
            roots.append(str(root))
    return roots


def _settings() -> dict:
    from ..settings import config

    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    values["progress"] = False
    return values


class _Step:
    """One top-level stage: its specs, the functions its python stages call, its models' recipes."""

    def __init__(self, payload: dict):
        from .. import load
        from ..settings import config

        for name, value in payload["settings"].items():
            setattr(config, name, value)
        self.stages = payload["stages"]
        self.prefix = payload["prefix"]
        self.context = _Context(dict(payload["functions"]))
        for name, recipe in payload["models"].items():
            load(recipe["source"], alias=name, task=recipe["task"], device=recipe["device"], dtype=recipe["dtype"])
        for spec in _walk(self.stages):  # load every model now, once, not on the first batch
            if spec["kind"] in _MODEL_KINDS:
                for name in _model_names(spec):
                    self.context.model(name, _task(spec, name, _model_tasks(name, spec)))

    def __call__(self, batch):
        index, records = _decode(batch)
        _run(self.stages, records, self.context, prefix=self.prefix)
        return _encode(index, records)


def _task_step(batch, payload):
    """A python-only step as a Ray task (nothing to load, so no actor to hold)."""
    return _Step(payload)(batch)


# -- the driver ------------------------------------------------------------------------------------------------
def _cuda_available() -> bool:
    try:
        from ..backends.device import devices

        return devices.cuda_available()
    except ImportError:
        return False


def _unwrap(error: BaseException) -> BaseException | None:
    """The specnb error a worker raised, from the chain Ray wraps it in."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, SpecnbError):
            return error
        cause = getattr(error, "cause", None)  # RayTaskError keeps the worker's exception here
        error = cause if isinstance(cause, BaseException) else (error.__cause__ or error.__context__)
    return None


def run_ray(pipeline, records: list[dict], *, batch_size: int = 64, num_cpus: int | None = None,
            num_gpus_per_model: float | None = None, progress: bool = True) -> list[dict]:
    """Run ``pipeline`` on ``records`` with Ray Data; the records, changed in place, as `Pipeline.run` does.

    Parameters
    ----------
    pipeline : Pipeline
    records : list of dict
        One per input (`Pipeline.records` makes them from texts or a DataFrame).
    batch_size : int
        Records per ``map_batches`` call (and per block).
    num_cpus : int, optional
        CPUs for the local Ray instance this starts when Ray is not initialized (default: all).
    num_gpus_per_model : float, optional
        GPUs each model actor asks for; default 1 / (steps that hold models) when CUDA is available, else 0.
    progress : bool
        Ray Data's progress bars.

    Returns
    -------
    list of dict
        ``records``, each with the fields the stages wrote, in their order: equal to ``pipeline.run(records)``.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise PipelineError(f"batch_size must be a positive int, got {batch_size!r}")
    fields = set().union(*(r.keys() for r in records)) if records else set()
    pipeline.validate(fields=fields)
    if not records:
        return records
    ray = _ray()
    functions = dict(pipeline.functions)
    for spec in _walk(pipeline.stages):
        if spec["kind"] == "python":
            _function(spec, functions)  # fails here, naming the stage, if it cannot be imported
    _init(ray, num_cpus)

    steps = [[spec] for spec in pipeline.stages]
    holds_models = [any(s["kind"] in _MODEL_KINDS for s in _walk(step)) for step in steps]
    actors = sum(holds_models)
    if num_gpus_per_model is None:
        num_gpus_per_model = 1 / actors if actors and _cuda_available() else 0
    # Every step runs at once (Ray Data streams), so each takes a share of the CPUs no bigger than one.
    cpus = ray.cluster_resources().get("CPU", 1)
    cpu_share = min(1.0, cpus / (len(steps) + 1))
    env = {name: os.environ[name] for name in _SHARED_ENV if name in os.environ}
    paths = _import_roots(functions[s["function"]] for s in _walk(pipeline.stages) if s["kind"] == "python")
    if paths:
        env["PYTHONPATH"] = os.pathsep.join([*paths, *filter(None, [os.environ.get("PYTHONPATH")])])
    settings = _settings()

    data_context = ray.data.DataContext.get_current()
    saved = {name: getattr(data_context, name) for name in
             ("enable_progress_bars", "enable_operator_progress_bars", "raise_original_map_exception",
              "enable_auto_log_stats")}
    saved_order = data_context.execution_options.preserve_order
    data_context.enable_progress_bars = progress
    data_context.enable_operator_progress_bars = progress
    data_context.raise_original_map_exception = True
    data_context.enable_auto_log_stats = False
    data_context.execution_options.preserve_order = True
    try:
        blocks = [_encode(range(start, min(start + batch_size, len(records))), records[start:start + batch_size])
                  for start in range(0, len(records), batch_size)]
        dataset = ray.data.from_arrow(blocks)
        for position, (step, models) in enumerate(zip(steps, holds_models)):
            payload = {"stages": step, "prefix": str(position), "settings": settings,
                       "functions": {path: functions[path] for path in
                                     (s["function"] for s in _walk(step) if s["kind"] == "python")},
                       "models": _recipes(step)}
            common = {"batch_size": batch_size, "batch_format": "pyarrow", "num_cpus": cpu_share,
                      "runtime_env": {"env_vars": env}, "udf_modifying_row_count": False}
            if models:
                gpus = {"num_gpus": num_gpus_per_model} if num_gpus_per_model else {}
                dataset = dataset.map_batches(_Step, fn_constructor_kwargs={"payload": payload},
                                              compute=ray.data.ActorPoolStrategy(size=1), **gpus, **common)
            else:
                dataset = dataset.map_batches(_task_step, fn_kwargs={"payload": payload}, **common)
        index, done = [], []
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            got_index, got = _decode(batch)
            index.extend(got_index)
            done.extend(got)
    except Exception as error:
        cause = _unwrap(error)
        if cause is not None and cause is not error:
            raise cause.with_traceback(None) from error
        raise
    finally:
        for name, value in saved.items():
            setattr(data_context, name, value)
        data_context.execution_options.preserve_order = saved_order

    if sorted(index) != list(range(len(records))):
        raise SpecnbError(f"the ray engine returned {len(index)} records for {len(records)} inputs")
    for position, record in sorted(zip(index, done), key=lambda pair: pair[0]):
        original = records[position]
        original.clear()
        original.update(record)
    pipeline.last_profile = None  # per-stage timings live in the workers; Ray Data's own stats cover the run
    return records
