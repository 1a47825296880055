"""Run a `Pipeline` on Ray Data: one ``map_batches`` step per top-level stage.

    from specnb.compose.ray_engine import run_ray
    records = run_ray(pipe, pipe.records(frame), batch_size=64)

Each step runs specnb's own local executor (`specnb.compose.executor.run_stages`) on its batch, so a record comes out exactly as
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
import copy
import dataclasses
import logging
import os
import pickle
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from ..errors import MissingDependencyError, PipelineError, SpecnbError
from .executor import Context, profile_frame, run_stages
from .spec import walk
from .validate import python_function, stage_models

__all__ = ["run_ray"]

_INSTALL_HINT = "pip install 'specnb[ray]'"
#: Variables a worker needs to find the same caches and behave as the driver does.
_SHARED_ENV = (
    "SPECNB_HOME", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "TRANSFORMERS_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY", "XDG_CACHE_HOME", "TORCH_HOME", "TOKENIZERS_PARALLELISM",
)
_INDEX, _RECORD = "_specnb_i", "_specnb_record"
_STATS = "_specnb_stats_"
_MODEL_KINDS = ("model", "cascade")
_SUMMED = ("items", "seconds", "fallback_items", "specialist_seconds", "fallback_seconds")


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
    return tempfile.mkdtemp(prefix="ray", dir=base)


def _shutdown(ray, path: str) -> None:
    """At exit: stop the Ray this module started, then remove its temp folder (in that order, or Ray's
    last log lines would make the folder again)."""
    try:
        if ray.is_initialized():
            ray.shutdown()
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _init(ray, num_cpus) -> None:
    if ray.is_initialized():
        return
    path = _short_temp_dir()
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _temp_dir=path,
                 ignore_reinit_error=True)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    atexit.register(_shutdown, ray, path)  # runs before Ray's own exit hook (registered earlier)


# -- what a worker needs ----------------------------------------------------------------------------------
def _encode(index, records: list[dict], carried=None, stats=None, position: int | None = None):
    """A block: each record's position and the record pickled (every value, type and missing key kept);
    a step adds its per-stage statistics for the batch in a column of its own, on the first row, and
    carries the earlier steps' columns on."""
    import pyarrow as pa

    columns = {
        _INDEX: pa.array(index, pa.int64()),
        _RECORD: pa.array([pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in records], pa.large_binary()),
    }
    if carried is not None:
        for name in carried.column_names:
            if name.startswith(_STATS):
                columns[name] = carried.column(name)
    if stats is not None:
        blob = pickle.dumps(stats, protocol=pickle.HIGHEST_PROTOCOL)
        columns[f"{_STATS}{position}"] = pa.array([blob] + [None] * (len(records) - 1), pa.large_binary())
    return pa.table(columns)


def _decode(batch) -> tuple[list[int], list[dict]]:
    return batch.column(_INDEX).to_pylist(), [pickle.loads(b) for b in batch.column(_RECORD).to_pylist()]


def _merge_stats(batches, total: dict) -> None:
    """Add a step's per-batch statistics (`Context.stats` shape) into ``total``."""
    for stats in batches:
        for key, entry in stats.items():
            into = total.setdefault(key, {**entry, **{k: 0 for k in _SUMMED if k in entry}})
            for name, value in entry.items():
                if name in _SUMMED:
                    into[name] += value
                elif name == "weight_bytes":
                    into[name] = max(into.get(name) or 0, value or 0)


def _recipes(specs) -> dict:
    """How a worker loads each model the driver has under an alias (a worker's registry starts empty)."""
    from ..backends.model_registry import registry

    recipes = {}
    for spec in walk(specs):
        if spec["kind"] not in _MODEL_KINDS:
            continue
        for name, _ in stage_models(spec):
            if name in recipes or name not in registry:
                continue
            model = registry.get(name)
            source = model.source
            key = model._key[0]
            if model.backend == "callable":
                source = model.native  # the function itself (cloudpickle: by value when it is a notebook's)
            elif isinstance(key, str) and key.startswith("path:"):
                source = key[len("path:"):]  # absolute: a worker's working directory is not the driver's
            on_cpu = str(model.device).startswith("cpu")
            recipes[name] = {"source": source, "task": model.task, "device": "cpu" if on_cpu else "auto",
                             "dtype": model.dtype if on_cpu and model.dtype else "auto"}
            backend = model._backend
            if model.backend == "endpoint" and backend is not None:  # its options; the key comes from the environment
                tokenizer = backend.tokenizer_source
                recipes[name]["options"] = {
                    "method": backend.forced_method, "concurrency": backend.conn.concurrency,
                    "timeout": backend.conn.timeout, "max_retries": backend.conn.max_retries, "cache": backend.cache,
                    "tokenizer": tokenizer if tokenizer is None or isinstance(tokenizer, str) else
                    getattr(tokenizer, "name_or_path", None), "price_per_1m_tokens": model.price_per_1m_tokens}
    return recipes


