"""``method="head"``: a frozen encoder and a fitted linear head, as a plain ``*ForSequenceClassification`` model.

The model is the architecture's own sequence classifier, built from the base's weights. Its features are
what its last linear layer reads — the architecture's own pooling (BERT's pretrained pooler; a head layer
that the base does not have starts as the identity, so RoBERTa reads tanh(CLS), DistilBERT ReLU(CLS)) —
captured by a hook while the engine runs the texts once in length-sorted batches. A multinomial logistic
regression (L2, standardised features, L-BFGS in float64, deterministic) is fitted on them, and the
standardisation is folded into that last layer's weights, so the saved model's own forward gives exactly
the fitted head's scores."""

from __future__ import annotations

import inspect
import time

from ..errors import ModelOutputError

__all__ = ["build_classifier", "head_features", "fit_linear", "final_linear", "set_head"]


def final_linear(model, n_labels: int):
    """The last ``nn.Linear`` producing ``n_labels`` logits (``classifier``, ``out_proj``, ``score``…)."""
    import torch

    found = [m for _, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m.out_features == n_labels]
    if not found:
        raise ModelOutputError(f"{type(model).__name__} has no linear layer with {n_labels} outputs to fit")
    return found[-1]


def build_classifier(source: str, label_space: tuple[str, ...], *, device: str, allow_pickle: bool = False):
    """The base's ``AutoModelForSequenceClassification`` with one output per label, in eval mode; new
    square layers in its head start as the identity (see the module's docstring)."""
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    id2label = dict(enumerate(label_space))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights were newly initialized": that is the head we fit
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
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
    model.config.problem_type = "single_label_classification"
    return model.to(device).eval()


def head_features(model, tokenizer, texts: list[str], *, n_labels: int, device: str, batch_size: int,
                  token_budget: int | None, max_length: int, progress: bool | None):
    """What the last linear layer reads, one float32 row per text (an ``N × d`` tensor on the CPU), and the
    engine's `RunStats`."""
    import torch

    from ..engine import run_batches

    final = final_linear(model, n_labels)
    captured: list = []
    hook = final.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
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
        captured.clear()
        model(**inputs)
        return list(captured[0].float().cpu())

    try:
        rows, stats = run_batches([len(x) for x in ids], step, batch_size=batch_size, token_budget=token_budget,
                                  progress=progress, desc="features")
    finally:
        hook.remove()
    stats.add_shared(prepare)
    failed = [i for i, row in enumerate(rows) if not isinstance(row, torch.Tensor)]
    if failed:
        raise ModelOutputError(f"{len(failed)} text(s) did not fit in memory even alone (positions {failed[:10]}); "
                               "pass a smaller max_length=")
    return torch.stack(rows).clone(), stats  # a plain tensor (not an inference one): the fit needs autograd


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
