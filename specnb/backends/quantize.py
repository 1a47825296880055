"""The int8 CPU fast path: dynamic quantization of an encoder's Linear layers.

``quantize_int8`` stores the weights of the chosen Linear layers as int8, one scale per output
channel, and quantizes their inputs on the fly, one scale per call
(``torch.ao.quantization.quantize_dynamic`` with ``per_channel_dynamic_qconfig``).

What is quantized: the ``torch.nn.Linear`` layers inside the encoder's repeated blocks that do not
narrow (``in_features <= out_features``): the attention projections (``query``/``key``/``value``,
``q_lin``..., ``q_proj``..., fused ``Wqkv``), the attention output (``attention.output.dense``,
``out_lin``) and the feed-forward up-projection (``intermediate.dense``, ``ffn.lin1``, ``mlp.Wi``).
What stays in float32: the feed-forward down-projection of each block (``output.dense``,
``ffn.lin2``, ALBERT's ``ffn_output``, ``mlp.Wo``: the only Linear of a block whose input is wider
than its output), and everything outside the blocks: embeddings, pooler and task head
(``classifier``, ``pre_classifier``, RoBERTa's ``classifier.dense`` / ``out_proj``). A block is a
child of a ``torch.nn.ModuleList`` (``encoder.layer.N``, ``transformer.layer.N``, ``layers.N``), so
the rule holds for BERT, RoBERTa, XLM-R, ELECTRA, DistilBERT, ALBERT and the like without a list of
names.

Why: a layer-selection sweep on ``bench/engine.py``'s model (all-MiniLM-L6-v2 with a 5-label BBC
head, 36 Linear layers in 6 blocks), 2026-11-29, 2 CPU cores, torch 2.13.0, x86 quantized engine,
batch 32, length-sorted batches. Texts: BBC prefixes of 10-400 words never used in the fit,
"A" = the benchmark's 300 (log-uniform lengths, median 84 tokens), "B" = 1,425 other articles cut
the same way, "U" = 300 / 1,425 with uniform lengths (median 232 tokens). float32 accuracy: A
0.923, B 0.837, U 0.943 / 0.867. Agreement = labels equal to float32; drop = float32 minus int8
accuracy in points (negative: int8 more accurate); time = best of 3 on A, interleaved (float32
4.26 s). ``pt`` = one weight scale per tensor (``quantize_dynamic``'s default), ``pc`` = one per
output channel.

=====================================  ======  =============  =============  ===============  ===============
Linear layers quantized                time A  A agree/drop   B agree/drop   U300 agree/drop  U1425 agree/drop
=====================================  ======  =============  =============  ===============  ===============
all 38, incl. pooler + head [pt]       --      --             --             0.973 / 0.00     0.942 / -0.98
all 38, incl. pooler + head [pc]       --      --             --             0.977 / 0.33     0.956 / 0.70
encoder blocks [pt]                    2.74    0.957 / -0.67  0.921 / 0.49   0.977 / -0.33    0.942 / -1.33
encoder blocks [pc]                    2.83    0.980 / 1.33   0.952 / 0.98   0.980 / 0.00     0.959 / 0.28
**blocks minus down-projection [pc]**  3.26    0.980 / 0.67   0.959 / 0.77   0.987 / 0.00     0.974 / 0.28
blocks minus down-proj. 0, 5 [pc]      3.12    0.980 / 0.00   0.952 / 0.98   --               --
FFN only [pt] (the first guess)        3.48    0.977 / 0.33   0.931 / 0.07   0.983 / 0.33     0.947 / -0.70
FFN only [pc]                          3.49    0.973 / 2.00   0.952 / 0.98   0.977 / 0.33     0.965 / 0.42
attention only (QKV + output) [pc]     3.90    0.990 / 0.33   0.975 / -0.14  0.993 / 0.00     --
=====================================  ======  =============  =============  ===============  ===============

What this says:

* Per-channel weight scales cost no time and cut the probability error by a third or more
  (mean largest class-probability change on B: 0.081 -> 0.054 for the encoder blocks). With
  per-tensor scales the fast selections keep only 92-94 % of the labels on the larger sets, the
  kind of loss the issue reported for quantizing every Linear (92 %).
* The feed-forward down-projection carries the most error for its time: its input comes after
  GELU, where activations have outliers, and a single per-call scale (7-bit on x86) for the whole
  batch rounds the small values away. Leaving it in float32 costs ~15 % of the int8 speed and
  cuts the probability error by 30 % (mean largest class-probability change on B 0.038 vs 0.054
  for all blocks). Leaving it out in single blocks helps less, and no block stands out (one
  block at a time: agreement on U1425 0.957-0.966 vs 0.959 for none and 0.974 for all six).
* Quantizing every block Linear is the fastest (1.5x float32) but lost 1.33 points on A and kept
  0.952 agreement on B, at the goals' edge (agreement >= 0.95, drop <= 1 point). Attention only
  is the most faithful and barely faster than float32.
* So: every block Linear except the down-projection, per-channel: 1.3x float32 (~2.9x the
  transformers pipeline on A), 0.98 / 0.959 agreement and 0.67 / 0.77 points on A / B.
* Keeping the pooler and head in float32 costs nothing measurable and keeps the decision exact.

Caveats: short texts flip more labels than long ones (B vs U); a head with small margins loses
more to any int8 scheme (a strongly regularised head on the same encoder, median top-2 gap 0.20,
kept 0.93-0.98 of its labels), so int8 is for confident specialists. Activation scales are computed
per call over the whole padded batch, so an int8 label can depend on which texts share its batch.
Timings on this shared 2-core machine are noisy (+-10 %); compare within a column.

`quantized_weight_bytes` and `quantized_parameter_count` count the packed int8 weights, which
``model.parameters()`` and ``model.buffers()`` do not list.
"""

