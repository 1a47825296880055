"""``method="head"``: a frozen encoder and a fitted linear head, as a plain ``*ForSequenceClassification`` model.

The model is the architecture's own sequence classifier, built from the base's weights. Its features are
what its last linear layer reads — the architecture's own pooling (BERT's pretrained pooler; a head layer
that the base does not have starts as the identity, so RoBERTa reads tanh(CLS), DistilBERT ReLU(CLS)) —
captured by a hook while the engine runs the texts once in length-sorted batches. A multinomial logistic
regression (L2, standardised features, L-BFGS in float64, deterministic) is fitted on them, and the
standardisation is folded into that last layer's weights, so the saved model's own forward gives exactly
the fitted head's scores.

`build_token_classifier` is the same for ner: the architecture's ``*ForTokenClassification``, one output per
BIO tag (see `ner`, which fits its per-token head on what that model's last linear layer reads); `token_rows`
runs such a model through the engine's batches with the tokenizer's offsets, and `predict_entities` reads its
tags back to character spans as specnb's transformers backend does."""

from __future__ import annotations

import inspect
import time

from ..errors import ModelOutputError, TaskError
from ..tasks.ner import group_entities, words_from_tokens
from ..tasks.types import Entities

__all__ = ["build_classifier", "build_token_classifier", "head_features", "logits", "fit_linear", "final_linear", "set_head",
           "check_tokenizer", "offsets_encoding", "token_rows", "predict_entities"]


def final_linear(model, n_labels: int):
    """The last ``nn.Linear`` producing ``n_labels`` logits (``classifier``, ``out_proj``, ``score``…)."""
    import torch

    found = [m for _, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m.out_features == n_labels]
    if not found:
        raise ModelOutputError(f"{type(model).__name__} has no linear layer with {n_labels} outputs to fit")
    return found[-1]


