"""A tiny, deterministic Llama GGUF checkpoint for tests that load GGUF files offline.

`write_tiny_llama_gguf` writes a 2-layer Llama (hidden 64, 4 query heads, 2 KV heads) in the layout
llama.cpp's converter produces: llama.cpp tensor names, `llama.*` metadata keys, the q/k weights in
llama.cpp's rotary permutation, 2-D matrices quantized (Q8_0 by default) and norms kept in F32. The
tokenizer travels in the metadata as a byte-level ("gpt2") BPE, trained on `CORPUS`, with ChatML
special tokens and a ChatML chat template, so transformers can rebuild both model and tokenizer:

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)

The weights are random but fixed by `SEED`; `reference_weights()` returns them under transformers'
parameter names and layout, which is what a correct loader must reproduce (up to quantization error).
Run this module to write, load and generate from the file once per supported quantization.
"""

import json
import pathlib

import gguf
import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

VOCAB_SIZE = 384
HIDDEN_SIZE = 64
INTERMEDIATE_SIZE = 128
NUM_LAYERS = 2
NUM_HEADS = 4
NUM_KV_HEADS = 2
HEAD_DIM = HIDDEN_SIZE // NUM_HEADS
CONTEXT_LENGTH = 256
ROPE_THETA = 10000.0
RMS_NORM_EPS = 1e-5
SEED = 0

BOS_TOKEN = "<|endoftext|>"
IM_START_TOKEN = "<|im_start|>"
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|pad|>"
# The BPE trainer gives these the first ids, in this order.
SPECIAL_TOKENS = (BOS_TOKEN, IM_START_TOKEN, EOS_TOKEN, PAD_TOKEN)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Enough distinct byte pairs for the trainer to reach exactly VOCAB_SIZE tokens.
CORPUS = (
    "hello world, this is a tiny test model.",
    "The quick brown fox jumps over the lazy dog.",
    "A small language model writes short answers to simple questions.",
    "user: hi\nassistant: hello! how can I help you today?",
    "system: You are a helpful assistant.\n",
    "Numbers like 1, 2, 3 and 42 appear in text too.",
)

