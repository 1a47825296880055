"""dtype="int8": dynamic quantization of encoder Linear layers on the CPU (specnb.backends.quantize).

Tiny random checkpoints from `tiny_models` (hidden size 32, 2 blocks) and tiny in-memory models of
other encoder families; nothing touches the hub.
"""

from __future__ import annotations

import numpy as np
import pytest

import specnb
from specnb.backends.device import choose_dtype
from specnb.backends.quantize import (
    int8_layer_names,
    quantize_int8,
    quantized_parameter_count,
    quantized_weight_bytes,
)

from tiny_models import CORPUS, TOPIC_LABELS

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TEXTS = [
    *CORPUS,
    "hi",
    "x y z",
    "Bob went to London with Alice and visited Grenoble, Zürich and Kraków.",
    "The service was terrible and the food was cold. " * 20,  # longer than the context: truncated
    "Paris London Bob Alice",
]
# The Linear layers of a BERT block that int8 quantizes; the FFN down-projection (output.dense) stays float32.
BLOCK_LINEARS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
)


def load_cpu(source, **kwargs) -> specnb.Model:
    return specnb.load(source, device="cpu", **kwargs)


def is_int8_linear(module) -> bool:
    return isinstance(module, torch.ao.nn.quantized.dynamic.Linear)


def probabilities(model: specnb.Model, texts) -> torch.Tensor:
    """Class probabilities straight from the loaded torch module, all texts padded together."""
    backend = model._backend
    inputs = backend.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        return backend.model(**inputs).logits.float().softmax(-1)


# -- through specnb.load ----------------------------------------------------------------------------
def test_int8_classifier_predicts_labels_of_its_own_label_set(tiny_topic_dir):
    model = load_cpu(tiny_topic_dir, dtype="int8")
    assert (model.dtype, model.task, model.device) == ("int8", "classify", "cpu")
    predictions = model.predict(TEXTS, batch_size=4)
    assert len(predictions) == len(TEXTS)
    assert all(p.valid for p in predictions)
    assert {p.label for p in predictions} <= set(TOPIC_LABELS)
    assert all(isinstance(p.score, float) and 1 / len(TOPIC_LABELS) <= p.score <= 1 for p in predictions)
    assert model.last_run.items == len(TEXTS)


def test_int8_quantizes_the_chosen_block_linears_and_keeps_down_projection_pooler_and_head_in_float32(
    tiny_topic_dir,
):
    module = load_cpu(tiny_topic_dir, dtype="int8")._backend.model
    quantized = {name for name, m in module.named_modules() if is_int8_linear(m)}
    layers = len(module.bert.encoder.layer)
    assert quantized == {f"bert.encoder.layer.{i}.{suffix}" for i in range(layers) for suffix in BLOCK_LINEARS}
    assert all(type(block.output.dense) is torch.nn.Linear for block in module.bert.encoder.layer)
    assert type(module.classifier) is torch.nn.Linear
    assert type(module.bert.pooler.dense) is torch.nn.Linear
    assert module.classifier.weight.dtype == torch.float32
    assert module.bert.embeddings.word_embeddings.weight.dtype == torch.float32
    # one weight scale per output channel
    weight = module.bert.encoder.layer[0].intermediate.dense.weight()
    assert weight.dtype == torch.qint8
    assert weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)


def test_int8_scores_stay_close_to_float32(tiny_topic_dir):
    fp32 = load_cpu(tiny_topic_dir, dtype="float32")
    int8 = load_cpu(tiny_topic_dir, dtype="int8")
    assert fp32.alias != int8.alias  # two handles on one folder
    # Random tiny models have near-ties, so labels may flip where fp32 hesitates; probabilities may not move far.
    p32, p8 = probabilities(fp32, TEXTS), probabilities(int8, TEXTS)
    assert (p32 - p8).abs().max().item() < 0.1
    top2 = p32.topk(2, dim=-1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.2  # a 0.1 shift cannot flip these
    assert torch.equal(p32.argmax(-1)[clear], p8.argmax(-1)[clear])
    # and through predict: most labels agree, scores stay close where they do
    a, b = fp32.predict(TEXTS), int8.predict(TEXTS)
    same = [x.label == y.label for x, y in zip(a, b)]
    assert sum(same) > len(TEXTS) / 2
    assert all(abs(x.score - y.score) < 0.1 for x, y, s in zip(a, b, same) if s)


def test_int8_embeddings_stay_close_to_float32(tiny_embed_dir):
    v32 = load_cpu(tiny_embed_dir, dtype="float32").predict(TEXTS)
    v8 = load_cpu(tiny_embed_dir, dtype="int8").predict(TEXTS)
    for x, y in zip(v32, v8):
        cosine = float(np.dot(x.vector, y.vector) / (np.linalg.norm(x.vector) * np.linalg.norm(y.vector)))
        assert cosine > 0.98


def test_int8_on_a_causal_lm_is_refused_naming_encoders(tiny_llama_dir):
    with pytest.raises(specnb.DeviceError, match="encoder"):
        load_cpu(tiny_llama_dir, dtype="int8")


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "mps"])
def test_int8_is_refused_off_the_cpu(device):
    with pytest.raises(specnb.DeviceError, match="int8"):
        choose_dtype("int8", device)
    assert choose_dtype("int8", "cpu") == "int8"


