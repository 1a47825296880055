"""An OpenAI-compatible server (vLLM, OpenAI, ``transformers serve``, ...) as a specnb generalist.

At load a short probe (`probe`) records what the server can do; each label task is then answered, in the
run's label space, by the best method it allows (``model.endpoint["methods"]``, ``RunStats.method``):

* ``rank``: rank scoring from prompt log-probabilities (``/v1/completions`` with ``echo``, ``logprobs`` and
  ``max_tokens=0``), on the same token ids as in-kernel rank scoring (`specnb.backends.prompting`): the same
  prompt, the same label tokens, one request per item holding every label's continuation. Needs the served
  model's tokenizer (``tokenizer=``, else the served model's folder or cached hub snapshot);
* ``choice``: structured output constrained to the labels (vLLM's ``structured_outputs`` choice, else a
  ``response_format`` json_schema with an enum), the
  label's probability from the answer tokens' log-probabilities when the server gives them;
* ``generate``: free text parsed back to a label; unreadable answers are `Invalid` and no score is made up.

ner is generation parsed by the task's parser, embed uses ``/v1/embeddings``, generate is a chat answer.
Requests go through `specnb.backends.endpoint_client.send_all` (concurrency, back-off, response cache).
"""

from __future__ import annotations

import time
from dataclasses import asdict

from ..engine import ENDPOINT_COUNTS, RunStats
from ..errors import EndpointError, TaskError
from ..settings import config
from ..tasks import Embedding, Generation, Invalid, Label, get_task
from .base import Backend
from .endpoint_client import Call, Connection, send_all
from .endpoint_probe import Capabilities, choice_body, probe, read_choice
from .prompting import label_from_scores, no_room, rank_inputs

__all__ = ["EndpointBackend", "LABEL_METHODS"]

#: How a label task can be answered, best first.
LABEL_METHODS = ("rank", "choice", "generate")