def _import_roots(objects) -> list[str]:
    """The folders the driver imported these functions' modules from. A Ray worker finds installed
    packages and the driver's working directory only; with these on its ``sys.path`` it imports
    ``module:qualname`` from the same file. (A notebook's functions live in ``__main__``, which has no
    such folder: cloudpickle sends them by value.)"""
    roots = []
    for function in objects:
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

    values = {f.name: copy.deepcopy(getattr(config, f.name)) for f in dataclasses.fields(config)}
    values["progress"] = False
    return values


def _payload(step: list[dict], position: int, functions: dict, env: dict, settings: dict) -> dict:
    """What a step's worker needs. Functions and callable models travel as one cloudpickle blob that the
    worker opens after putting their folders on ``sys.path`` (Ray would unpickle them before)."""
    from ray import cloudpickle

    used = {s["function"]: functions[s["function"]] for s in walk(step) if s["kind"] == "python"}
    models = _recipes(step)
    callables = [*used.values(), *(r["source"] for r in models.values() if callable(r["source"]))]
    return {"env": env, "paths": _import_roots(callables), "settings": settings,
            "blob": cloudpickle.dumps({"stages": step, "position": position, "functions": used, "models": models})}


def _prepare(payload: dict) -> dict:
    """In a worker: the driver's cache variables and import folders, then the step itself."""
    from ray import cloudpickle

    from ..settings import config

    os.environ.update(payload["env"])
    for path in payload["paths"]:
        if path not in sys.path:
            sys.path.append(path)
    for name, value in payload["settings"].items():
        setattr(config, name, value)
    return cloudpickle.loads(payload["blob"])


class _Step:
    """One top-level stage on a batch of records, with its models loaded once."""

    def __init__(self, payload: dict):
        self.error = None
        try:
            self._setup(payload)
        except SpecnbError as error:
            # Ray keeps only the text of an actor's failed __init__; an error raised by a batch reaches
            # the driver as itself (a MemoryBudgetError stays one), so raise it on the first batch.
            self.error = error

    def _setup(self, payload: dict) -> None:
        from ..backends.model_registry import load

        step = _prepare(payload)
        self.stages, self.position = step["stages"], step["position"]
        self.context = Context(step["functions"])
        for name, recipe in step["models"].items():  # the driver's aliases (a worker's registry starts empty)
            load(recipe["source"], alias=name, task=recipe["task"], device=recipe["device"], dtype=recipe["dtype"],
                 **recipe.get("options", {}))
        for spec in walk(self.stages):  # load every model now, not on the first batch
            for name, task in stage_models(spec):
                self.context.model(name, task)

    def __call__(self, batch):
        if self.error is not None:
            raise self.error
        index, records = _decode(batch)
        self.context.stats = {}
        # This stage is the pipeline's stage `position`: its ids are the ones the local engine gives.
        run_stages(self.stages, records, self.context, first=self.position)
        return _encode(index, records, carried=batch, stats=self.context.stats, position=self.position)


def _task_step(batch, payload):
    """A step without models (python stages, or a route of them) as a plain Ray task: nothing to keep."""
    return _Step(payload)(batch)


# -- the driver ------------------------------------------------------------------------------------------------
def _cuda_available() -> bool:
    try:
        from ..backends.device import devices

        return devices.cuda_available()
    except ImportError:
        return False


def _cpus(ray) -> tuple[float, float]:
    """The cluster's CPUs, and the most one node has (what one actor can ask for)."""
    nodes = [n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
    return ray.cluster_resources().get("CPU", 1), max(nodes, default=1) or 1


def _plan(stages, *, cpus: tuple[float, float], cuda: bool, num_gpus_per_model: float | None) -> list[dict]:
    """One step per top-level stage: ``actor`` when it holds a model (models load once per actor), and
    the CPUs and GPUs it asks for. Ray Data runs every step at once, so the shares must fit together:
    a step without models takes at most one CPU, steps with models share the rest (threads for torch
    on the CPU), and ``num_gpus_per_model`` defaults to an equal share of one GPU when there is one."""
    total, per_node = cpus
    actor = [any(s["kind"] in _MODEL_KINDS for s in walk([spec])) for spec in stages]
    actors, tasks = sum(actor), len(stages) - sum(actor)
    share = min(1.0, total / (len(stages) + 1))  # one share spare, for Ray Data's own tasks
    model_cpus = min(per_node, max(share, (total - share * (tasks + 1)) / actors)) if actors else 0
    if num_gpus_per_model is None:
        num_gpus_per_model = 1 / actors if actors and cuda else 0
    return [{"stages": [spec], "actor": is_actor, "num_cpus": model_cpus if is_actor else share,
             "num_gpus": num_gpus_per_model if is_actor else 0} for spec, is_actor in zip(stages, actor)]


def _unwrap(error: BaseException) -> BaseException | None:
    """The specnb error a worker raised, innermost first, from the chain Ray wraps it in (a
    ``RayTaskError(PipelineError)`` is a PipelineError whose message carries the remote traceback)."""
    found, seen = None, set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, SpecnbError):
            found = error
        cause = getattr(error, "cause", None)  # RayTaskError keeps the worker's own exception here
        error = cause if isinstance(cause, BaseException) else error.__cause__
    return found


