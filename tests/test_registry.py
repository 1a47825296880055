"""The registry: handles, aliases, memory accounting, budgets, LRU eviction and real unloading."""

import gc
import json
import subprocess
import sys
import weakref

import numpy as np
import pytest

import specnb
from specnb.backends import device as dev

from fakes import FakeDevices

VADER = 434_304  # bytes of vader_lexicon.txt
LANGID = 938_013  # bytes of lid.176.ftz


def test_loading_a_loaded_source_returns_the_same_handle():
    first = specnb.load("vader")
    assert specnb.load("vader") is first
    assert specnb.load(first) is first
    assert list(specnb.models()["alias"]) == ["vader"]


def test_models_frame_reports_accounting_columns():
    specnb.load("langid")
    row = specnb.models().set_index("alias").loc["langid"]
    assert row["task"] == "langid" and row["backend"] == "fasttext" and row["device"] == "cpu"
    assert row["weight_bytes"] == LANGID
    assert row["load_seconds"] > 0
    assert isinstance(row["memory_bytes"], (int, np.integer))  # measured at load, not missing
    for column in ["dtype", "parameters", "last_used", "pinned", "source", "role"]:
        assert column in row.index


def test_memory_is_the_meter_delta_across_the_load(monkeypatch):
    fake = FakeDevices(readings=[1_000, 51_000])
    monkeypatch.setattr(dev, "devices", fake)
    model = specnb.load("vader")
    assert model.memory_bytes == 50_000


def test_cpu_memory_is_measured_as_rss_growth_for_a_real_model():
    # In a fresh process: after other models are freed, the allocator reuses their pages and the
    # RSS delta of a new load shrinks, which is what a CPU meter can honestly report.
    code = "import json, specnb; m = specnb.load('minilm'); print(json.dumps([m.memory_bytes, m.weight_bytes]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    memory, weights = json.loads(out.stdout.strip().splitlines()[-1])
    assert weights >= 22_713_216 * 4  # every fp32 parameter, plus buffers
    assert memory > 40 * 2**20  # 87 MiB of fp32 weights, mostly resident once loaded


def test_unload_really_frees_the_torch_module_even_while_the_handle_is_held():
    model = specnb.load("minilm")
    ref = weakref.ref(model._backend.model)
    specnb.unload("minilm")
    gc.collect()
    assert ref() is None
    assert "minilm" not in specnb.registry
    assert not model.loaded
    with pytest.raises(specnb.ModelUnloadedError, match="load it again"):
        model.predict(["hello"])


def test_unload_empties_the_device_cache(monkeypatch):
    fake = FakeDevices()
    monkeypatch.setattr(dev, "devices", fake)
    specnb.load("vader").unload()
    assert fake.emptied == ["cpu"]


def test_a_long_cpu_run_of_a_torch_model_gives_the_c_heap_back(monkeypatch, tiny_sentiment_dir):
    from specnb.backends.model import TRIM_AFTER_ITEMS

    trimmed, trim = [], dev.trim_heap
    monkeypatch.setattr(dev, "trim_heap", lambda: trimmed.append(1) or trim())  # counts, then really trims
    model = specnb.load(tiny_sentiment_dir, device="cpu", dtype="float32")
    lexicon = specnb.load("vader")
    trimmed.clear()
    model.predict(["good"] * (TRIM_AFTER_ITEMS - 1), progress=False)
    lexicon.predict(["good"] * 1000, progress=False)  # no torch module: nothing of its own to give back
    assert trimmed == []
    model.predict(["good"] * TRIM_AFTER_ITEMS, progress=False)
    assert trimmed == [1]


def test_unload_of_an_unknown_alias_lists_the_loaded_ones():
    specnb.load("vader")
    with pytest.raises(specnb.AliasError, match="loaded: vader"):
        specnb.unload("nope")


