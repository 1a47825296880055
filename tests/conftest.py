"""Shared test setup: keep $HOME clean, isolate caches, and start every test with an empty registry."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

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


@pytest.fixture(autouse=True)
def empty_registry():
    """Each test starts and ends with no model loaded and default settings."""
    import specnb
    from specnb.settings import Settings

    specnb.registry.clear()
    saved = Settings(**{k: getattr(specnb.config, k) for k in ("home", "batch_size", "max_new_tokens")})
    saved.memory_budget = dict(specnb.config.memory_budget)
    yield
    specnb.registry.clear()
    for key in ("home", "batch_size", "max_new_tokens", "memory_budget"):
        setattr(specnb.config, key, getattr(saved, key))


@pytest.fixture
def specnb_home(tmp_path, monkeypatch):
    """A fresh, empty SPECNB_HOME for tests that examine the cache."""
    home = tmp_path / "specnb-home"
    monkeypatch.setenv("SPECNB_HOME", str(home))
    return home
