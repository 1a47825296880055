"""A causal LM (the generalist) serving every task.

* classify, sentiment, langid: **rank scoring**. Each candidate answer's log-likelihood after the
  prompt; the answer is the most likely label and its score the probability over the labels, so a
  prediction always lies in the label space. The prompt is laid out so the part every item shares
  (chat header, instruction, examples) comes first: it runs once per run and its key/value cache is
  copied into each batch. Each batch is then a single forward: the item's last position scores
  every candidate's first token, and the remaining tokens of longer candidates ride along in the
  same rows behind a 4D attention mask (each sees the prompt, its item and its own tokens only).
* ner: generation in a strict ``TYPE: entity`` format, parsed back to character offsets
  (`specnb.tasks.ner.parse_entities`); unreadable answers become `Invalid` predictions.
* embed: the mean of the last hidden states over the text's tokens.
* generate: free text, after the chat template.

Batching, ordering, ``inference_mode``, out-of-memory back-off and timings come from
`specnb.engine`. A brute-force reference (`rank_brute_force`) computes the same scores one label
at a time; the tests hold the two equal.
"""

from __future__ import annotations

import copy
import inspect
import time

from ..engine import RunStats, run_batches, scatter
from ..settings import config
from ..tasks import Embedding, Generation, Invalid, Label, Prompt, get_task
from ..tasks.prompts import SENTINEL
from .prompting import candidate_tokens, end_token, fit, label_from_scores, no_room, rank_inputs

__all__ = ["CausalTasks", "rank_scores", "rank_brute_force", "candidate_tokens"]


def _forward_names(model) -> tuple[str, str | None]:
    """(keyword for the cache, keyword for keeping only the last logits) in this transformers version."""
    params = inspect.signature(model.forward).parameters
    cache = "cache" if "cache" in params else "past_key_values"
    keep = "logits_to_keep" if "logits_to_keep" in params else ("num_logits_to_keep" if "num_logits_to_keep" in params else None)
    return cache, keep


def _out_cache(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def rank_scores(model, prefix: list[int], items: list[list[int]], candidates: list[list[int]], *, device: str,
                pad_id: int, batch_size: int, token_budget: int | None, progress=None, desc=None):
    """Log-likelihood of every candidate after ``prefix + item``, for every item.

    Returns (list of per-item lists of floats, RunStats). The prefix runs once. Each batch is then
    one forward from a copy of the prefix's cache over rows laid out as
    ``[left padding][item tokens][every candidate's tokens after its first]``, with a 4D attention
    mask that lets each candidate block see the prefix, its item and its own earlier tokens only:
    the item's last position scores every candidate's first token, the blocks score the rest.
    """
    import torch

    cache_kw, keep_kw = _forward_names(model)
    first = torch.tensor([c[0] for c in candidates], device=device)
    block = _CandidateBlock(candidates)
    started = time.perf_counter()
    with torch.inference_mode():
        prefix_cache = _out_cache(model(input_ids=torch.tensor([prefix], device=device), use_cache=True))
    prefix_seconds = time.perf_counter() - started
    p = len(prefix)
    dtype = next(model.parameters()).dtype

    def step(batch):
        rows = [items[i] for i in batch]
        b, width, c = len(rows), max(len(r) for r in rows), block.width
        ids = torch.full((b, width + c), pad_id, dtype=torch.long)
        real = torch.zeros((b, width), dtype=torch.bool)
        for r, row in enumerate(rows):
            ids[r, width - len(row) : width] = torch.tensor(row)
            real[r, width - len(row) :] = True
        ids[:, width:] = block.inputs
        item_positions = (p + real.long().cumsum(-1) - 1).clamp(min=p)
        positions = torch.cat([item_positions, item_positions[:, -1:] + block.offsets], dim=1)
        # allowed[b, query, key] over keys [prefix | items | candidate blocks]
        allowed = torch.zeros((b, width + c, p + width + c), dtype=torch.bool)
        allowed[:, :, :p] = True
        allowed[:, :width, p : p + width] = torch.ones((width, width), dtype=torch.bool).tril() & real[:, None, :]
        allowed[:, width:, p : p + width] = real[:, None, :]
        allowed[:, width:, p + width :] = block.visible
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)[:, None]
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(b)
        kwargs = {cache_kw: cache, "use_cache": False}
        if keep_kw:
            kwargs[keep_kw] = c + 1
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device), **kwargs)
        logprobs = out.logits[:, -(c + 1) :].float().log_softmax(-1)  # item's last position, then the blocks
        scores = logprobs[:, 0, first].clone()
        if c:
            picked = logprobs[:, 1:].gather(-1, block.targets.to(device).expand(b, -1).unsqueeze(-1)).squeeze(-1)
            scores += picked @ block.owner.to(device, picked.dtype)
        return scores.cpu().tolist()

    lengths = [p + len(x) + block.width for x in items]
    results, stats = run_batches(lengths, step, batch_size=batch_size, token_budget=token_budget,
                                 progress=progress, desc=desc)
    stats.add_shared(prefix_seconds)
    return results, stats