def _from_base(auto, source: str, label_space: tuple[str, ...], allow_pickle: bool):
    """``auto.from_pretrained`` on the base's weights with one output per label: no remote code, safetensors
    only unless ``allow_pickle``, float32; new square layers of the head start as the identity."""
    import torch
    from transformers.utils import logging as hf_logging

    id2label = dict(enumerate(label_space))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights were newly initialized": that is the head we fit
    try:
        model, info = auto.from_pretrained(
            source, num_labels=len(label_space), id2label=id2label, label2id={v: k for k, v in id2label.items()},
            use_safetensors=None if allow_pickle else True, ignore_mismatched_sizes=True, output_loading_info=True,
            dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    final = final_linear(model, len(label_space))
    fresh = {key.rsplit(".", 1)[0] for key in info.get("missing_keys", [])}
    with torch.no_grad():
        for name, module in model.named_modules():
            if (name in fresh and module is not final and isinstance(module, torch.nn.Linear)
                    and module.in_features == module.out_features):
                module.weight.copy_(torch.eye(module.in_features))
                module.bias.zero_()
    return model


def build_classifier(source: str, label_space: tuple[str, ...], *, device: str, allow_pickle: bool = False):
    """The base's ``AutoModelForSequenceClassification`` with one output per label, in eval mode; new
    square layers in its head start as the identity (see the module's docstring)."""
    from transformers import AutoModelForSequenceClassification

    model = _from_base(AutoModelForSequenceClassification, source, label_space, allow_pickle)
    model.config.problem_type = "single_label_classification"
    return model.to(device).eval()


def build_token_classifier(source: str, tags: tuple[str, ...], *, device: str, allow_pickle: bool = False):
    """The base's ``AutoModelForTokenClassification`` with one output per tag (``id2label`` the BIO space), in
    eval mode; built with the same safety as `build_classifier`."""
    from transformers import AutoModelForTokenClassification

    return _from_base(AutoModelForTokenClassification, source, tags, allow_pickle).to(device).eval()


def _engine_rows(model, tokenizer, texts: list[str], output, *, device: str, batch_size: int,
                 token_budget: int | None, max_length: int, progress: bool | None, desc: str):
    """``output(model, inputs)`` (a list of float32 CPU rows per batch) for every text, through the engine's
    length-sorted batches: an ``N × d`` tensor, and the engine's `RunStats`."""
    import torch

    from ..engine import run_batches

    started = time.perf_counter()
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    ids, masks = encoded["input_ids"], encoded["attention_mask"]
    accepted = inspect.signature(model.forward).parameters
    extra = {k: encoded[k] for k in ("token_type_ids",) if k in encoded and k in accepted}
    prepare = time.perf_counter() - started

    def step(batch):
        features = {"input_ids": [ids[i] for i in batch], "attention_mask": [masks[i] for i in batch]}
        for key, values in extra.items():
            features[key] = [values[i] for i in batch]
        inputs = tokenizer.pad(features, padding="longest", return_tensors="pt").to(device)
        return output(model, inputs)

    rows, stats = run_batches([len(x) for x in ids], step, batch_size=batch_size, token_budget=token_budget,
                              progress=progress, desc=desc)
    stats.add_shared(prepare)
    failed = [i for i, row in enumerate(rows) if not isinstance(row, torch.Tensor)]
    if failed:
        raise ModelOutputError(f"{len(failed)} text(s) did not fit in memory even alone (positions {failed[:10]}); "
                               "pass a smaller max_length=")
    if not rows:
        return torch.zeros(0, 0), stats
    return torch.stack(rows).clone(), stats  # a plain tensor (not an inference one): the fit needs autograd


def head_features(model, tokenizer, texts: list[str], *, n_labels: int, device: str, batch_size: int,
                  token_budget: int | None, max_length: int, progress: bool | None):
    """What the last linear layer reads, one float32 row per text (an ``N × d`` tensor on the CPU), and the
    engine's `RunStats`."""
    final = final_linear(model, n_labels)
    captured: list = []
    hook = final.register_forward_pre_hook(lambda module, args: captured.append(args[0]))

    def output(model, inputs):
        captured.clear()
        model(**inputs)
        return list(captured[0].float().cpu())

    try:
        return _engine_rows(model, tokenizer, texts, output, device=device, batch_size=batch_size,
                            token_budget=token_budget, max_length=max_length, progress=progress, desc="features")
    finally:
        hook.remove()


def logits(model, tokenizer, texts: list[str], *, device: str, batch_size: int, token_budget: int | None,
           max_length: int, progress: bool | None):
    """The model's own logits for every text (``N × labels``, float32 on the CPU), and the engine's `RunStats`."""
    return _engine_rows(model.eval(), tokenizer, texts, lambda m, inputs: list(m(**inputs).logits.float().cpu()),
                        device=device, batch_size=batch_size, token_budget=token_budget, max_length=max_length,
                        progress=progress, desc="held-out")


def fit_linear(features, targets: list[int], n_labels: int, *, c: float = 1.0, max_iter: int = 500):
    """Multinomial logistic regression on standardised ``features`` (L2 penalty ``1 / c``, as scikit-learn's
    ``C``), folded back to the raw features: ``(weight, bias, losses)`` with ``features @ weight.T + bias``
    the fitted logits."""
    import torch

    x = features.double()
    y = torch.tensor(targets, dtype=torch.long)
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    z = (x - mean) / std
    weight = torch.zeros(n_labels, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_labels, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                                  tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")
    losses: list[float] = []
    n = len(targets)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ weight.T + bias, y) + (weight ** 2).sum() / (2 * c * n)
        loss.backward()
        losses.append(float(loss.detach()))
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        folded = weight / std
        shift = bias - folded @ mean
    return folded.float(), shift.float(), losses


def set_head(model, weight, bias, n_labels: int) -> None:
    """Write the fitted head into the model's last linear layer."""
    import torch

    final = final_linear(model, n_labels)
    with torch.no_grad():
        final.weight.copy_(weight.to(final.weight.device, final.weight.dtype))
        final.bias.copy_(bias.to(final.bias.device, final.bias.dtype))


# -- token classifiers (ner) --------------------------------------------------------------------------------
def check_tokenizer(tokenizer, alias: str) -> None:
    """`TaskError` unless ``tokenizer`` is a fast one (ner reads its character offsets)."""
    if not getattr(tokenizer, "is_fast", False):
        raise TaskError(f"ner training reads character offsets from the tokenizer, and base {alias!r} has a slow "
                        "(Python) tokenizer; use a base with a fast (tokenizers) one")


def offsets_encoding(tokenizer, texts, max_length: int):
    """The fast tokenizer's encoding of ``texts`` with character offsets (and word ids), cut at ``max_length``."""
    return tokenizer(list(texts), truncation=True, max_length=max_length, return_offsets_mapping=True)


def token_rows(model, tokenizer, texts, output, *, device, batch_size, token_budget, max_length, progress, desc,
               kind=None):
    """``output(model, inputs, batch, encoded)`` (one row per item of the batch) for every text through the
    engine's length-sorted batches, in order, and the encoding (offsets, word ids). A text that does not fit in
    memory even alone is the engine's `Invalid`; with ``kind``, a `ModelOutputError`."""
    from ..engine import run_batches

    encoded = offsets_encoding(tokenizer, texts, max_length)
    ids, masks = encoded["input_ids"], encoded["attention_mask"]
    extra = {k: encoded[k] for k in ("token_type_ids",) if k in encoded}

    def step(batch):
        features = {"input_ids": [ids[i] for i in batch], "attention_mask": [masks[i] for i in batch]}
        for key, values in extra.items():
            features[key] = [values[i] for i in batch]
        inputs = tokenizer.pad(features, padding="longest", return_tensors="pt").to(device)
        return output(model, inputs, batch, encoded)

    rows, _ = run_batches([len(x) for x in ids], step, batch_size=batch_size, token_budget=token_budget,
                          progress=progress, desc=desc)
    failed = [i for i, row in enumerate(rows) if kind is not None and not isinstance(row, kind)]
    if failed:
        raise ModelOutputError(f"{len(failed)} text(s) did not fit in memory even alone (positions {failed[:10]}); "
                               "pass a smaller max_length=")
    return rows, encoded


def predict_entities(model, tokenizer, texts, *, device, batch_size, token_budget, max_length, progress=False):
    """The model's `Entities` for every text, read as specnb's transformers backend reads a token classifier."""
    id2label = model.config.id2label
    texts = list(texts)

    def output(model, inputs, batch, encoded):
        scores, best = model(**inputs).logits.float().softmax(dim=-1).cpu().max(dim=-1)
        out = []
        for row, i in enumerate(batch):
            n = len(encoded["input_ids"][i])
            tags = [str(id2label[int(b)]) for b in best[row, :n]]
            words = words_from_tokens(encoded.word_ids(i), encoded["offset_mapping"][i], tags, scores[row, :n].tolist())
            out.append(Entities(tuple(group_entities(words, texts[i]))))
        return out

    if not texts:
        return []
    mode = model.training
    model.eval()
    try:
        return token_rows(model, tokenizer, texts, output, device=device, batch_size=batch_size,
                          token_budget=token_budget, max_length=max_length, progress=progress, desc="held-out")[0]
    finally:
        model.train(mode)