class EndpointBackend(Backend):
    """A model behind an OpenAI-compatible API. ``device`` is ``remote``; nothing is held in the kernel."""

    name = "endpoint"
    cpu_only = True

    def __init__(self, task, device, dtype, conn: Connection, *, tokenizer=None, method=None, cache: bool = True):
        super().__init__(task, device, dtype)
        self.conn = conn
        self.tokenizer_source = tokenizer
        self.tokenizer = None
        self.forced_method = method
        self.cache = cache
        self.caps = Capabilities()

    # -- load ---------------------------------------------------------------------------------
    def load(self) -> None:
        self.caps = probe(self.conn)
        self.tokenizer = self._tokenizer()
        if self.forced_method is not None:
            possible = self.label_methods()
            if self.forced_method not in possible:
                raise EndpointError(f"method={self.forced_method!r} is not possible on {self.conn.base_url}: it allows "
                                    f"{', '.join(possible)} ({self._why_not()})")

    def _tokenizer(self):
        """The served model's tokenizer, for rank scoring: ``tokenizer=``, else the folder or cached hub snapshot
        the served name points to; None when there is none here (rank scoring is then not offered)."""
        from pathlib import Path

        from .._catalog import hub_snapshot

        source = self.tokenizer_source
        if source is None and self.caps.prompt_logprobs:
            name = self.conn.model
            if Path(name).is_dir() and (Path(name) / "tokenizer_config.json").is_file():
                source = name
            elif "/" in name and not name.startswith("/"):
                snapshot = hub_snapshot(name)
                source = str(snapshot) if snapshot is not None else None
        if source is None:
            self.caps.notes.setdefault("tokenizer", "no tokenizer for the served model here: pass tokenizer= (a "
                                                    "folder or hub id) for rank scoring")
            return None
        if hasattr(source, "apply_chat_template"):
            return source
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(str(source))
        except (OSError, ValueError) as error:
            raise EndpointError(f"tokenizer={str(source)!r} cannot be loaded ({error}); pass the served model's "
                                "folder or hub id") from None

    def label_methods(self) -> list[str]:
        caps, out = self.caps, []
        if caps.prompt_logprobs and self.tokenizer is not None:
            out.append("rank")
        if caps.structured:
            out.append("choice")
        if caps.chat:
            out.append("generate")
        return out

    def _why_not(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.caps.notes.items()) or "the probe found nothing more"

    def method(self, task: str) -> str:
        """How ``task`` is answered on this server."""
        if not get_task(task).ranked:
            return {"embed": "embeddings", "generate": "chat"}.get(task, "generate")
        if self.forced_method is not None:
            return self.forced_method
        methods = self.label_methods()
        if not methods:
            raise EndpointError(f"{self.conn.base_url} cannot answer label tasks ({self._why_not()})")
        return methods[0]

    def describe(self) -> dict:
        """What `specnb.models` and the model panel show: URL, host, served model, capabilities, methods."""
        ranked = [t for t in ("classify", "sentiment", "langid") if get_task(t).ranked]
        return {"url": self.conn.base_url, "host": self.conn.host, "model": self.conn.model,
                "capabilities": self.caps.names(), "methods": {t: self.method(t) for t in ranked} if self.label_methods() else {},
                "probe": asdict(self.caps), "concurrency": self.conn.concurrency, "cache": self.cache}

    def version(self) -> str | None:
        return f"{self.conn.model} at {self.conn.host}"

    def context_length(self) -> int:
        if self.caps.context_length:
            return int(self.caps.context_length)
        limit = getattr(self.tokenizer, "model_max_length", None)
        return int(limit) if limit and limit < 10**7 else 2048

    # -- predict ------------------------------------------------------------------------------
    def predict(self, texts, request):
        started = time.perf_counter()
        task, method = request.task, self.method(request.task)
        self._fallback = {}
        if task == "embed":
            if not self.caps.embeddings:
                raise TaskError(f"{self.conn.base_url} serves no embeddings for {self.conn.model!r} ({self._why_not()})")
            step = 16
            calls = [Call("embeddings", {"model": self.conn.model, "input": list(texts[i:i + step])})
                     for i in range(0, len(texts), step)]
            groups = [list(range(i, min(i + step, len(texts)))) for i in range(0, len(texts), step)]
            read = self._read_embeddings
        elif method == "rank":
            calls, groups, read = self._rank_calls(texts, request)
        else:
            calls = [self._chat_call(text, request, method) for text in texts]
            groups = [[i] for i in range(len(texts))]
            read = self._reader(texts, request, method)
        return self._run(texts, request, method, calls, groups, read, started)

    def _run(self, texts, request, method, calls, groups, read, started):
        from ..progress import bar as progress_bar
        from ..store import default_store

        results: list = [None] * len(texts)
        seconds = [0.0] * len(texts)
        usage = [0, 0]
        show = config.progress if request.progress is None else request.progress
        bar = progress_bar(total=len(calls), desc=request.desc or self.conn.model, unit="request",
                           delay=config.progress_delay, disable=not show)
        try:
            replies, sent = send_all(self.conn, calls, store=default_store() if self.cache else None,
                                     progress=bar.update)
        finally:
            bar.close()
        for group, reply in zip(groups, replies):
            if reply.data is None:
                for i in group:
                    results[i] = Invalid("", f"the endpoint gave no answer: {reply.error}")
                continue
            tokens = reply.data.get("usage") or {}
            usage[0] += int(tokens.get("prompt_tokens") or 0)
            usage[1] += int(tokens.get("completion_tokens") or 0)
            for i, prediction in zip(group, read(reply.data, group)):
                results[i] = prediction
                seconds[i] = reply.seconds / len(group)
        for i, result in enumerate(results):
            if result is None:
                results[i] = self._fallback.get(i) or Invalid("", "no request was made for this item")
        stats = RunStats(items=len(texts), batches=len(calls), batch_size=request.batch_size,
                         seconds=time.perf_counter() - started, item_seconds=seconds)
        stats.method, (stats.input_tokens, stats.output_tokens) = method, usage
        for key in ENDPOINT_COUNTS[:5]:  # what the requests did
            setattr(stats, key, getattr(sent, key))
        return results, stats

    # rank scoring --------------------------------------------------------------------------------
    def _rank_calls(self, texts, request):
        spec = get_task(request.task)
        prompt = request.prompt or spec.default_prompt()
        inputs = rank_inputs(self.tokenizer, request.task, prompt, request.labels, texts, self.context_length())
        self._fallback = {i: no_room(len(inputs.prefix), self.context_length())
                          for i, item in enumerate(inputs.items) if item is None}
        max_tokens = 0 if self.caps.zero_max_tokens else 1
        calls, groups = [], []
        for i, item in enumerate(inputs.items):
            if item is None:
                continue
            prompts = [inputs.prefix + item + c for c in inputs.candidates]
            calls.append(Call("completions", {"model": self.conn.model, "prompt": prompts, "echo": True,
                                              "logprobs": 1, "max_tokens": max_tokens, "temperature": 0}))
            groups.append([i])
        lengths = {i: len(inputs.prefix) + len(item) for i, item in enumerate(inputs.items) if item is not None}
        candidates, labels = inputs.candidates, request.labels

        def read(data, group):
            choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
            if len(choices) != len(candidates):
                return [Invalid("", f"the server answered {len(choices)} choices for {len(candidates)} labels")]
            scores = []
            for choice, tokens in zip(choices, candidates):
                values = (choice.get("logprobs") or {}).get("token_logprobs") or []
                end = lengths[group[0]] + len(tokens)
                picked = values[end - len(tokens):end]
                if len(values) < end or not all(isinstance(v, (int, float)) for v in picked):
                    return [Invalid("", f"the server gave {len(values)} prompt log-probabilities for a prompt of "
                                        f"{end} tokens")]
                scores.append(float(sum(picked)))
            return [label_from_scores(scores, labels)]

        return calls, groups, read

    # chat: constrained choice, generate and parse, ner, generate ---------------------------------
    def _messages(self, text, request) -> list[dict]:
        spec = get_task(request.task)
        if request.task == "generate":
            return [{"role": "user", "content": text}]
        prompt = request.prompt or spec.default_prompt()
        if spec.ranked and "{labels}" not in prompt.instruction:  # a chat answer must know the labels
            prompt = prompt.replace(instruction=prompt.instruction.rstrip() + " Answer with one of: {labels}.")
        turns = [{"role": "user", "content": prompt.message(text, request.labels, spec.answer)}]
        if prompt.system:
            turns.insert(0, {"role": "system", "content": prompt.system})
        return turns

    def _chat_call(self, text, request, method) -> Call:
        spec = get_task(request.task)
        body = {"model": self.conn.model, "messages": self._messages(text, request), "temperature": 0}
        extra = {}
        if method == "choice":
            constrain = choice_body(self.caps.structured_via, [spec.answer(x) for x in request.labels])
            extra = constrain.pop("extra_body", {})
            body.update(constrain)
            body["max_tokens"] = 64
            if self.caps.chat_logprobs:
                body["logprobs"] = True
        else:
            body["max_tokens"] = 32 if spec.ranked else config.max_new_tokens
        return Call("chat", body, extra)

    def _reader(self, texts, request, method):
        spec = get_task(request.task)
        self._fallback = {}
        answers = {spec.answer(x): x for x in request.labels or ()}

        def read(data, group):
            i = group[0]
            choice = (data.get("choices") or [{}])[0]
            raw = (choice.get("message") or {}).get("content") or ""
            if method == "choice":
                value, score, raw = read_choice(data, list(answers), self.caps.structured_via)
                if value is None:
                    return [Invalid(raw, "the constrained answer is not one of the labels")]
                return [Label(answers[value], score)]
            if request.task == "generate":
                return [Generation(raw.strip())]
            if request.task == "ner":
                return [spec.parse(raw, texts[i], request.labels, complete=choice.get("finish_reason") != "length")]
            return [spec.parse(raw, texts[i], request.labels)]

        return read

    def _read_embeddings(self, data, group):
        import numpy as np

        vectors = sorted(data.get("data") or [], key=lambda d: d.get("index", 0))
        if len(vectors) != len(group):
            return [Invalid("", f"the server answered {len(vectors)} embeddings for {len(group)} texts")] * len(group)
        return [Embedding(np.asarray(v.get("embedding"), dtype=np.float32)) for v in vectors]

    _fallback: dict = {}

    def close(self) -> None:
        self.tokenizer = None
