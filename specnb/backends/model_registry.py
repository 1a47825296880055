"""The kernel's model registry: load, share, account, evict and really unload models.

`registry` is the one `ModelRegistry`; `load`, `unload`, `get` and `models` are the public functions over it
(re-exported as ``specnb.load`` ...).
"""

from __future__ import annotations

import gc
import itertools
import re
import threading
import time
import warnings
import weakref
from collections.abc import Iterator

from .._catalog import close_matches
from ..errors import AliasError, DeviceError, EvictionWarning, MemoryBudgetError, ModelUnloadedError, TaskError
from ..presentation import format_bytes
from ..settings import config
from ..tasks import check_task
from . import device as _device
from .model import Model
from .resolve import resolve
from .weights import resident_bytes, share_weights
from .zeroshot import ZERO_SHOT_TASKS

__all__ = ["ModelRegistry", "registry", "load", "unload", "get", "models"]


class ModelRegistry:
    """Loaded models by alias, with per-device memory budgets and LRU eviction."""

    def __init__(self):
        self._models: dict[str, Model] = {}
        self._lock = threading.RLock()
        self.last_evicted: list[str] = []
        self._listeners: dict[int, object] = {}
        self._listener_ids = itertools.count()

    # -- change events -----------------------------------------------------------------------
    def subscribe(self, callback):
        """Call ``callback(event, model)`` after each ``"load"``, ``"unload"`` and ``"pin"``.

        A bound method is held weakly (the subscription ends when its object is collected), any other
        callable strongly. Returns a function that ends the subscription.
        """
        key = next(self._listener_ids)
        if hasattr(callback, "__self__") and hasattr(callback, "__func__"):
            self._listeners[key] = weakref.WeakMethod(callback)
        else:
            self._listeners[key] = lambda: callback
        return lambda: self._listeners.pop(key, None)

    def _notify(self, event: str, model: Model) -> None:
        for key, ref in list(self._listeners.items()):
            callback = ref()
            if callback is None:
                self._listeners.pop(key, None)
                continue
            try:
                callback(event, model)
            except Exception as error:  # a broken listener (a closed widget) must not break load or unload
                warnings.warn(f"specnb: a registry listener failed on {event} of {model.alias!r}: {error}",
                              RuntimeWarning, stacklevel=3)

    # -- lookup ------------------------------------------------------------------------------
    def __contains__(self, alias: str) -> bool:
        return alias in self._models

    def __iter__(self) -> Iterator[Model]:
        return iter(list(self._models.values()))

    def __len__(self) -> int:
        return len(self._models)

    def get(self, alias: str) -> Model:
        """The loaded model called ``alias``."""
        try:
            return self._models[alias]
        except KeyError:
            loaded = ", ".join(self._models) or "none"
            matches = close_matches(alias, self._models) if isinstance(alias, str) else []
            hint = f"did you mean {' or '.join(map(repr, matches))}? " if matches else ""
            raise AliasError(f"no loaded model has alias {alias!r}; {hint}loaded: {loaded}") from None

    def by_name(self, name: str, *, task: str | None = None, device: str = "auto") -> Model:
        """The model ``name`` means where a pipeline stage, a comparison or a magic names one: the loaded
        alias, else ``name`` loaded with its own default task (a generalist stays a generalist).

        ``task`` is what the caller will ask for per call (``predict(task=...)``): it is checked, never made
        the model's default, so naming a model never changes how it answers elsewhere.
        """
        with self._lock:
            model = self._models.get(name)
            if model is None:
                model = self.load(name, device=device)
        if task is not None and task not in model.tasks:
            raise TaskError(f"model {model.alias!r} cannot serve {task!r}; it serves {', '.join(model.tasks)}")
        return model

    # -- load --------------------------------------------------------------------------------
    def load(self, source, *, alias: str | None = None, task: str | None = None, device: str = "auto",
             dtype: str = "auto", pin: bool = False, trust_remote_code: bool = False,
             allow_pickle: bool = False, price_per_1m_tokens=None, **endpoint) -> Model:
        """Load ``source`` (see `specnb.load`); ``endpoint`` holds an endpoint model's options."""
        if isinstance(source, Model):
            if not source.loaded:
                raise ModelUnloadedError(f"model {source.alias!r} was unloaded; load {source.source!r} again")
            return source
        if task is not None:
            check_task(task)
        plan = resolve(source, task=task, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                       endpoint=endpoint)
        task = check_task(task or plan.task, plan.tasks)
        prices = None if price_per_1m_tokens is None else config.check_token_price(price_per_1m_tokens)
        if prices is not None and plan.device != "remote":
            raise TaskError("price_per_1m_tokens= applies to endpoint models; in-kernel models are priced per "
                            "device-hour (specnb.config.price_per_hour)")
        if str(dtype).strip().lower() == "int8" and device == "auto":
            device = "cpu"  # int8 is the CPU fast path
        if plan.device is not None:
            if str(device) not in ("auto", plan.device) or str(dtype) != "auto":
                raise DeviceError(f"{plan.source!r} runs on its server (device {plan.device!r}); leave device= and "
                                  "dtype= at 'auto'")
            device = plan.device
        else:
            device = _device.choose_device(device, cpu_only=plan.cpu_only)
        if plan.cpu_only:
            if str(dtype) != "auto":
                raise DeviceError(f"dtype={dtype!r} applies to torch models only; the {plan.backend} backend takes dtype='auto'")
            dtype = None
        else:
            dtype = _device.choose_dtype(dtype, device)
        with self._lock:
            for model in self._models.values():
                if model._key == (plan.key, task, device, dtype):
                    if alias is not None and alias != model.alias:
                        raise AliasError(
                            f"{plan.source!r} is already loaded as {model.alias!r}; use specnb.get({model.alias!r}), "
                            f"or unload it first to load it as {alias!r}"
                        )
                    model._touch()
                    if pin:
                        model.pinned = True
                    return model
            alias = self._new_alias(alias, plan.alias)
            self.last_evicted = []
            total = _device.devices.total(device)
            kind = _device.device_kind(device)
            budget = None if plan.device == "remote" else config.budget_bytes(kind, total)
            self._make_room(alias, kind, budget, plan.estimate(dtype))
            # An encoder asked for a zero-shot label task loads as the encoder it is (no random head).
            zero_shot = plan.task == "embed" and task in ZERO_SHOT_TASKS
            backend = plan.make("embed" if zero_shot else task, device, dtype)
            gc.collect()
            before = _device.devices.allocated(device)
            started = time.perf_counter()
            try:
                backend.load()
            except BaseException:
                backend.close()
                _device.devices.empty_cache(device)
                raise
            if config.share_weights:
                share_weights(backend, [m._backend for m in self._models.values() if m.device == device])
                if kind == "cpu":
                    _device.trim_heap()  # the copies sharing let go
            seconds = time.perf_counter() - started
            memory = max(0, _device.devices.allocated(device) - before)  # loads can free (shared weights, caches)
            model = Model(self, backend, plan, alias=alias, task=task, device=device, dtype=dtype,
                          load_seconds=seconds, memory_bytes=0 if plan.device == "remote" else memory, pinned=pin)
            model.price_per_1m_tokens = prices
            try:
                self._make_room(alias, kind, budget, model.unique_bytes)  # what it shares is held already
            except MemoryBudgetError:
                model._release()
                raise
            self._models[alias] = model
        self._notify("load", model)
        return model

    def _new_alias(self, alias: str | None, default: str) -> str:
        if alias is not None:
            if not isinstance(alias, str) or not re.fullmatch(r"[^\s,]+", alias):
                raise AliasError(f"alias {alias!r} is not valid; use a non-empty name without spaces or commas")
            if alias in self._models:
                taken = self._models[alias]
                raise AliasError(
                    f"alias {alias!r} is already used by {taken.source!r}; unload it first "
                    f"(specnb.unload({alias!r})) or choose another alias"
                )
            return alias
        candidate, n = default, 2
        while candidate in self._models:
            candidate, n = f"{default}-{n}", n + 1
        return candidate

    def _make_room(self, alias: str, kind: str, budget: int | None, needed: int | None) -> None:
        """Unload the fewest least recently used unpinned models on ``kind`` that let ``needed`` more bytes fit."""
        if budget is None or not needed:
            return
        if needed > budget:
            raise MemoryBudgetError(
                f"model {alias!r} needs {format_bytes(needed)}, more than the whole {kind} budget of "
                f"{format_bytes(budget)}; raise specnb.config.memory_budget[{kind!r}] or choose a smaller "
                "dtype or model"
            )
        on_device = [m for m in self._models.values() if _device.device_kind(m.device) == kind]
        used = resident_bytes(on_device)  # weights shared between models once
        if used + needed <= budget:
            return
        candidates = sorted((m for m in on_device if not m.pinned), key=lambda m: m._lru)
        if resident_bytes([m for m in on_device if m.pinned]) + needed > budget:
            pinned = ", ".join(f"{m.alias} ({format_bytes(m.weight_bytes)})" for m in on_device if m.pinned)
            raise MemoryBudgetError(
                f"model {alias!r} needs {format_bytes(needed)} but the {kind} budget of {format_bytes(budget)} "
                f"cannot make room: pinned models hold {pinned}; unpin or unload some, or raise "
                f"specnb.config.memory_budget[{kind!r}]"
            )
        own = {m.alias: m.unique_bytes for m in candidates}  # what unloading each alone frees
        victims = eviction_victims(candidates, used + needed - budget, size=lambda m: own[m.alias])
        spared = [m for m in candidates if own[m.alias] and m not in victims and m._lru < victims[-1]._lru]
        for victim in victims:
            self.unload(victim)
        self.last_evicted += [m.alias for m in victims]
        sizes = [f"{m.alias!r} ({format_bytes(m.weight_bytes)})" for m in victims]
        names = sizes[0] if len(sizes) == 1 else f"{', '.join(sizes[:-1])} and {sizes[-1]}"
        why = "least recently used" + (" of the models whose unloading makes room" if spared else "")
        kept = f"; kept {', '.join(repr(m.alias) for m in spared)}: unloading them too is not needed" if spared else ""
        warnings.warn(
            f"unloaded {names}, {why}, to fit {alias!r} ({format_bytes(needed)}) in the {kind} memory budget of "
            f"{format_bytes(budget)}{kept}",
            EvictionWarning,
            stacklevel=4,
        )

    # -- unload ------------------------------------------------------------------------------
    def unload(self, model) -> None:
        """Unload a model given its alias or handle, freeing its memory."""
        with self._lock:
            if isinstance(model, Model):
                current = self._models.get(model.alias)
                if current is model:
                    del self._models[model.alias]
                was_loaded = model.loaded
                model._release()
                if current is not model and not was_loaded:
                    return
            else:
                self.get(model)  # raises AliasError with the loaded aliases
                model = self._models.pop(model)
                model._release()
        self._notify("unload", model)

    def clear(self) -> None:
        """Unload every model."""
        for model in list(self._models.values()):
            self.unload(model)

    # -- report ------------------------------------------------------------------------------
    def models(self):
        """Loaded models as a pandas DataFrame (see `specnb.models`)."""
        import pandas as pd

        columns = ["alias", "task", "role", "backend", "device", "dtype", "parameters", "weight_bytes",
                   "shared_bytes", "memory_bytes", "load_seconds", "last_used", "pinned", "source", "host", "capabilities"]
        frame = pd.DataFrame([m.info() for m in self._models.values()], columns=columns)
        frame["parameters"] = frame["parameters"].astype("Int64")
        frame["last_used"] = pd.to_datetime(frame["last_used"], unit="s")
        return frame