def run_ray(pipeline, records: list[dict], *, batch_size: int = 64, num_cpus: int | None = None,
            num_gpus_per_model: float | None = None, progress: bool = True) -> list[dict]:
    """Run ``pipeline`` on ``records`` with Ray Data; the records, changed in place, as `Pipeline.run` does.

    One ``map_batches`` step per top-level stage, in order (Ray Data streams batches through them all at
    once); steps with models run on one actor each, which loads the models once. Starts a local Ray
    when none is initialized (about 10 s; it stays up for the next run: ``ray.shutdown()`` ends it).
    Sets ``pipeline.last_profile`` from the workers' per-stage timings (shares of the stages' summed
    time, since stages overlap; the wall time in ``.attrs["wall_seconds"]``).

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
        GPUs each model actor asks for; default 1 / (steps that hold models) when CUDA is available and the
        Ray cluster has a GPU, else 0.
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
    for spec in walk(pipeline.stages):
        if spec["kind"] == "python":
            python_function(spec, functions)  # fails here, naming the stage, if it cannot be imported
    _init(ray, num_cpus)

    gpus = ray.cluster_resources().get("GPU", 0)
    if num_gpus_per_model and not gpus:
        raise PipelineError(f"num_gpus_per_model={num_gpus_per_model} but the Ray cluster has no GPU: its model "
                            "actors would wait for one forever; leave it unset (0 without CUDA)")
    holds_models = any(s["kind"] in _MODEL_KINDS for s in walk(pipeline.stages))
    cuda = bool(gpus) and num_gpus_per_model is None and holds_models and _cuda_available()
    steps = _plan(pipeline.stages, cpus=_cpus(ray), cuda=cuda, num_gpus_per_model=num_gpus_per_model)
    env = {name: os.environ[name] for name in _SHARED_ENV if name in os.environ}
    settings = _settings()

    with warnings.catch_warnings():  # Ray Data's first DataContext warns about its own deprecated fields
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.data")
        data_context = ray.data.DataContext.get_current()
    data_logger = logging.getLogger("ray.data")
    saved_level = data_logger.level
    if not progress:
        data_logger.setLevel(logging.WARNING)  # no "Starting execution of Dataset ..." lines either
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
        for position, step in enumerate(steps):
            payload = _payload(step["stages"], position, functions, env, settings)
            common = {"batch_size": batch_size, "batch_format": "pyarrow", "num_cpus": step["num_cpus"],
                      "udf_modifying_row_count": False}
            if step["actor"]:
                gpu = {"num_gpus": step["num_gpus"]} if step["num_gpus"] else {}
                dataset = dataset.map_batches(_Step, fn_constructor_kwargs={"payload": payload},
                                              compute=ray.data.ActorPoolStrategy(size=1), **gpu, **common)
            else:
                dataset = dataset.map_batches(_task_step, fn_kwargs={"payload": payload}, **common)
        index, done, stats = [], [], [[] for _ in steps]
        started = time.perf_counter()
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            got_index, got = _decode(batch)
            index.extend(got_index)
            done.extend(got)
            for position in range(len(steps)):
                stats[position].extend(pickle.loads(b) for b in batch.column(f"{_STATS}{position}").to_pylist() if b)
        seconds = time.perf_counter() - started
    except Exception as error:
        cause = _unwrap(error)
        if cause is not None and cause is not error:
            raise cause.with_traceback(None) from error
        raise
    finally:
        for name, value in saved.items():
            setattr(data_context, name, value)
        data_context.execution_options.preserve_order = saved_order
        data_logger.setLevel(saved_level)

    if sorted(index) != list(range(len(records))):
        raise PipelineError(f"the ray engine returned {len(index)} records for {len(records)} inputs; run the "
                            "pipeline locally (pipe.run) to find the stage that loses or adds records")
    for position, record in sorted(zip(index, done), key=lambda pair: pair[0]):
        original = records[position]
        original.clear()
        original.update(record)
    merged: dict = {}
    for batches in stats:
        _merge_stats(batches, merged)
    # Stages run at once on Ray, so each one's share is of the stages' summed time, not of the wall time.
    pipeline.last_profile = profile_frame(merged, sum(e["seconds"] for e in merged.values()))
    pipeline.last_profile.attrs["wall_seconds"] = seconds
    return records
