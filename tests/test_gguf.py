"""GGUF generalists: dequantized once into $SPECNB_HOME/gguf/<key>/, reused by later loads and processes.

The checkpoint is `tiny_gguf.write_tiny_llama_gguf`'s 2-layer Llama (Q8_0 by default), written into
each test's tmp_path; every test runs with a fresh, empty SPECNB_HOME (`specnb_home` from conftest).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import specnb  # noqa: E402
from specnb.backends.gguf import CACHE_FORMAT, gguf_cache_dir  # noqa: E402

from tiny_gguf import reference_weights, write_tiny_llama_gguf  # noqa: E402

PROMPTS = ["hello world", "hi", "The quick brown fox jumps over the lazy dog."]
NEW_TOKENS = 5


@pytest.fixture
def gguf_file(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    return write_tiny_llama_gguf(folder / "tiny-llama.gguf")


def refuse_gguf_conversion(monkeypatch) -> None:
    """From now on, any transformers load from a .gguf file (the slow dequantizing path) fails the test."""
    original = transformers.AutoModelForCausalLM.from_pretrained.__func__

    def from_pretrained(cls, *args, **kwargs):
        if kwargs.get("gguf_file"):
            raise AssertionError("the GGUF file was converted again")
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", classmethod(from_pretrained))


def load_cpu(source, **kwargs) -> specnb.Model:
    specnb.config.max_new_tokens = NEW_TOKENS
    return specnb.load(source, device="cpu", **kwargs)


def cache_entries(home) -> list:
    root = home / "gguf"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def texts(predictions) -> list[str]:
    return [p.text for p in predictions]


# -- the first load converts, into the cache -------------------------------------------------------------
def test_first_load_converts_once_into_a_safetensors_cache(specnb_home, gguf_file):
    model = load_cpu(gguf_file)
    assert (model.backend, model.task, model.role, model.alias) == ("gguf", "generate", "generalist", "tiny-llama")
    assert model._backend.converted is True

    folder = gguf_cache_dir(gguf_file)
    assert folder.parent == specnb_home / "gguf"
    assert cache_entries(specnb_home) == [folder.name]
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "specnb-gguf.json", "config.json", "tokenizer.json"} <= names
    assert not [p for p in specnb_home.rglob("*") if p.suffix in (".gguf", ".tmp")]
    meta = json.loads((folder / "specnb-gguf.json").read_text())
    assert meta["source"] == str(gguf_file.resolve())
    assert meta["size"] == gguf_file.stat().st_size
    assert meta["format"] == CACHE_FORMAT
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())

    predictions = model.predict(PROMPTS)
    assert all(type(p) is specnb.Generation and isinstance(p.text, str) for p in predictions)


def test_cached_weights_are_the_dequantized_reference_weights(specnb_home, tmp_path):
    from safetensors.numpy import load_file

    for quant, tolerance in [("F32", 0.0), ("Q8_0", 1e-3)]:
        path = write_tiny_llama_gguf(tmp_path / f"tiny-{quant}.gguf", quant=quant)
        load_cpu(path)
        cached = load_file(gguf_cache_dir(path) / "model.safetensors")
        for name, expected in reference_weights().items():
            np.testing.assert_allclose(cached[name], expected, rtol=0, atol=tolerance, err_msg=f"{quant} {name}")


def test_cached_model_generates_like_a_direct_transformers_gguf_load(specnb_home, gguf_file):
    predictions = load_cpu(gguf_file).predict(PROMPTS, batch_size=1)

    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    for prompt, prediction in zip(PROMPTS, predictions):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)["input_ids"]
        out = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        assert prediction.text == tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
    assert any(texts(predictions))


# -- later loads reuse it -------------------------------------------------------------------------------------
def test_reload_after_unload_does_not_convert_again(specnb_home, gguf_file, monkeypatch):
    first = load_cpu(gguf_file)
    before = texts(first.predict(PROMPTS))
    specnb.unload(first)
    assert len(specnb.registry) == 0

    refuse_gguf_conversion(monkeypatch)
    second = load_cpu(gguf_file)
    assert second is not first
    assert second._backend.converted is False
    assert texts(second.predict(PROMPTS)) == before
    assert cache_entries(specnb_home) == [gguf_cache_dir(gguf_file).name]


_CHILD = textwrap.dedent(
    """
    import json, sys
    import transformers
    original = transformers.AutoModelForCausalLM.from_pretrained.__func__

    def from_pretrained(cls, *args, **kwargs):
        if kwargs.get("gguf_file"):
            raise SystemExit("the GGUF file was converted again")
        return original(cls, *args, **kwargs)

    transformers.AutoModelForCausalLM.from_pretrained = classmethod(from_pretrained)
    import specnb
    specnb.config.max_new_tokens = int(sys.argv[2])
    model = specnb.load(sys.argv[1], device="cpu")
    texts = [p.text for p in model.predict(json.loads(sys.argv[3]))]
    print(json.dumps({"converted": model._backend.converted, "folder": model._backend.source, "texts": texts}))
    """
)


def test_a_new_process_reuses_the_cache(specnb_home, gguf_file):
    here = texts(load_cpu(gguf_file).predict(PROMPTS))
    env = dict(os.environ, SPECNB_HOME=str(specnb_home))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(gguf_file), str(NEW_TOKENS), json.dumps(PROMPTS)],
        env=env, capture_output=True, text=True, timeout=600,  # a hang guard
    )
    assert done.returncode == 0, done.stderr[-3000:]
    child = json.loads(done.stdout.strip().splitlines()[-1])
    assert child["converted"] is False
    assert child["folder"] == str(gguf_cache_dir(gguf_file))
    assert child["texts"] == here


# -- cache keys ---------------------------------------------------------------------------------------------------
def test_cache_key_is_stable_for_an_unchanged_file(specnb_home, gguf_file):
    assert gguf_cache_dir(gguf_file) == gguf_cache_dir(gguf_file)
    assert gguf_cache_dir(gguf_file) == gguf_cache_dir(gguf_file.parent / ".." / gguf_file.parent.name / gguf_file.name)


def test_modified_gguf_gets_a_new_cache_key_is_converted_again_and_replaces_the_old_cache(specnb_home, gguf_file):
    first = load_cpu(gguf_file)
    old_key = gguf_cache_dir(gguf_file)
    specnb.unload(first)

    stat = gguf_file.stat()
    os.utime(gguf_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: same bytes, new mtime
    touched_key = gguf_cache_dir(gguf_file)
    assert touched_key != old_key
    touched = load_cpu(gguf_file)
    assert touched._backend.converted is True
    specnb.unload(touched)

    write_tiny_llama_gguf(gguf_file, quant="F32")  # rewritten with other contents
    os.utime(gguf_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # even with the same mtime
    rewritten_key = gguf_cache_dir(gguf_file)
    assert rewritten_key not in (old_key, touched_key)
    assert load_cpu(gguf_file)._backend.converted is True
    assert cache_entries(specnb_home) == [rewritten_key.name]  # caches of older versions of the file are swept


# -- interrupted conversions ------------------------------------------------------------------------------------------
def test_failed_conversion_leaves_no_cache_and_the_next_load_converts(specnb_home, gguf_file, monkeypatch):
    original = transformers.PreTrainedModel.save_pretrained

    def save_then_fail(self, *args, **kwargs):
        original(self, *args, **kwargs)  # half the folder is written ...
        raise OSError("disk full")  # ... then the conversion dies

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", save_then_fail)
    with pytest.raises(OSError, match="disk full"):
        load_cpu(gguf_file)
    assert cache_entries(specnb_home) == []
    assert len(specnb.registry) == 0

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", original)
    model = load_cpu(gguf_file)
    assert model._backend.converted is True
    assert (gguf_cache_dir(gguf_file) / "specnb-gguf.json").is_file()


_KILLED_CHILD = textwrap.dedent(
    """
    import os, sys
    import transformers
    original = transformers.PreTrainedModel.save_pretrained

    def save_then_die(self, *args, **kwargs):
        original(self, *args, **kwargs)
        os._exit(9)  # killed mid-conversion: no finally blocks run

    transformers.PreTrainedModel.save_pretrained = save_then_die
    import specnb
    specnb.load(sys.argv[1], device="cpu")
    """
)


def test_conversion_killed_midway_is_not_trusted_by_a_later_load(specnb_home, gguf_file):
    env = dict(os.environ, SPECNB_HOME=str(specnb_home))
    done = subprocess.run([sys.executable, "-c", _KILLED_CHILD, str(gguf_file)], env=env, capture_output=True,
                          text=True, timeout=600)  # a hang guard
    assert done.returncode == 9, done.stderr[-3000:]
    leftovers = cache_entries(specnb_home)
    assert leftovers and all(name.endswith(".tmp") for name in leftovers)
    assert not gguf_cache_dir(gguf_file).exists()

    model = load_cpu(gguf_file)
    assert model._backend.converted is True
    assert model._backend.source == str(gguf_cache_dir(gguf_file))
    assert len(model.predict(["hi"])) == 1


def test_an_untrusted_cache_folder_is_rebuilt(specnb_home, gguf_file):
    stale = gguf_cache_dir(gguf_file)
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"truncated")
    model = load_cpu(gguf_file)
    assert model._backend.converted is True
    assert (stale / "specnb-gguf.json").is_file()


# -- GGUF files in folders, and tasks ---------------------------------------------------------------------------------
def test_folder_holding_one_gguf_loads_it(specnb_home, gguf_file):
    model = load_cpu(gguf_file.parent)
    assert (model.backend, model.task, model.alias) == ("gguf", "generate", "models")
    assert model._backend.source == str(gguf_cache_dir(gguf_file))


def test_folder_holding_two_ggufs_is_refused_listing_them(specnb_home, gguf_file):
    write_tiny_llama_gguf(gguf_file.parent / "other.gguf", quant="F32")
    with pytest.raises(specnb.NotAModelError) as caught:
        load_cpu(gguf_file.parent)
    assert "other.gguf" in str(caught.value) and "tiny-llama.gguf" in str(caught.value)
    assert cache_entries(specnb_home) == []


def test_gguf_refuses_unknown_tasks_before_converting(specnb_home, gguf_file):
    with pytest.raises(specnb.TaskError, match="valid tasks: classify"):
        load_cpu(gguf_file, task="translate")
    assert cache_entries(specnb_home) == []


def test_gguf_generalist_serves_every_task(specnb_home, gguf_file):
    model = load_cpu(gguf_file)
    assert set(model.tasks) == set(specnb.TASKS)
    predictions = model.predict(["hello there", "bonjour"], task="classify", labels=["greeting", "question"])
    assert all(p.label in ("greeting", "question") and 0 < p.score <= 1 for p in predictions)