class _CandidateBlock:
    """Every candidate's tokens after its first, laid end to end, and what each position may see."""

    def __init__(self, candidates: list[list[int]]):
        import torch

        inputs, targets, offsets, owner_of = [], [], [], []
        for k, tokens in enumerate(candidates):
            for j in range(1, len(tokens)):
                inputs.append(tokens[j - 1])  # position j-1 of the block predicts token j
                targets.append(tokens[j])
                offsets.append(j)  # position after the item's last token
                owner_of.append(k)
        self.width = len(inputs)
        self.inputs = torch.tensor(inputs, dtype=torch.long)
        self.targets = torch.tensor(targets, dtype=torch.long).unsqueeze(0)
        self.offsets = torch.tensor(offsets, dtype=torch.long).unsqueeze(0)
        owner = torch.tensor(owner_of, dtype=torch.long)
        # a position sees the earlier positions of its own candidate, and itself
        index = torch.arange(self.width)
        self.visible = (owner[:, None] == owner[None, :]) & (index[None, :] <= index[:, None])
        # (positions, candidates): sums each candidate's log-probabilities
        self.owner = torch.zeros((self.width, len(candidates)))
        if self.width:
            self.owner[index, owner] = 1.0


def rank_brute_force(model, prefix: list[int], item: list[int], candidates: list[list[int]]) -> list[float]:
    """The reference: for each candidate, one forward over prefix + item + candidate, no cache,
    no padding, summing the candidate tokens' log-probabilities."""
    import torch

    out = []
    with torch.inference_mode():
        for tokens in candidates:
            ids = torch.tensor([prefix + item + tokens], device=model.device)
            logprobs = model(input_ids=ids).logits[0].float().log_softmax(-1)
            start = len(prefix) + len(item)
            out.append(sum(float(logprobs[start - 1 + j, t]) for j, t in enumerate(tokens)))
    return out


