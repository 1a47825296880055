"""Shared test setup: keep $HOME clean, isolate caches, and start every test with an empty registry."""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import pytest

import tiny_models
from tiny_models import LANGID_LABELS, NER_LABELS, TOPIC_LABELS

ROOT = Path(__file__).resolve().parents[1]

# Everything a test run writes goes under build/ or a temp dir, never $HOME. The specnb cache is
# kept across runs in build/ so the real SmolLM2 GGUF is dequantized once per checkout.
_TMP = Path(tempfile.mkdtemp(prefix="specnb-tests-"))
os.environ.setdefault("SPECNB_HOME", str(ROOT / "build" / "specnb-home"))
for _var, _sub in [
    ("HF_HOME", "hf"),
    ("XDG_CACHE_HOME", "xdg-cache"),
    ("XDG_CONFIG_HOME", "xdg-config"),
    ("IPYTHONDIR", "ipython"),
    ("JUPYTER_CONFIG_DIR", "jupyter-config"),
    ("JUPYTER_DATA_DIR", "jupyter-data"),
    ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
    ("MPLCONFIGDIR", "mpl"),
]:
    os.environ[_var] = str(_TMP / _sub)
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


def _hypothesis_profile() -> None:
    """Every property test without a time limit: hypothesis' default deadline (200 ms a case) and its too-slow
    health check fail a test on a slow or loaded machine, not on a wrong answer. (Settings a test gives itself
    start from this profile; tests/properties.py's `seeded` sets the same.)"""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:
        return
    settings.register_profile("specnb", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("specnb")


_hypothesis_profile()


@pytest.fixture(autouse=True)
def empty_registry():
    """Each test starts and ends with no model loaded and default settings."""
    import dataclasses

    import specnb
    from specnb.settings import Settings

    specnb.registry.clear()
    names = [f.name for f in dataclasses.fields(Settings)]
    # Copies of every setting (dicts included), so a test that changes one cannot leak it.
    saved = {k: copy.deepcopy(getattr(specnb.config, k)) for k in names}
    yield
    specnb.registry.clear()
    for key, value in saved.items():
        setattr(specnb.config, key, value)


@pytest.fixture
def specnb_home(tmp_path, monkeypatch):
    """A fresh, empty SPECNB_HOME for tests that examine the cache."""
    home = tmp_path / "specnb-home"
    monkeypatch.setenv("SPECNB_HOME", str(home))
    return home


# -- tiny transformers checkpoints (see tiny_models), built once per test session ---------------------
# Tests treat these folders as read-only: copy one to tmp_path before changing it.

def _build(factory: pytest.TempPathFactory, name: str, builder, **kwargs) -> Path:
    return builder(factory.mktemp(name, numbered=True), **kwargs)


@pytest.fixture(scope="session")
def tiny_embed_dir(tmp_path_factory) -> Path:
    """BertModel, sentence-transformers layout: mean pooling then Normalize."""
    return _build(tmp_path_factory, "tiny-embed", tiny_models.tiny_bert_embed)


@pytest.fixture(scope="session")
def tiny_embed_plain_dir(tmp_path_factory) -> Path:
    """The same BertModel without a Normalize module."""
    return _build(tmp_path_factory, "tiny-embed-plain", tiny_models.tiny_bert_embed, normalize=False)


@pytest.fixture(scope="session")
def tiny_sentiment_dir(tmp_path_factory) -> Path:
    """BertForSequenceClassification with labels negative / positive."""
    return _build(tmp_path_factory, "tiny-sentiment", tiny_models.tiny_bert_classifier)


@pytest.fixture(scope="session")
def tiny_topic_dir(tmp_path_factory) -> Path:
    """BertForSequenceClassification with labels that are neither sentiment nor language codes."""
    return _build(tmp_path_factory, "tiny-topic", tiny_models.tiny_bert_classifier, labels=TOPIC_LABELS)


@pytest.fixture(scope="session")
def tiny_langid_dir(tmp_path_factory) -> Path:
    """BertForSequenceClassification with ISO 639-1 labels."""
    return _build(tmp_path_factory, "tiny-langid", tiny_models.tiny_bert_classifier, labels=LANGID_LABELS)


@pytest.fixture(scope="session")
def tiny_ner_dir(tmp_path_factory) -> Path:
    """BertForTokenClassification with BIO labels over PER and LOC."""
    return _build(tmp_path_factory, "tiny-ner", tiny_models.tiny_bert_ner, labels=NER_LABELS)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """LlamaForCausalLM with a chat template."""
    return _build(tmp_path_factory, "tiny-llama", tiny_models.tiny_llama_chat)


@pytest.fixture(scope="session")
def pickled_only_dir(tmp_path_factory) -> Path:
    """The negative / positive classifier (same weights as tiny_sentiment_dir) as pytorch_model.bin only."""
    return _build(tmp_path_factory, "pickled-only", tiny_models.pickled_only)


@pytest.fixture(scope="session")
def remote_code_dir(tmp_path_factory) -> Path:
    """A folder whose architecture is shipped Python code (auto_map + unknown model_type)."""
    return _build(tmp_path_factory, "remote-code", tiny_models.remote_code_model)


# -- the browser tests' JupyterLab server and Chromium (tests/lab_support.py), one each per module --------

@pytest.fixture(scope="module")
def chromium():
    from lab_support import chromium_or_skip

    return chromium_or_skip()


@pytest.fixture(scope="module")
def lab(chromium, tmp_path_factory):
    """One JupyterLab server for the module, stopped (with its kernels) at teardown."""
    from lab_support import LabServer

    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    server = LabServer(root, base / "jupyter-config", base / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    """One headless Chromium for the module; its config and cache stay under tmp."""
    from lab_support import CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    home = tmp_path_factory.mktemp("chromium-home")
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS, env=env)
        try:
            yield b
        finally:
            b.close()


def pytest_terminal_summary(terminalreporter):
    """The number of generated property cases this run executed (the issue-14 suite counts itself)."""
    from properties import CASES

    if CASES:
        terminalreporter.write_line(f"property suite: {sum(CASES.values()):,} generated cases in "
                                    f"{len(CASES)} property tests")


# -- real OpenAI-compatible servers (tests/servers.py), one of each per test session ----------------------------
@pytest.fixture(scope="session")
def smollm2_dir():
    """The SmolLM2-135M safetensors folder specnb converts from the embedded GGUF (what the servers serve)."""
    import servers

    return servers.smollm2_folder()


@pytest.fixture(scope="session")
def vllm(smollm2_dir, tmp_path_factory):
    """A vLLM server (CPU) serving SmolLM2-135M on 127.0.0.1: ``.base_url``, ``.port``, ``.log_tail()``."""
    import servers

    server = servers.start_vllm(smollm2_dir, tmp_path_factory.mktemp("vllm"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def hf_serve(smollm2_dir, tmp_path_factory):
    """``transformers serve`` serving the same folder: the partly compatible server."""
    import servers

    server = servers.start_transformers_serve(smollm2_dir, tmp_path_factory.mktemp("hf-serve"))
    yield server
    server.stop()


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: only a Binder test that will run counts
def pytest_collection_modifyitems(config, items):
    """Each notebook runs once a session: where the Binder test is selected it runs every notebook in the Binder
    env and checks the same outputs (test_notebooks.EXPECTED), so the test env's own kernel run is skipped."""
    if not any(item.get_closest_marker("binder") for item in items):
        return
    covered = pytest.mark.skip(reason="tests/test_binder.py runs this notebook in the Binder env and checks the same outputs")
    for item in items:
        if item.originalname == "test_notebook_runs_in_a_kernel":
            item.add_marker(covered)
