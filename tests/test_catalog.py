"""The catalog: embedded offline defaults and known hub models."""

import pytest

import specnb
from specnb._catalog import ENTRIES, get_entry

EMBEDDED = {"minilm": "embed", "langid": "langid", "ner": "ner", "vader": "sentiment", "smollm2": "generate"}


def test_catalog_is_a_dataframe_with_the_documented_columns():
    frame = specnb.catalog()
    for column in ["name", "task", "role", "backend", "source", "size", "licence", "offline"]:
        assert column in frame.columns
    assert frame["name"].is_unique


def test_catalog_lists_the_five_embedded_defaults_as_offline():
    frame = specnb.catalog().set_index("name")
    for name, task in EMBEDDED.items():
        assert frame.loc[name, "task"] == task
        assert bool(frame.loc[name, "offline"]) is True
    assert frame.loc["smollm2", "role"] == "generalist"
    assert (frame.loc[[n for n in EMBEDDED if n != "smollm2"], "role"] == "specialist").all()


def test_hub_models_are_listed_and_marked_as_needing_the_hub():
    frame = specnb.catalog().set_index("name")
    hub = [e.name for e in ENTRIES.values() if not e.embedded]
    assert {"sst2-distilbert", "conll-bert", "xlmr-langid", "qwen2.5-0.5b", "qwen2.5-1.5b"} <= set(hub)
    assert not frame.loc[hub, "offline"].any()  # the test HF cache is empty
    assert frame.loc["qwen2.5-1.5b", "size"] == "1.54B"


def test_unknown_name_names_close_matches_and_points_at_the_catalog():
    with pytest.raises(specnb.UnknownModelError) as err:
        get_entry("minlm")
    assert "'minilm'" in str(err.value) and "specnb.catalog()" in str(err.value)


def test_catalog_entry_is_offline_only_when_its_package_is_installed(monkeypatch):
    import importlib.util

    entry = ENTRIES["vader"]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == entry.module else real(name, *a))
    assert entry.local_path() is None
    with pytest.raises(specnb.MissingDependencyError, match="pip install vadersentiment"):
        specnb.load("vader")
