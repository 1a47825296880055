"""What specnb refuses to load and why: pickles, remote code, non-models, unknown names, the hub offline.

No test here reaches the network: hub reachability is either short-circuited by HF_HUB_OFFLINE or
monkeypatched, and `no_network` makes any socket connection fail loudly.
"""

from __future__ import annotations

import json
import os
import shutil
import socket

import numpy as np
import pytest

import specnb
from specnb.backends import resolve as resolve_module

from tiny_models import CODE_RAN_MARKER

pytest.importorskip("transformers")


HUB_ID = "someorg/somemodel"
TEXTS = ["The film was wonderful, I loved every minute of it!", "hi", "The service was terrible."]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a test tried to open a network connection: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture
def hub_never_probed(monkeypatch):
    """Fail if specnb asks whether the hub is reachable."""

    def probe(*args, **kwargs):
        raise AssertionError("specnb probed the hub although it need not")

    monkeypatch.setattr(resolve_module, "hub_reachable", probe)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf-hub-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def place_in_hub_cache(cache, repo_id: str, folder, revision: str = "0123456789abcdef0123456789abcdef01234567"):
    """Lay ``folder`` out as huggingface_hub does: blobs/, snapshots/<revision>/ symlinks, refs/main."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = file.relative_to(folder)
        blob = repo / "blobs" / f"{len(list((repo / 'blobs').iterdir())):040x}"
        shutil.copyfile(file, blob)
        link = snapshot / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


# -- pickles ------------------------------------------------------------------------------------------
def test_pickled_only_folder_is_refused_naming_allow_pickle(pickled_only_dir):
    with pytest.raises(specnb.UnsafeWeightsError) as caught:
        specnb.load(pickled_only_dir, device="cpu")
    message = str(caught.value)
    assert "allow_pickle=True" in message
    assert "pytorch_model.bin" in message
    assert "safetensors" in message  # says what to do instead
    assert len(specnb.registry) == 0


def test_pickled_only_folder_loads_with_allow_pickle_and_predicts_like_safetensors(pickled_only_dir, tiny_sentiment_dir):
    pickled = specnb.load(pickled_only_dir, device="cpu", allow_pickle=True)
    safe = specnb.load(tiny_sentiment_dir, device="cpu")
    assert pickled.task == "sentiment"
    # Both folders hold the same seeded weights, one pickled and one as safetensors.
    a, b = pickled.predict(TEXTS), safe.predict(TEXTS)
    assert [p.label for p in a] == [p.label for p in b]
    np.testing.assert_allclose([p.score for p in a], [p.score for p in b], rtol=1e-6)


class _RunsCodeWhenUnpickled:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('unpickled')",))


def test_malicious_pickle_is_never_unpickled_without_allow_pickle(pickled_only_dir, tmp_path):
    import pickle

    folder = tmp_path / "malicious"
    shutil.copytree(pickled_only_dir, folder)
    marker = tmp_path / "UNPICKLED"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_RunsCodeWhenUnpickled(marker)))
    with pytest.raises(specnb.UnsafeWeightsError):
        specnb.load(folder, device="cpu")
    assert not marker.exists()


# -- remote code ---------------------------------------------------------------------------------------
def test_remote_code_folder_is_refused_without_running_its_code(remote_code_dir, no_network, hub_never_probed):
    with pytest.raises(specnb.UnsafeWeightsError) as caught:
        specnb.load(remote_code_dir, device="cpu")
    message = str(caught.value)
    assert "trust_remote_code=True" in message
    assert "specnb-custom-arch" in message
    assert not (remote_code_dir / CODE_RAN_MARKER).exists()
    assert len(specnb.registry) == 0


def test_auto_map_on_a_built_in_architecture_loads_without_running_shipped_code(tiny_embed_dir, tmp_path, no_network):
    folder = tmp_path / "bert-with-auto-map"
    shutil.copytree(tiny_embed_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_custom.SpecnbCustomModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_custom.py").write_text(f"open(__file__.replace('modeling_custom.py', {CODE_RAN_MARKER!r}), 'w')\n")
    model = specnb.load(folder, device="cpu")
    assert model.task == "embed"
    assert len(model.predict(["hello world"])) == 1
    assert not (folder / CODE_RAN_MARKER).exists()


# -- not a model ---------------------------------------------------------------------------------------
def test_folder_without_config_json_is_not_a_model(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("just notes")
    with pytest.raises(specnb.NotAModelError) as caught:
        specnb.load(folder)
    message = str(caught.value)
    assert str(folder) in message
    assert "config.json" in message and "safetensors" in message and ".gguf" in message


def test_config_without_weights_is_not_a_model(tiny_sentiment_dir, tmp_path):
    folder = tmp_path / "config-only"
    folder.mkdir()
    shutil.copy(tiny_sentiment_dir / "config.json", folder / "config.json")
    with pytest.raises(specnb.NotAModelError) as caught:
        specnb.load(folder)
    assert "no model weights" in str(caught.value)
    assert "model.safetensors" in str(caught.value)


def test_invalid_config_json_is_not_a_model(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    with pytest.raises(specnb.NotAModelError, match="not valid JSON"):
        specnb.load(folder)


@pytest.mark.parametrize("relative", [False, True])
def test_missing_path_is_not_a_model(tmp_path, monkeypatch, relative, hub_never_probed):
    monkeypatch.chdir(tmp_path)
    source = "./no-such-model" if relative else str(tmp_path / "no-such-model")
    with pytest.raises(specnb.NotAModelError) as caught:
        specnb.load(source)
    assert "no such file or folder" in str(caught.value)
    assert "no-such-model" in str(caught.value)


def test_a_file_of_unknown_kind_is_not_a_model(tmp_path):
    file = tmp_path / "weights.txt"
    file.write_text("0.1 0.2")
    with pytest.raises(specnb.NotAModelError) as caught:
        specnb.load(file)
    assert ".gguf" in str(caught.value)


# -- unknown names ---------------------------------------------------------------------------------------
def test_misspelt_catalog_name_suggests_the_close_one(hub_never_probed):
    with pytest.raises(specnb.UnknownModelError) as caught:
        specnb.load("minilmm")
    message = str(caught.value)
    assert "'minilm'" in message
    assert "specnb.catalog()" in message
    assert message.startswith("no model called")  # str(), not the repr a bare KeyError gives
    assert isinstance(caught.value, KeyError)


def test_non_text_source_is_an_unknown_model():
    with pytest.raises(specnb.UnknownModelError, match="int"):
        specnb.load(42)


# -- the hub -----------------------------------------------------------------------------------------------
def test_uncached_hub_id_with_hub_offline_raises_without_probing(monkeypatch, hub_cache, hub_never_probed, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(specnb.HubUnavailableError) as caught:
        specnb.load(HUB_ID)
    message = str(caught.value)
    assert HUB_ID in message and "HF_HUB_OFFLINE" in message
    assert str(hub_cache) in message
    assert isinstance(caught.value, ConnectionError)


def test_uncached_hub_id_with_unreachable_hub_raises_hub_unavailable(monkeypatch, hub_cache, no_network):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    probes = []
    monkeypatch.setattr(resolve_module, "hub_reachable", lambda *a, **k: probes.append(1) or False)

    def download(*args, **kwargs):
        raise AssertionError("specnb tried to download from an unreachable hub")

    monkeypatch.setattr(resolve_module, "_remote_hub_plan", download)
    with pytest.raises(specnb.HubUnavailableError) as caught:
        specnb.load(HUB_ID)
    message = str(caught.value)
    assert probes == [1]
    assert "Hugging Face hub" in message and "cannot be reached" in message
    assert HUB_ID in message


@pytest.mark.parametrize("name", ["sst2-distilbert", "conll-bert", "qwen2.5-0.5b"])
@pytest.mark.parametrize("offline", [True, False])
def test_catalog_hub_entry_not_cached_raises_hub_unavailable(monkeypatch, hub_cache, no_network, name, offline):
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(resolve_module, "hub_reachable", lambda *a, **k: False)
    with pytest.raises(specnb.HubUnavailableError) as caught:
        specnb.load(name)
    assert specnb.catalog().set_index("name").loc[name, "source"] in str(caught.value)
    assert "specnb.catalog()" in str(caught.value)


def test_hub_snapshot_in_the_cache_loads_offline_by_its_hub_id(
    monkeypatch, hub_cache, tiny_sentiment_dir, hub_never_probed, no_network
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = place_in_hub_cache(hub_cache, "someorg/tiny-sentiment", tiny_sentiment_dir)
    model = specnb.load("someorg/tiny-sentiment", device="cpu")
    assert (model.source, model.alias, model.task) == ("someorg/tiny-sentiment", "tiny-sentiment", "sentiment")
    assert specnb.load("someorg/tiny-sentiment", device="cpu") is model
    direct = specnb.load(tiny_sentiment_dir, device="cpu")
    assert direct is not model
    np.testing.assert_allclose([p.score for p in model.predict(TEXTS)], [p.score for p in direct.predict(TEXTS)])
    assert (snapshot / "config.json").is_symlink()


def test_catalog_hub_entry_loads_from_a_cached_snapshot(monkeypatch, hub_cache, tiny_sentiment_dir, hub_never_probed, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    place_in_hub_cache(hub_cache, "distilbert/distilbert-base-uncased-finetuned-sst-2-english", tiny_sentiment_dir)
    assert bool(specnb.catalog().set_index("name").loc["sst2-distilbert", "offline"])
    model = specnb.load("sst2-distilbert", device="cpu")
    assert (model.alias, model.task, model.role) == ("sst2-distilbert", "sentiment", "specialist")
    assert {p.label for p in model.predict(TEXTS)} <= {"negative", "positive"}


def test_resolve_module_is_reachable_by_its_dotted_path(monkeypatch):
    monkeypatch.setattr("specnb.backends.resolve.hub_reachable", lambda *a, **k: False)
    assert resolve_module.hub_reachable() is False


def test_hub_snapshot_follows_refs_main(monkeypatch, hub_cache, tmp_path, hub_never_probed, no_network):
    import tiny_models

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    current = tiny_models.tiny_bert_classifier(tmp_path / "current", labels=("negative", "positive"))
    stale = tiny_models.tiny_bert_classifier(tmp_path / "stale", labels=("sports", "politics", "science"))
    place_in_hub_cache(hub_cache, "someorg/evolving", current, revision="b" * 40)
    repo = hub_cache / "models--someorg--evolving"
    # An older revision fetched later (e.g. revision=...): newer mtime, but refs/main still says b...b.
    old = place_in_hub_cache(tmp_path / "other-cache", "someorg/evolving", stale, revision="a" * 40)
    shutil.copytree(old, repo / "snapshots" / ("a" * 40), symlinks=False)
    main_mtime = (repo / "snapshots" / ("b" * 40)).stat().st_mtime
    os.utime(repo / "snapshots" / ("a" * 40), (main_mtime + 100, main_mtime + 100))
    assert (repo / "refs" / "main").read_text() == "b" * 40
    model = specnb.load("someorg/evolving", device="cpu")
    assert model.task == "sentiment"


def test_adapter_only_folder_is_not_a_model_and_says_why(tiny_sentiment_dir, tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    shutil.copy(tiny_sentiment_dir / "config.json", folder / "config.json")
    shutil.copy(tiny_sentiment_dir / "model.safetensors", folder / "adapter_model.safetensors")
    with pytest.raises(specnb.NotAModelError, match="adapter_model.safetensors: adapters need their base model"):
        specnb.load(folder)