class CausalTasks:
    """Every task on a loaded causal LM (``model`` + ``tokenizer`` on ``device``)."""

    def __init__(self, model, tokenizer, device: str):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device

    @property
    def end_token(self) -> int | None:
        """The token that closes an answer: the chat template's end of turn, else EOS."""
        return end_token(self.tokenizer)

    def prompt(self, task: str, prompt: Prompt | None) -> Prompt:
        return prompt or get_task(task).default_prompt()

    # -- tasks ----------------------------------------------------------------------------------
    def context_length(self) -> int:
        """Tokens the model reads at most: its positions, or the tokenizer's limit when lower."""
        positions = getattr(self.model.config, "max_position_embeddings", None) or 2048
        limit = getattr(self.tokenizer, "model_max_length", None)
        return int(min(positions, limit)) if limit and limit < 10**7 else int(positions)

    def fit(self, texts, suffix: str, room: int) -> list[list[int] | None]:
        """Token ids of ``text + suffix`` per text, cut to ``room`` tokens (`specnb.backends.prompting.fit`)."""
        return fit(self.tokenizer, texts, suffix, room)

    def _no_room(self, used: int) -> Invalid:
        return no_room(used, self.context_length())

    def rank(self, texts, request):
        started = time.perf_counter()
        labels = request.labels
        tok = self.tokenizer
        inputs = rank_inputs(tok, request.task, self.prompt(request.task, request.prompt), labels, texts,
                             self.context_length())
        prefix, items, candidates = inputs.prefix, inputs.items, inputs.candidates
        runnable = [i for i, x in enumerate(items) if x is not None]
        prepare = time.perf_counter() - started
        scores, stats = [], RunStats(batch_size=request.batch_size, token_budget=request.token_budget)
        if runnable:  # (the shared prefix runs only when some item does)
            scores, stats = rank_scores(
                self.model, prefix, [items[i] for i in runnable], candidates, device=self.device,
                pad_id=tok.pad_token_id, batch_size=request.batch_size, token_budget=request.token_budget,
                progress=request.progress, desc=request.desc,
            )
        labelled = [row if isinstance(row, Invalid) else self._label(row, labels) for row in scores]
        results, stats = scatter(len(texts), runnable, labelled, stats, lambda i: self._no_room(len(prefix)))
        stats.add_shared(prepare)
        return results, stats

    @staticmethod
    def _label(row: list[float], labels: tuple[str, ...]) -> Label:
        return label_from_scores(row, labels)

    def generate(self, texts, request, max_new_tokens: int | None = None):
        """Free text (``generate``) or a parsed answer (``ner``) per text."""
        started = time.perf_counter()
        tok = self.tokenizer
        task = get_task(request.task)
        if request.task == "generate":
            if getattr(tok, "chat_template", None):
                rendered = tok.apply_chat_template([{"role": "user", "content": SENTINEL}], tokenize=False,
                                                   add_generation_prompt=True)
                prefix_text, suffix = rendered.split(SENTINEL)
                prefix = tok(prefix_text, add_special_tokens=False)["input_ids"]
            else:  # a base model continues the text itself
                prefix, suffix = tok("", add_special_tokens=True)["input_ids"], ""
        else:
            prompt = self.prompt(request.task, request.prompt)
            prefix_text, suffix = prompt.parts(tok, request.labels, task.answer)
            prefix = tok(prefix_text, add_special_tokens=False)["input_ids"]
        # Read at predict time, so changing specnb.config.max_new_tokens applies to loaded models.
        limit = max_new_tokens or config.max_new_tokens
        bodies = self.fit(texts, suffix, self.context_length() - len(prefix) - limit)
        runnable = [i for i, x in enumerate(bodies) if x is not None]
        ids = {i: prefix + bodies[i] for i in runnable}
        stops = self._stop_tokens()
        prepare = time.perf_counter() - started

        def step(batch):
            rows = [ids[runnable[j]] for j in batch]
            features = {"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows]}
            inputs = tok.pad(features, padding="longest", return_tensors="pt").to(self.device)
            output = self.model.generate(**inputs, max_new_tokens=limit, do_sample=False, pad_token_id=tok.pad_token_id)
            new = output[:, inputs["input_ids"].shape[1] :]
            out = []
            for row, j in zip(new, batch):
                text = tok.decode(row, skip_special_tokens=True).strip()
                if request.task == "generate":
                    out.append(Generation(text))
                else:
                    complete = len(row) < limit or any(int(t) in stops for t in row)
                    out.append(task.parse(text, texts[runnable[j]], request.labels, complete=complete))
            return out

        outputs, stats = request.batches([len(ids[i]) for i in runnable], step)
        results, stats = scatter(len(texts), runnable, outputs, stats, lambda i: self._no_room(len(prefix)))
        stats.add_shared(prepare)
        return results, stats

    def _stop_tokens(self) -> set[int]:
        stops = set()
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        stops.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            stops.add(self.tokenizer.eos_token_id)
        if self.end_token is not None:
            stops.add(self.end_token)
        return stops

    def embed(self, texts, request):
        import torch

        started = time.perf_counter()
        tok = self.tokenizer
        ids = tok(list(texts), truncation=True, max_length=getattr(self.model.config, "max_position_embeddings", 2048))["input_ids"]
        base = self.model.base_model

        def step(batch):
            width = max(len(ids[i]) for i in batch)
            inputs = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, i in enumerate(batch):  # right padding: pads come after every real token
                inputs[r, : len(ids[i])] = torch.tensor(ids[i])
                mask[r, : len(ids[i])] = 1
            hidden = base(input_ids=inputs.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state.float()
            weights = mask.to(self.device).unsqueeze(-1).to(hidden.dtype)
            vectors = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
            return [Embedding(v) for v in vectors.cpu().numpy()]

        prepare = time.perf_counter() - started
        outputs, stats = request.batches([len(x) for x in ids], step)
        stats.add_shared(prepare)
        return outputs, stats

    def predict(self, texts, request) -> tuple[list, RunStats]:
        if get_task(request.task).ranked:
            return self.rank(texts, request)
        if request.task == "embed":
            return self.embed(texts, request)
        return self.generate(texts, request)