from __future__ import annotations

__all__ = ["quantize_int8", "int8_layer_names", "quantized_weight_bytes", "quantized_parameter_count"]


def _block_lists(model) -> list[str]:
    """Names of the ModuleLists whose children hold Linear layers (the repeated blocks)."""
    import torch

    lists = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and any(
            isinstance(m, torch.nn.Linear) for child in module for m in child.modules()
        ):
            lists.append(name)
    return lists


def int8_layer_names(model) -> set[str]:
    """Names of the Linear layers `quantize_int8` quantizes.

    Every Linear inside a repeated block (a child of a ModuleList) except those that narrow
    (``in_features > out_features``, the feed-forward down-projection). Embeddings, the pooler and
    the task head lie outside the blocks and stay in float32.
    """
    import torch

    prefixes = tuple(f"{name}." for name in _block_lists(model) if name)
    names = set()
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or not name.startswith(prefixes):
            continue
        if module.in_features > module.out_features:  # the FFN down-projection: outliers in its input
            continue
        rest = next(name[len(p):] for p in prefixes if name.startswith(p))
        if rest.split(".", 1)[0].isdigit():
            names.add(name)
    return names


def quantize_int8(model):
    """Quantize the `int8_layer_names` layers of ``model`` to int8 in place (dynamic, per-channel) and return it.

    CPU only. The model must be in eval mode; its other modules are left untouched.
    """
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig

    names = int8_layer_names(model)
    if not names:
        return model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        # in place: the model was just loaded for this purpose, and a copy would double peak memory
        return torch.ao.quantization.quantize_dynamic(
            model, {name: per_channel_dynamic_qconfig for name in names}, dtype=torch.qint8, inplace=True
        )


def _packed_linears(model):
    """(weight, bias) of every dynamically quantized Linear in ``model``."""
    from torch.ao.nn.quantized.modules.linear import LinearPackedParams  # already imported by `import torch`

    for module in model.modules():
        if isinstance(module, LinearPackedParams):
            yield module._weight_bias()


def quantized_weight_bytes(model) -> int:
    """Bytes of ``model``'s weights: parameters and buffers (shared storage once) plus packed int8 Linear weights.

    Works for any torch module; for an unquantized one it equals the parameter and buffer bytes.
    A packed layer counts its int8 weight, its bias and its scales / zero points.
    """
    import torch

    seen, total = set(), 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.data_ptr() in seen:  # tied weights share storage
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    for weight, bias in _packed_linears(model):
        total += weight.numel() * weight.element_size()
        if weight.is_quantized:
            if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                scales, zeros = weight.q_per_channel_scales(), weight.q_per_channel_zero_points()
                total += scales.numel() * scales.element_size() + zeros.numel() * zeros.element_size()
            else:
                total += 16  # one float64 scale, one int64 zero point
        if bias is not None:
            total += bias.numel() * bias.element_size()
    return total


def quantized_parameter_count(model) -> int:
    """Parameters of ``model`` including the packed int8 Linear weights and biases."""
    total = sum(p.numel() for p in model.parameters())
    for weight, bias in _packed_linears(model):
        total += weight.numel() + (bias.numel() if bias is not None else 0)
    return total
