"""A causal LM (the generalist) serving every task.

* classify, sentiment, langid: **rank scoring**. Each candidate answer's log-likelihood after the
  prompt; the answer is the most likely label and its score the probability over the labels, so a
  prediction always lies in the label space. The prompt is laid out so the part every item shares
  (chat header, instruction, examples) comes first: it runs once per run and its key/value cache is
  copied into each batch. Each batch then runs its items once; the first token of every candidate
  is scored from that same forward, and only candidates longer than one token need a second, short
  forward over their remaining tokens from the items' cache.
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
from collections.abc import Sequence

from ..engine import RunStats, run_batches
from ..settings import config
from ..tasks import Embedding, Generation, Invalid, Label, Prompt, get_task

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


def candidate_tokens(tokenizer, answers: Sequence[str], end_token: int | None) -> list[list[int]]:
    """Token ids of each candidate answer. When one candidate's tokens begin another's (``sport`` /
    ``sports``), the end-of-answer token is appended to all, so the shorter one has to *end* there."""
    tokens = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
    for i, t in enumerate(tokens):
        if not t:
            raise ValueError(f"candidate answer {answers[i]!r} has no tokens")
    clash = any(i != j and b[: len(a)] == a for i, a in enumerate(tokens) for j, b in enumerate(tokens))
    if clash and end_token is not None:
        tokens = [t + [end_token] for t in tokens]
    return tokens


def rank_scores(model, prefix: list[int], items: list[list[int]], candidates: list[list[int]], *, device: str,
                pad_id: int, batch_size: int, token_budget: int | None, progress=None, desc=None):
    """Log-likelihood of every candidate after ``prefix + item``, for every item.

    Returns (list of per-item lists of floats, RunStats). The prefix runs once; each batch runs its
    items (left-padded, with explicit positions) from a copy of the prefix's cache.
    """
    import torch

    cache_kw, keep_kw = _forward_names(model)
    first = torch.tensor([c[0] for c in candidates], device=device)
    longer = [k for k, c in enumerate(candidates) if len(c) > 1]
    started = time.perf_counter()
    with torch.inference_mode():
        prefix_ids = torch.tensor([prefix], device=device)
        prefix_cache = _out_cache(model(input_ids=prefix_ids, use_cache=True))
    prefix_seconds = time.perf_counter() - started
    p = len(prefix)

    def step(batch):
        rows = [items[i] for i in batch]
        b, width = len(rows), max(len(r) for r in rows)
        ids = torch.full((b, width), pad_id, dtype=torch.long)
        mask = torch.zeros((b, p + width), dtype=torch.long)
        mask[:, :p] = 1
        for r, row in enumerate(rows):
            ids[r, width - len(row) :] = torch.tensor(row)
            mask[r, p + width - len(row) :] = 1
        positions = (p + mask[:, p:].cumsum(-1) - 1).clamp(min=p)
        ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(b)
        kwargs = {cache_kw: cache, "use_cache": bool(longer)}
        if keep_kw:
            kwargs[keep_kw] = 1
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, **kwargs)
        logprobs = out.logits[:, -1].float().log_softmax(-1)
        scores = logprobs[:, first].clone()  # (b, candidates)
        if longer:
            scores += _continuations(model, _out_cache(out), mask, positions[:, -1], candidates, longer, cache_kw,
                                     device, pad_id, b)
        return scores.cpu().tolist()

    lengths = [p + len(x) for x in items]
    results, stats = run_batches(lengths, step, batch_size=batch_size, token_budget=token_budget,
                                 progress=progress, desc=desc)
    _add_shared_time(stats, prefix_seconds)
    return results, stats


def _continuations(model, cache, mask, last_positions, candidates, longer, cache_kw, device, pad_id, b):
    """Log-likelihood of every candidate's tokens after its first, from the items' cache."""
    import torch

    scores = torch.zeros((b, len(candidates)), device=device)
    m = len(longer)
    width = max(len(candidates[k]) - 1 for k in longer)
    # rows are (item, candidate) pairs, item-major, matching batch_repeat_interleave
    inputs = torch.full((m, width), pad_id, dtype=torch.long)
    targets = torch.full((m, width), -1, dtype=torch.long)
    for r, k in enumerate(longer):
        tokens = candidates[k]
        inputs[r, : len(tokens) - 1] = torch.tensor(tokens[:-1])
        targets[r, : len(tokens) - 1] = torch.tensor(tokens[1:])
    inputs, targets = inputs.repeat(b, 1).to(device), targets.repeat(b, 1).to(device)
    cache.batch_repeat_interleave(m)
    full_mask = torch.cat([mask.repeat_interleave(m, dim=0), torch.ones((b * m, width), dtype=mask.dtype, device=device)], dim=1)
    positions = last_positions.repeat_interleave(m).unsqueeze(1) + 1 + torch.arange(width, device=device)
    out = model(input_ids=inputs, attention_mask=full_mask, position_ids=positions, use_cache=False, **{cache_kw: cache})
    logprobs = out.logits.float().log_softmax(-1)
    picked = logprobs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    picked = picked.masked_fill(targets < 0, 0.0).sum(-1).view(b, m)
    scores[:, longer] = picked
    return scores


def _add_shared_time(stats: RunStats, seconds: float) -> None:
    """Spread time spent once for the whole run (the shared prefix) over its items."""
    stats.seconds += seconds
    if stats.items:
        share = seconds / stats.items
        stats.item_seconds = [s + share for s in stats.item_seconds]


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
        tok = self.tokenizer
        for text in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
            ids = tok.convert_tokens_to_ids(text) if text in tok.get_vocab() else None
            if ids is not None and getattr(tok, "chat_template", None) and text in tok.chat_template:
                return ids
        return tok.eos_token_id

    def prompt(self, task: str, prompt: Prompt | None) -> Prompt:
        return prompt or get_task(task).default_prompt()

    # -- tasks ----------------------------------------------------------------------------------
    def rank(self, texts, request):
        task = get_task(request.task)
        prompt = self.prompt(request.task, request.prompt)
        labels = request.labels
        prefix_text, suffix = prompt.parts(self.tokenizer, labels, task.answer)
        tok = self.tokenizer
        prefix = tok(prefix_text, add_special_tokens=False)["input_ids"]
        items = tok([t + suffix for t in texts], add_special_tokens=False)["input_ids"]
        candidates = candidate_tokens(tok, [task.answer(label) for label in labels], self.end_token)
        scores, stats = rank_scores(
            self.model, prefix, items, candidates, device=self.device, pad_id=tok.pad_token_id,
            batch_size=request.batch_size, token_budget=request.token_budget, progress=request.progress,
            desc=request.desc,
        )
        return [self._label(row, labels) if not isinstance(row, Invalid) else row for row in scores], stats

    @staticmethod
    def _label(row: list[float], labels: tuple[str, ...]) -> Label:
        import math

        top = max(row)
        weights = [math.exp(s - top) for s in row]
        best = max(range(len(row)), key=row.__getitem__)
        return Label(labels[best], weights[best] / sum(weights))

    def generate(self, texts, request, max_new_tokens: int | None = None):
        """Free text (``generate``) or a parsed answer (``ner``) per text."""
        tok = self.tokenizer
        task = get_task(request.task)
        if request.task == "generate":
            if getattr(tok, "chat_template", None):
                prompts = [tok.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True)
                           for t in texts]
                add_special = False  # the template already holds BOS and friends
            else:
                prompts, add_special = list(texts), True
        else:
            prompt = self.prompt(request.task, request.prompt)
            prefix, suffix = prompt.parts(tok, request.labels, task.answer)
            prompts, add_special = [prefix + t + suffix for t in texts], False
        ids = tok(prompts, add_special_tokens=add_special)["input_ids"]
        # Read at predict time, so changing specnb.config.max_new_tokens applies to loaded models.
        limit = max_new_tokens or config.max_new_tokens
        stops = self._stop_tokens()

        def step(batch):
            features = {"input_ids": [ids[i] for i in batch], "attention_mask": [[1] * len(ids[i]) for i in batch]}
            inputs = tok.pad(features, padding="longest", return_tensors="pt").to(self.device)
            output = self.model.generate(**inputs, max_new_tokens=limit, do_sample=False, pad_token_id=tok.pad_token_id)
            new = output[:, inputs["input_ids"].shape[1] :]
            out = []
            for row, index in zip(new, batch):
                text = tok.decode(row, skip_special_tokens=True).strip()
                if request.task == "generate":
                    out.append(Generation(text))
                else:
                    complete = len(row) < limit or any(int(t) in stops for t in row)
                    out.append(task.parse(text, texts[index], request.labels, complete=complete))
            return out

        return run_batches([len(x) for x in ids], step, batch_size=request.batch_size,
                           token_budget=request.token_budget, progress=request.progress, desc=request.desc)

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

        return run_batches([len(x) for x in ids], step, batch_size=request.batch_size,
                           token_budget=request.token_budget, progress=request.progress, desc=request.desc)

    def predict(self, texts, request) -> tuple[list, RunStats]:
        if get_task(request.task).ranked:
            return self.rank(texts, request)
        if request.task == "embed":
            return self.embed(texts, request)
        return self.generate(texts, request)