def test_aliases_are_unique_and_validated():
    specnb.load("vader", alias="v1")
    assert specnb.get("v1").alias == "v1"
    with pytest.raises(specnb.AliasError, match="already used"):
        specnb.load("langid", alias="v1")
    with pytest.raises(specnb.AliasError, match="not valid"):
        specnb.load("langid", alias="two words")


def test_a_callable_is_a_model_and_its_outputs_are_typed():
    model = specnb.load(lambda texts: [("long" if len(t) > 5 else "short", 0.9) for t in texts], task="classify", alias="len")
    assert model.predict(["hi", "hello world"]) == [specnb.Label("short", 0.9), specnb.Label("long", 0.9)]
    with pytest.raises(specnb.TaskError, match="valid tasks"):
        specnb.load(lambda texts: texts)


def test_predict_takes_a_list_and_answers_bad_items_with_invalid():
    model = specnb.load("vader")
    with pytest.raises(specnb.InputError, match=r"predict\(\[text\]\)"):
        model.predict("one text")
    out = model.predict(["What a lovely day!", 3, None, float("nan"), "", "Awful, just awful."])
    assert [p.valid for p in out] == [True, False, False, False, False, True]
    assert out[0].label == "positive" and out[5].label == "negative"
    assert "not a string: int 3" in out[1].reason
    assert "missing input (None)" in out[2].reason and "missing input (nan)" in out[3].reason
    assert "empty text" in out[4].reason
    assert [s > 0 for s in model.last_run.item_seconds] == [True, False, False, False, False, True]
    assert model.predict([]) == []


def test_predict_accepts_a_pandas_series_and_keeps_order():
    import pandas as pd

    model = specnb.load("langid")
    labels = [p.label for p in model.predict(pd.Series(["Guten Tag, wie geht es dir?", "Buenos días a todos, amigos"]))]
    assert labels == ["de", "es"]


def test_wrong_task_lists_the_valid_ones():
    with pytest.raises(specnb.TaskError, match="valid tasks for it: langid, classify"):
        specnb.load("langid", task="ner")
    with pytest.raises(specnb.TaskError, match="unknown task 'topic'.*classify"):
        specnb.load("langid", task="topic")


def test_cpu_only_backends_refuse_a_gpu_and_a_dtype():
    with pytest.raises(specnb.DeviceError, match="CPU only"):
        specnb.load("vader", device="cuda")
    with pytest.raises(specnb.DeviceError, match="torch models only"):
        specnb.load("vader", dtype="float16")


# -- budgets and eviction ----------------------------------------------------------------------
def test_model_larger_than_the_whole_budget_fails_clearly():
    specnb.config.memory_budget["cpu"] = "500KB"
    with pytest.raises(specnb.MemoryBudgetError, match="more than the whole cpu budget"):
        specnb.load("langid")
    assert len(specnb.registry) == 0


def test_a_load_past_the_budget_evicts_the_least_recently_used_and_says_which():
    specnb.config.memory_budget["cpu"] = int(16.5e6)
    specnb.load("vader")
    specnb.load("langid")
    specnb.get("vader").predict(["touch it so langid is the least recently used"])
    with pytest.warns(specnb.EvictionWarning,
                      match=r"^unloaded 'langid' \(916.0 KiB\), least recently used, to fit 'ner' \(14.5 MiB\) in the "
                            r"cpu memory budget of 15.7 MiB$"):
        specnb.load("ner")  # 15.2 MB
    assert sorted(specnb.models()["alias"]) == ["ner", "vader"]
    assert specnb.registry.last_evicted == ["langid"]


