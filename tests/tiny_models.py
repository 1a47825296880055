"""Tiny, deterministic transformers checkpoints written locally, for tests that must not touch the hub.

Every builder takes a folder, writes a complete ``save_pretrained`` checkpoint into it (random but
seeded weights, hidden size 32, 2 layers) plus a tokenizer that ``AutoTokenizer`` loads offline from
its ``tokenizer.json``, and returns the folder as a `pathlib.Path`. Each builder runs in well under a
second once torch and transformers are imported.

The tokenizers use a hand-written WordPiece vocabulary (no training, so the ids never depend on the
``tokenizers`` version): the words of `CORPUS` are whole tokens, every other word is split into
single-character pieces (``##x``), which gives NER tests real sub-word continuations.

    tiny_bert_embed(path)          BertModel + sentence-transformers modules.json (mean pooling, Normalize)
    tiny_bert_classifier(path)     BertForSequenceClassification, labels negative / positive by default
    tiny_bert_ner(path)            BertForTokenClassification, BIO labels O B-PER I-PER B-LOC I-LOC
    tiny_llama_chat(path)          LlamaForCausalLM with a chat template, <s> / </s> / <pad>
    pickled_only(path)             a classifier whose only weights are pytorch_model.bin
    remote_code_model(path)        a folder whose config needs trust_remote_code (auto_map, unknown model_type)
"""

from __future__ import annotations

import json
import string
from pathlib import Path

SEED = 0
HIDDEN_SIZE = 32
NUM_LAYERS = 2
NUM_HEADS = 4
INTERMEDIATE_SIZE = 64
MAX_POSITIONS = 128
LLAMA_POSITIONS = 1024
# Larger than transformers' default 0.02, so random logits are well separated and greedy / argmax
# choices do not hinge on rounding noise between padded and unpadded runs.
INITIALIZER_RANGE = 0.2

CORPUS = (
    "Alice lives in Paris and works with Bob in London.",
    "The film was wonderful, I loved every minute of it!",
    "The service was terrible and the food was cold.",
    "hello world, this is a tiny test model.",
    "Numbers like 1, 2, 3 and 42 appear in text too.",
)

BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
LLAMA_SPECIALS = ("<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>")
LLAMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' }}\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}\n{% endif %}"
)

# Remote-code folders write this file next to their config if their Python code is ever imported.
CODE_RAN_MARKER = "CODE_RAN"

# Label sets of the classifier fixtures in conftest.py.
TOPIC_LABELS = ("sports", "politics", "science")
LANGID_LABELS = ("en", "fr", "de")
NER_LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")



def _vocab(specials: tuple[str, ...]) -> list[str]:
    """Specials, every word of CORPUS (lower-cased), then each character alone and as ``##c``."""
    words = []
    for sentence in CORPUS:
        for word in "".join(c if c.isalnum() else " " for c in sentence.lower()).split():
            if word not in words:
                words.append(word)
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    return list(specials) + words + chars + ["##" + c for c in string.ascii_lowercase + string.digits]


def _wordpiece(specials: tuple[str, ...], *, unk: str, lowercase: bool = True):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    vocab = {token: i for i, token in enumerate(_vocab(specials))}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token=unk, max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def bert_tokenizer():
    """A BERT-style fast tokenizer: ``[CLS] text [SEP]``, lower-casing, WordPiece."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tok = _wordpiece(BERT_SPECIALS, unk="[UNK]")
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
        model_max_length=MAX_POSITIONS,
    )


def llama_tokenizer():
    """A decoder tokenizer: ``<s> text``, the chat template above, ``</s>`` ends a turn, ``<pad>`` pads.

    Its WordPiece vocabulary spells unknown words letter by letter, so prompts run long: the Llama
    gets LLAMA_POSITIONS."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tok = _wordpiece(LLAMA_SPECIALS, unk="<unk>")
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B:1", special_tokens=[("<s>", bos)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        additional_special_tokens=["<|user|>", "<|assistant|>"],
        model_max_length=LLAMA_POSITIONS,
    )
    tokenizer.chat_template = LLAMA_CHAT_TEMPLATE
    return tokenizer


def _seed() -> None:
    import torch

    torch.manual_seed(SEED)