# The ggml types offered for the 2-D matrices, and the `general.file_type` llama.cpp records for each.
_FILE_TYPES = {"Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "F32": gguf.LlamaFileType.ALL_F32}
SUPPORTED_QUANTS = tuple(_FILE_TYPES)

# Per-layer tensors: llama.cpp suffix -> (transformers suffix, shape in torch's (out, in) order).
_LAYER_TENSORS = {
    "attn_norm": ("input_layernorm", (HIDDEN_SIZE,)),
    "attn_q": ("self_attn.q_proj", (NUM_HEADS * HEAD_DIM, HIDDEN_SIZE)),
    "attn_k": ("self_attn.k_proj", (NUM_KV_HEADS * HEAD_DIM, HIDDEN_SIZE)),
    "attn_v": ("self_attn.v_proj", (NUM_KV_HEADS * HEAD_DIM, HIDDEN_SIZE)),
    "attn_output": ("self_attn.o_proj", (HIDDEN_SIZE, NUM_HEADS * HEAD_DIM)),
    "ffn_norm": ("post_attention_layernorm", (HIDDEN_SIZE,)),
    "ffn_gate": ("mlp.gate_proj", (INTERMEDIATE_SIZE, HIDDEN_SIZE)),
    "ffn_up": ("mlp.up_proj", (INTERMEDIATE_SIZE, HIDDEN_SIZE)),
    "ffn_down": ("mlp.down_proj", (HIDDEN_SIZE, INTERMEDIATE_SIZE)),
}


def _tensor_specs() -> list[tuple[str, str, tuple[int, ...]]]:
    """`(gguf_name, transformers_name, shape)` for every tensor, in llama.cpp's order."""
    specs = [("token_embd.weight", "model.embed_tokens.weight", (VOCAB_SIZE, HIDDEN_SIZE))]
    for layer in range(NUM_LAYERS):
        for gguf_suffix, (hf_suffix, shape) in _LAYER_TENSORS.items():
            specs.append((f"blk.{layer}.{gguf_suffix}.weight", f"model.layers.{layer}.{hf_suffix}.weight", shape))
    specs.append(("output_norm.weight", "model.norm.weight", (HIDDEN_SIZE,)))
    specs.append(("output.weight", "lm_head.weight", (VOCAB_SIZE, HIDDEN_SIZE)))
    return specs


def reference_weights() -> dict[str, np.ndarray]:
    """The model's float32 weights, keyed and laid out as transformers' `LlamaForCausalLM` holds them."""
    rng = np.random.default_rng(SEED)
    weights = {}
    for _, hf_name, shape in _tensor_specs():
        if len(shape) == 1:  # RMSNorm scales: near one, so the activations stay in range
            weights[hf_name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            weights[hf_name] = (0.02 * rng.standard_normal(shape)).astype(np.float32)
    return weights


def _permute_for_llama_cpp(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's `LlamaModel.permute` for q/k: rotary halves -> interleaved pairs (transformers undoes it)."""
    rows = weights.shape[0]
    return weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def _train_tokenizer() -> tuple[list[str], list[str]]:
    """`(tokens ordered by id, merges as "left right")` of a byte-level BPE trained on `CORPUS`."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    vocab = model["vocab"]
    if len(vocab) != VOCAB_SIZE:
        raise RuntimeError(f"BPE training gave {len(vocab)} tokens, expected {VOCAB_SIZE}: extend CORPUS.")
    tokens = sorted(vocab, key=vocab.__getitem__)
    merges = [" ".join(pair) for pair in model["merges"]]
    return tokens, merges


def _add_tokenizer(writer: gguf.GGUFWriter) -> None:
    tokens, merges = _train_tokenizer()
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_merges(merges)
    writer.add_token_types(
        [gguf.TokenType.CONTROL if token in SPECIAL_TOKENS else gguf.TokenType.NORMAL for token in tokens]
    )
    writer.add_bos_token_id(tokens.index(BOS_TOKEN))
    writer.add_eos_token_id(tokens.index(EOS_TOKEN))
    writer.add_pad_token_id(tokens.index(PAD_TOKEN))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)


def write_tiny_llama_gguf(path: pathlib.Path, *, quant: str = "Q8_0") -> pathlib.Path:
    """Write the tiny Llama GGUF to `path` and return `path`.

    `quant` is the ggml type of every 2-D matrix: "Q8_0" (default) or "F32". Norms are always F32.
    """
    if quant not in SUPPORTED_QUANTS:
        raise ValueError(f"quant must be one of {SUPPORTED_QUANTS}, got {quant!r}")
    qtype = gguf.GGMLQuantizationType[quant]
    path = pathlib.Path(path)

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("tiny-llama")
    writer.add_file_type(_FILE_TYPES[quant])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_vocab_size(VOCAB_SIZE)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(HIDDEN_SIZE)
    writer.add_block_count(NUM_LAYERS)
    writer.add_feed_forward_length(INTERMEDIATE_SIZE)
    writer.add_head_count(NUM_HEADS)
    writer.add_head_count_kv(NUM_KV_HEADS)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(ROPE_THETA)
    writer.add_layer_norm_rms_eps(RMS_NORM_EPS)
    _add_tokenizer(writer)

    weights = reference_weights()
    for gguf_name, hf_name, _ in _tensor_specs():
        tensor = weights[hf_name]
        if gguf_name.endswith("attn_q.weight"):
            tensor = _permute_for_llama_cpp(tensor, NUM_HEADS)
        elif gguf_name.endswith("attn_k.weight"):
            tensor = _permute_for_llama_cpp(tensor, NUM_KV_HEADS)
        if tensor.ndim == 1:
            writer.add_tensor(gguf_name, tensor)
        else:
            writer.add_tensor(gguf_name, gguf.quants.quantize(tensor, qtype), raw_dtype=qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


if __name__ == "__main__":
    import tempfile
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Q8_0 rounds each weight to within half a step of max|block| / 127; F32 must round-trip exactly.
    tolerances = {"Q8_0": 1e-3, "F32": 0.0}
    for quant in SUPPORTED_QUANTS:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            gguf_path = write_tiny_llama_gguf(pathlib.Path(tmp) / f"tiny-llama-{quant}.gguf", quant=quant)
            write_s = time.perf_counter() - start
            size_kib = gguf_path.stat().st_size / 1024

            start = time.perf_counter()
            tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
            load_s = time.perf_counter() - start

        assert model.config.num_hidden_layers == NUM_LAYERS, model.config.num_hidden_layers
        assert model.config.vocab_size == VOCAB_SIZE == len(tok), (model.config.vocab_size, len(tok))
        assert model.config.num_key_value_heads == NUM_KV_HEADS, model.config.num_key_value_heads
        assert (tok.bos_token, tok.eos_token, tok.pad_token) == (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN)
        assert model.config.eos_token_id == tok.eos_token_id and model.config.pad_token_id == tok.pad_token_id

        state = model.state_dict()
        for name, expected in reference_weights().items():
            error = (state[name].float() - torch.from_numpy(expected)).abs().max().item()
            assert error <= tolerances[quant], f"{quant} {name}: max error {error}"

        chat = [{"role": "user", "content": "hi"}]
        prompt = tok.apply_chat_template(chat, add_generation_prompt=True, return_dict=True)["input_ids"]
        assert prompt[0] == tok.convert_tokens_to_ids(IM_START_TOKEN), prompt
        assert tok.decode(prompt) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", tok.decode(prompt)

        input_ids = tok("hello world", return_tensors="pt").input_ids
        assert tok.decode(input_ids[0]) == "hello world", tok.decode(input_ids[0])
        start = time.perf_counter()
        output = model.generate(input_ids, max_new_tokens=3, do_sample=False)
        generate_s = time.perf_counter() - start
        assert input_ids.shape[1] < output.shape[1] <= input_ids.shape[1] + 3, output.shape

        print(
            f"{quant}: {size_kib:.0f} KiB, write {write_s:.3f}s, load (tokenizer+model) {load_s:.3f}s, "
            f"generate {generate_s:.3f}s, output {output[0].tolist()}"
        )