def test_eviction_unloads_only_the_models_needed_to_make_room(tiny_sentiment_dir):
    from specnb.backends.resolve import resolve

    tiny = resolve(str(tiny_sentiment_dir), task=None).estimate("float32")
    specnb.load(lambda texts: ["x"] * len(texts), alias="fn", task="classify")  # holds no memory
    for name in ("vader", "langid", "ner"):  # least recently used first: fn, vader, langid, ner
        specnb.load(name)
    ner = specnb.get("ner").weight_bytes
    # 2 MB must go: more than vader and langid hold together (1.3 MiB), less than ner alone
    specnb.config.memory_budget["cpu"] = VADER + LANGID + ner + tiny - 2_000_000
    with pytest.warns(specnb.EvictionWarning) as caught:
        specnb.load(tiny_sentiment_dir, alias="tiny", device="cpu", dtype="float32")
    assert specnb.registry.last_evicted == ["ner"]
    assert sorted(specnb.models()["alias"]) == ["fn", "langid", "tiny", "vader"]
    [message] = [str(w.message) for w in caught]
    assert message.startswith("unloaded 'ner' (14.5 MiB), least recently used of the models whose unloading makes "
                              "room, to fit 'tiny' (")
    assert message.endswith("; kept 'vader', 'langid': unloading them too is not needed")


def test_eviction_takes_least_recently_used_first_then_drops_the_unneeded():
    from types import SimpleNamespace

    from specnb.backends.model_registry import eviction_victims

    def models(**sizes):  # least recently used first
        return [SimpleNamespace(alias=name, weight_bytes=size) for name, size in sizes.items()]

    def victims(free, **sizes):
        return [m.alias for m in eviction_victims(models(**sizes), free)]

    assert victims(10, z=0, a=1, b=2, c=50, d=100) == ["c"]  # a and b are not needed once c goes
    assert victims(6, a=1, b=5, c=2, d=10) == ["a", "b"]  # enough in LRU order: d stays
    assert victims(7, a=4, b=1, c=4, d=100) == ["a", "c"]  # b does not help once a and c go
    assert victims(1, z=0, a=3) == ["a"]
    # what each frees alone (shared weights go with the last model that holds them) adds up to too little: all
    assert [m.alias for m in eviction_victims(models(a=1, b=1, c=0), 90, size=lambda m: m.weight_bytes)] == \
        ["a", "b", "c"]


def test_pinned_models_are_never_evicted():
    specnb.config.memory_budget["cpu"] = VADER + LANGID - 1
    specnb.load("vader", pin=True)
    with pytest.raises(specnb.MemoryBudgetError, match="pinned models hold vader"):
        specnb.load("langid")
    assert list(specnb.models()["alias"]) == ["vader"]
    specnb.get("vader").pin(False)
    with pytest.warns(specnb.EvictionWarning):
        specnb.load("langid")
    assert list(specnb.models()["alias"]) == ["langid"]


def test_budget_only_counts_models_on_the_same_device_kind():
    specnb.config.memory_budget["cpu"] = LANGID + 10
    specnb.config.memory_budget["cuda"] = 1  # irrelevant to CPU models
    specnb.load("langid")
    assert list(specnb.models()["alias"]) == ["langid"]


def test_budget_sizes_parse_and_bad_ones_say_what_is_valid():
    from specnb.settings import parse_size

    assert parse_size("4GB") == 4 * 10**9
    assert parse_size("512MiB") == 512 * 2**20
    assert parse_size(0.5, total=1000) == 500
    assert specnb.config.budget_bytes("cuda", 1000) == 900  # default share
    with pytest.raises(specnb.SpecnbError, match="'4GB' or '512MiB'"):
        parse_size("lots")


def test_a_loaded_source_asked_for_under_another_alias_says_where_it_is():
    specnb.load("vader")
    with pytest.raises(specnb.AliasError, match=r"already loaded as 'vader'; use specnb.get\('vader'\)"):
        specnb.load("vader", alias="sentiment")
    assert specnb.load("vader", alias="vader") is specnb.get("vader")


def test_an_unknown_alias_names_the_closest_loaded_one():
    specnb.load("vader")
    with pytest.raises(specnb.AliasError, match=r"^no loaded model has alias 'vadr'; did you mean 'vader'\? "
                                                r"loaded: vader$"):
        specnb.get("vadr")