def _bert_config(tokenizer, **extra):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        intermediate_size=INTERMEDIATE_SIZE,
        max_position_embeddings=MAX_POSITIONS,
        initializer_range=INITIALIZER_RANGE,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def _save(model, tokenizer, path) -> Path:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_bert_embed(path, *, pooling: str = "mean", normalize: bool = True) -> Path:
    """A BertModel laid out as a sentence-transformers folder: modules.json, 1_Pooling/, 2_Normalize/."""
    from transformers import BertModel

    _seed()
    tokenizer = bert_tokenizer()
    model = BertModel(_bert_config(tokenizer)).eval()
    path = _save(model, tokenizer, path)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (path / "2_Normalize").mkdir(exist_ok=True)
    (path / "modules.json").write_text(json.dumps(modules, indent=2))
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": MAX_POSITIONS, "do_lower_case": False}))
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": HIDDEN_SIZE,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
    }, indent=2))
    return path


def _labelled_config(tokenizer, labels):
    labels = list(labels)
    return _bert_config(
        tokenizer,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )


def tiny_bert_classifier(path, labels=("negative", "positive")) -> Path:
    """A BertForSequenceClassification whose config maps ids to ``labels``."""
    from transformers import BertForSequenceClassification

    _seed()
    tokenizer = bert_tokenizer()
    return _save(BertForSequenceClassification(_labelled_config(tokenizer, labels)).eval(), tokenizer, path)


def tiny_bert_ner(path, labels=("O", "B-PER", "I-PER", "B-LOC", "I-LOC")) -> Path:
    """A BertForTokenClassification with BIO labels."""
    from transformers import BertForTokenClassification

    _seed()
    tokenizer = bert_tokenizer()
    return _save(BertForTokenClassification(_labelled_config(tokenizer, labels)).eval(), tokenizer, path)


def tiny_llama_chat(path) -> Path:
    """A LlamaForCausalLM (2 layers, hidden 32, GQA 4/2 heads) with a chat template and pad / eos tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    _seed()
    tokenizer = llama_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=2,
        max_position_embeddings=LLAMA_POSITIONS,
        initializer_range=INITIALIZER_RANGE,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    model.generation_config.do_sample = False
    return _save(model, tokenizer, path)


def pickled_only(path) -> Path:
    """A sentiment classifier whose weights exist only as a pickle, ``pytorch_model.bin``.

    transformers 5 always writes safetensors (``save_pretrained`` no longer has
    ``safe_serialization``; the keyword is swallowed by ``**kwargs``), so the state dict is
    re-saved with ``torch.save`` and ``model.safetensors`` removed.
    """
    import torch
    from safetensors.torch import load_file

    path = tiny_bert_classifier(path)
    weights = path / "model.safetensors"
    torch.save(load_file(weights), path / "pytorch_model.bin")
    weights.unlink()
    return path


_REMOTE_CONFIG_CODE = '''
import pathlib
pathlib.Path(__file__).with_name("{marker}").write_text("configuration code ran")
from transformers import PretrainedConfig


class SpecnbCustomConfig(PretrainedConfig):
    model_type = "specnb-custom-arch"
'''

_REMOTE_MODEL_CODE = '''
import pathlib
pathlib.Path(__file__).with_name("{marker}").write_text("modeling code ran")
from transformers import PreTrainedModel


class SpecnbCustomModel(PreTrainedModel):
    pass
'''


def remote_code_model(path) -> Path:
    """A folder whose architecture exists only as code shipped with it.

    A tiny embedding model whose config.json is edited to an unknown ``model_type`` with an
    ``auto_map`` pointing at ``configuration_custom.py`` / ``modeling_custom.py``; importing either
    file writes `CODE_RAN_MARKER` into the folder, so tests can prove the code never ran.
    """
    path = tiny_bert_embed(path)
    config_path = path / "config.json"
    config = json.loads(config_path.read_text())
    config["model_type"] = "specnb-custom-arch"
    config["architectures"] = ["SpecnbCustomModel"]
    config["auto_map"] = {
        "AutoConfig": "configuration_custom.SpecnbCustomConfig",
        "AutoModel": "modeling_custom.SpecnbCustomModel",
    }
    config_path.write_text(json.dumps(config, indent=2))
    (path / "configuration_custom.py").write_text(_REMOTE_CONFIG_CODE.format(marker=CODE_RAN_MARKER))
    (path / "modeling_custom.py").write_text(_REMOTE_MODEL_CODE.format(marker=CODE_RAN_MARKER))
    return path


BUILDERS = {
    "embed": tiny_bert_embed,
    "classifier": tiny_bert_classifier,
    "ner": tiny_bert_ner,
    "llama": tiny_llama_chat,
    "pickled": pickled_only,
    "remote": remote_code_model,
}
