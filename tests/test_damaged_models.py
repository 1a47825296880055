"""Damaged model files: every one is a NotAModelError naming the file and what is wrong, checked before
any large allocation — never a MemoryError, struct.error, JSONDecodeError or a dependency's own error."""

from __future__ import annotations

import importlib
import json
import shutil
import struct
from pathlib import Path

import pytest

import specnb
from specnb.backends.folder import MAX_SAFETENSORS_HEADER
from specnb.errors import NotAModelError

#: A header whose tensor lies past the end of the file.
OUT_OF_FILE = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 10**9]}}).encode()


@pytest.fixture
def bert(tiny_sentiment_dir, tmp_path) -> Path:
    """A copy of a tiny, valid BertForSequenceClassification folder to damage."""
    folder = tmp_path / "bert"
    shutil.copytree(tiny_sentiment_dir, folder)
    return folder


def _refused(source, *words: str) -> str:
    with pytest.raises(NotAModelError) as info:
        specnb.load(source, alias="damaged", device="cpu")
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


def test_a_valid_copy_loads(bert):
    model = specnb.load(bert, alias="intact", device="cpu")
    assert model.predict(["good"])[0].valid
    specnb.unload("intact")


@pytest.mark.parametrize("content, words", [
    (b"", ["too short"]),
    (b"\x00" * 5, ["too short"]),
    (b"garbage that is no safetensors file at all", ["header"]),
    (struct.pack("<Q", 2**62) + b"{}", ["header"]),  # a header "bigger than memory": never allocated
    (struct.pack("<Q", 4) + b"nope", ["not JSON"]),
    (struct.pack("<Q", 2) + b"[]", ["not a JSON object"]),
    (struct.pack("<Q", len(OUT_OF_FILE)) + OUT_OF_FILE + b"\x00" * 16, ["tensor 'w'"]),
])
def test_a_damaged_safetensors_file(bert, content, words):
    (bert / "model.safetensors").write_bytes(content)
    _refused(bert, "model.safetensors", *words)


def test_the_header_limit_is_generous_for_real_files():
    assert MAX_SAFETENSORS_HEADER >= 50 * 2**20


@pytest.mark.parametrize("config, words", [
    ("[]", ["config.json", "list", "object"]),
    ("{not json", ["config.json", "not valid JSON"]),
    ('"text"', ["config.json", "str"]),
])
def test_a_damaged_config(bert, config, words):
    (bert / "config.json").write_text(config)
    _refused(bert, *words)


@pytest.mark.parametrize("name, content", [
    ("1_Pooling/config.json", "{broken"),
    ("1_Pooling/config.json", "[1, 2]"),
    ("modules.json", '{"a": 1}'),
    ("sentence_bert_config.json", '{"max_seq_length": "long"}'),
])
def test_a_damaged_sentence_transformers_file(tiny_embed_dir, tmp_path, name, content):
    folder = tmp_path / "embed"
    shutil.copytree(tiny_embed_dir, folder)
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(content)
    _refused(folder, name.split("/")[-1])


@pytest.mark.parametrize("content", [b"", b"GGU", b"not a gguf file at all, just text", b"GGUF\x03\x00\x00\x00" + b"\xff" * 64])
def test_a_damaged_gguf_file(tmp_path, content):
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    _refused(path, "model.gguf", "GGUF")


def test_a_damaged_fasttext_file(tmp_path):
    path = tmp_path / "lid.ftz"
    path.write_bytes(b"\x00garbage, not a fastText model" * 10)
    _refused(path, "lid.ftz", "fastText")


def test_a_damaged_spacy_pipeline(tmp_path):
    from specnb._catalog import get_entry
    from specnb.backends.spacy_backend import find_spacy_data_dir

    entry = get_entry("ner")
    package = Path(importlib.import_module(entry.module).__file__).parent
    folder = tmp_path / "spacy"
    shutil.copytree(find_spacy_data_dir(package), folder)
    (folder / "config.cfg").write_text("[nlp]\nlang = 12\npipeline = 3\n[components]\n")
    _refused(folder, "spacy", "spaCy")


def test_a_symlink_that_loops_or_points_nowhere(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    _refused(loop, "symbolic link")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "gone")
    _refused(dangling, "symbolic link")
