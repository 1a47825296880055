"""The int8 CPU fast path: dynamic quantization of an encoder's Linear layers.

Weights of the chosen Linear layers are stored as int8 and activations are quantized on the fly,
which roughly halves CPU time for BERT-sized encoders. Quantizing every Linear layer moves too many
labels (see bench/engine.py), so only the feed-forward layers inside the encoder blocks are
quantized; attention projections, the pooler and the task head stay in float32.
"""

from __future__ import annotations

__all__ = ["quantize_int8", "int8_layer_names"]


def int8_layer_names(model) -> set[str]:
    """Names of the Linear layers `quantize_int8` quantizes."""
    import torch

    names = set()
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        if name.endswith(("intermediate.dense", "output.dense")) and ".attention." not in name:
            names.add(name)
    return names


def quantize_int8(model):
    """Return ``model`` with its feed-forward Linear layers dynamically quantized to int8 (CPU)."""
    import warnings

    import torch

    names = int8_layer_names(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        return torch.ao.quantization.quantize_dynamic(model, names, dtype=torch.qint8)