def eviction_victims(candidates: list, free: int, size=lambda m: m.weight_bytes) -> list:
    """The models to unload to free ``free`` bytes: ``candidates`` (least recently used first) taken in that
    order, skipping those that hold nothing, until enough is freed; then those no longer needed once a
    bigger one was taken are put back (smallest first). In LRU order. ``size(model)``: the bytes unloading
    it alone frees; where even all of them add up to less (weights the candidates share among themselves go
    only with the last of them), every candidate."""
    taken, total = [], 0
    for model in candidates:
        if total >= free:
            break
        if size(model) > 0:
            taken.append(model)
            total += size(model)
    if total < free:
        return list(candidates)
    for model in sorted(taken, key=size):
        if total - size(model) >= free:
            taken.remove(model)
            total -= size(model)
    return taken


registry = ModelRegistry()


def load(
    source,
    *,
    alias: str | None = None,
    task: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    pin: bool = False,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    model: str | None = None,
    api_key: str | None = None,
    tokenizer=None,
    method: str | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    cache: bool = True,
    price_per_1m_tokens=None,
) -> Model:
    """Load a model into the kernel's registry and return its handle.

    Parameters
    ----------
    source : str, path or callable
        A catalog name (``specnb.catalog()``), a local folder (transformers ``save_pretrained``
        output or a spaCy pipeline), a ``.gguf`` or fastText ``.ftz`` file, a hub id
        (``org/name``), or a callable ``fn(list_of_texts) -> list`` (needs ``task``).
    alias : str, optional
        Name in the registry; defaults to the catalog name or the folder / repo name.
    task : str, optional
        One of ``specnb.TASKS``; inferred from the catalog or the model's config when omitted.
    device : str
        ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    dtype : str
        ``auto`` (bfloat16 on CUDA where supported, else float16; float32 on CPU), ``float32``,
        ``float16`` or ``bfloat16``.
    pin : bool
        Never evict this model to make room under a memory budget.
    trust_remote_code : bool
        Allow models whose architecture is Python code shipped with them. Off by default.
    allow_pickle : bool
        Allow pickled weights (``pytorch_model.bin``). Off by default; safetensors are preferred.

    Endpoint models (``source`` is ``'openai:NAME'``, ``'openai:NAME@URL'`` or a base URL such as
    ``'http://127.0.0.1:8000/v1'``) take:

    model : str, optional
        The served model's name (with a base URL; optional when the server serves one model).
    api_key : str, optional
        Default ``$OPENAI_API_KEY``, sent only to ``$OPENAI_BASE_URL`` or OpenAI's API. Never stored or shown.
    tokenizer : str or tokenizer, optional
        The served model's tokenizer (folder or hub id), for rank scoring; default the served model's own
        folder or cached hub snapshot, when it is here.
    method : str, optional
        How label tasks are answered: ``rank``, ``choice`` or ``generate``; default the best the server allows.
    concurrency, timeout, max_retries : optional
        Requests in flight (default 8), seconds per request (60), retries of a failed request (4).
    cache : bool
        Keep answers in the run store's response cache and reuse them (default True).
    price_per_1m_tokens : dict, optional
        ``{"input": dollars, "output": dollars}`` per million tokens; default
        ``specnb.config.price_per_1m_tokens`` by alias or served model name.

    Returns
    -------
    Model
        The same handle when this source is already loaded with the same task, device and dtype.
    """
    return registry.load(
        source, alias=alias, task=task, device=device, dtype=dtype, pin=pin,
        trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, price_per_1m_tokens=price_per_1m_tokens,
        model=model, api_key=api_key, tokenizer=tokenizer, method=method, concurrency=concurrency, timeout=timeout,
        max_retries=max_retries, cache=cache,
    )


def unload(alias) -> None:
    """Unload a model (alias or handle) and free its memory."""
    registry.unload(alias)


def get(alias: str) -> Model:
    """The loaded model called ``alias``."""
    return registry.get(alias)


def models():
    """Loaded models as a pandas DataFrame.

    Columns: alias, task, role, backend, device, dtype, parameters, weight_bytes, shared_bytes (weights
    held once with another loaded model: a head trained on a loaded encoder shares the encoder, see
    ``specnb.config.share_weights``), memory_bytes (measured at load: CUDA allocated delta on GPU, RSS
    delta on CPU, never below 0), load_seconds, last_used, pinned, source, host and capabilities
    (endpoint models).
    """
    return registry.models()