def test_int8_weight_bytes_count_the_packed_weights(tiny_topic_dir):
    model = load_cpu(tiny_topic_dir, dtype="int8")
    assert model.weight_bytes == quantized_weight_bytes(model._backend.model)


# -- the selection, on other encoder families ------------------------------------------------------
def _tiny(kind: str):
    small = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 max_position_embeddings=64)
    if kind == "distilbert":
        config = transformers.DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                                               max_position_embeddings=64)
        return transformers.DistilBertForSequenceClassification(config)
    if kind == "roberta":
        return transformers.RobertaForSequenceClassification(transformers.RobertaConfig(**small))
    if kind == "xlm-roberta-ner":
        return transformers.XLMRobertaForTokenClassification(transformers.XLMRobertaConfig(**small))
    return transformers.BertForSequenceClassification(transformers.BertConfig(**small))


def _blocks(prefix: str, suffix: str) -> set[str]:
    return {f"{prefix}.{i}.{suffix}" for i in range(2)}


@pytest.mark.parametrize(
    "kind, quantized_suffixes, float_layers",
    [
        ("bert", BLOCK_LINEARS, {"bert.pooler.dense", "classifier", *_blocks("bert.encoder.layer", "output.dense")}),
        ("distilbert", ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "ffn.lin1"),
         {"pre_classifier", "classifier", *_blocks("distilbert.transformer.layer", "ffn.lin2")}),
        ("roberta", BLOCK_LINEARS,
         {"classifier.dense", "classifier.out_proj", *_blocks("roberta.encoder.layer", "output.dense")}),
        ("xlm-roberta-ner", BLOCK_LINEARS, {"classifier", *_blocks("roberta.encoder.layer", "output.dense")}),
    ],
)
def test_int8_layer_names_take_the_block_linears_of_each_family(kind, quantized_suffixes, float_layers):
    torch.manual_seed(0)
    model = _tiny(kind).eval()
    linears = {name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    names = int8_layer_names(model)
    assert len(names) == 2 * len(quantized_suffixes)
    assert all(name.endswith(quantized_suffixes) for name in names)
    assert linears - names == float_layers

    fp32_bytes, fp32_params = quantized_weight_bytes(model), quantized_parameter_count(model)
    packed = sum(model.get_submodule(name).weight.numel() for name in names)
    channels = sum(model.get_submodule(name).out_features for name in names)
    inputs = torch.randint(5, 100, (2, 9))
    with torch.inference_mode():
        before = model(input_ids=inputs).logits
        assert quantize_int8(model) is model  # in place
        after = model(input_ids=inputs).logits
    assert {name for name, m in model.named_modules() if is_int8_linear(m)} == names
    assert torch.allclose(before, after, atol=0.05)
    # int8 weights: 1 byte instead of 4, plus a scale and a zero point per output channel
    assert fp32_bytes - 3 * packed <= quantized_weight_bytes(model) <= fp32_bytes - 3 * packed + 16 * channels
    assert quantized_parameter_count(model) == fp32_params


def test_quantize_int8_leaves_a_model_without_blocks_alone():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    assert int8_layer_names(model) == set()
    assert quantize_int8(model) is model
    assert not any(is_int8_linear(m) for m in model.modules())
    assert quantized_weight_bytes(model) == sum(p.numel() * 4 for p in model.parameters())


def test_int8_on_a_gguf_generalist_is_refused_before_converting(specnb_home, tmp_path):
    from tiny_gguf import write_tiny_llama_gguf

    gguf = write_tiny_llama_gguf(tmp_path / "tiny.gguf", quant="F32")
    with pytest.raises(specnb.DeviceError, match="encoder"):
        specnb.load(gguf, device="cpu", dtype="int8")
    assert not (specnb_home / "gguf").exists() or not any((specnb_home / "gguf").iterdir())


def test_int8_with_device_auto_runs_on_the_cpu(tiny_topic_dir, monkeypatch):
    from fakes import FakeDevices

    monkeypatch.setattr(specnb.backends.device, "devices", FakeDevices(cuda=True))
    model = specnb.load(tiny_topic_dir, dtype="int8")
    assert model.device == "cpu" and model.dtype == "int8"
