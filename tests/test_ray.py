"""The Ray Data engine gives what the local engine gives: same fields, values, missing fields and order."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import ray_stages

import specnb
import specnb.datasets
from specnb.compose import Pipeline, ray_engine
from specnb.compose.ray_engine import run_ray
from specnb.errors import MissingDependencyError, PipelineError

pytestmark = pytest.mark.real

_RAY_ENV = ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module, started the engine's own way (2 CPUs, no dashboard, a short temp
    dir under /tmp, no auth token or usage stats); whether ~/.ray existed before, for the tests to check."""
    ray = pytest.importorskip("ray", reason="the ray engine needs Ray Data: pip install 'specnb[ray]'")
    pytest.importorskip("ray.data")
    assert not ray.is_initialized(), "another test left Ray running"
    home_ray = Path.home() / ".ray"
    existed = home_ray.exists()
    saved = {name: os.environ.get(name) for name in _RAY_ENV}
    for name in _RAY_ENV:
        os.environ.pop(name, None)  # the engine sets them itself
    ray_engine._init(ray_engine._ray(), 2)
    try:
        yield {"home_ray": home_ray, "existed": existed}
    finally:
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _frame(records) -> pd.DataFrame:
    """What the CLI writes: a DataFrame from the records, columns sorted."""
    frame = pd.DataFrame.from_records(records)
    return frame[sorted(frame.columns)]


def _both(pipe, records, *, remote_pipe=None, **options):
    """The local engine's and the ray engine's records (on copies of ``records``) and their frames; checks
    the profiles agree on what ran where: stage ids, stages, models, items, share sent to a fallback."""
    remote_pipe = remote_pipe or pipe
    local = pipe.run(copy.deepcopy(records))
    remote_in = copy.deepcopy(records)
    remote = run_ray(remote_pipe, remote_in, progress=False, **options)
    assert remote is remote_in  # changed in place and returned, as Pipeline.run does
    same = ["stage", "kind", "models", "items", "weight_bytes", "fallback_share"]
    profile = remote_pipe.last_profile
    pd.testing.assert_frame_equal(profile[same].sort_index(), pipe.last_profile[same].sort_index())
    assert (profile["seconds"] > 0).all() and profile["share"].sum() == pytest.approx(1)
    return local, remote, _frame(local), _frame(remote)


def _sentences(n_en: int, n_other: int) -> list[str]:
    """English sentences mixed in among others, in a fixed shuffled order."""
    data = specnb.datasets.langid_sentences()
    english = data[data.label == "en"].head(n_en)
    other = data[data.label != "en"].sample(n_other, random_state=3)
    return pd.concat([english, other]).sample(frac=1, random_state=7)["text"].tolist()


def test_model_route_and_python_stages_equal_local(ray_session):
    import ray

    def tone(texts):  # a notebook-style callable model: Ray ships it by value to the actor
        return [("loud", 1.0) if "!" in t else ("calm", round(len(t) / 1000, 3)) for t in texts]

    specnb.load(tone, task="sentiment", alias="tone")  # a registry alias: the worker must load it the same way
    pipe = Pipeline([
        {"kind": "model", "field": "lang", "model": "langid", "input": "text"},
        {"kind": "route", "field": "lang", "branches": {"en": [
            {"kind": "model", "field": "sentiment", "model": "vader", "input": "text"},
            {"kind": "model", "field": "ents", "model": "ner", "input": "text"},
        ]}, "default": [{"kind": "model", "field": "tone", "model": "tone", "input": "text"}]},
        ray_stages.word_stats,
    ])
    texts = _sentences(20, 40)
    records = pipe.records(texts)
    # Ray runs the pipeline as `specnb run` reads it from YAML: the python stage by its import path.
    from_yaml = Pipeline.from_yaml(pipe.to_yaml())
    assert from_yaml.to_dict() == pipe.to_dict()
    local_records, remote_records, local, remote = _both(pipe, records, remote_pipe=from_yaml, batch_size=16)

    pd.testing.assert_frame_equal(remote, local, check_exact=True)
    # Stricter than the frames (where None and a missing field both read NaN): the same dicts, the same
    # keys in the same order (the CLI's column order), None apart from missing, ints apart from floats.
    assert remote_records == local_records
    assert [list(r) for r in remote_records] == [list(r) for r in local_records]
    assert [type(v) for r in remote_records for v in r.values()] == [
        type(v) for r in local_records for v in r.values()]
    assert remote["text"].tolist() == texts
    # The comparison covers what Arrow columns would lose: fields a route skipped, empty and full span lists.
    assert remote["sentiment"].isna().sum() == (remote["lang"] != "en").sum() == remote["tone"].notna().sum() > 0
    assert remote["shout"].isna().any() and remote["shout"].notna().any()
    spans = remote.loc[remote["lang"] == "en", "ents"]
    assert any(s == [] for s in spans) and any(s and isinstance(s[0], dict) for s in spans)
    assert remote["words"].dtype.kind == "i" and (remote["words"] > 0).all()
    assert ray.is_initialized()
    if not ray_session["existed"]:
        assert not ray_session["home_ray"].exists(), "Ray wrote ~/.ray (auth token or session files)"


def test_cascade_equals_local_including_by(ray_session):
    pipe = Pipeline([{"kind": "cascade", "field": "sentiment", "specialist": "vader", "fallback": "minilm",
                      "threshold": 0.7, "input": "text", "task": "sentiment"}])
    records = pipe.records(_sentences(20, 10))
    local_records, remote_records, local, remote = _both(pipe, records, batch_size=8)

    assert set(remote["sentiment:by"]) == {"vader", "minilm"}  # both models answered some records
    pd.testing.assert_frame_equal(remote, local, check_exact=False, rtol=0, atol=1e-6)
    pd.testing.assert_frame_equal(remote.drop(columns="sentiment:score"), local.drop(columns="sentiment:score"),
                                  check_exact=True)
    # MiniLM's scores move by ~1e-7 with the batch it ran in (padding); everything else is the same dicts.
    assert [list(r) for r in remote_records] == [list(r) for r in local_records]
    unscored = [{k: v for k, v in r.items() if k != "sentiment:score"} for r in remote_records]
    assert unscored == [{k: v for k, v in r.items() if k != "sentiment:score"} for r in local_records]


def test_python_stage_error_reaches_the_caller(ray_session):
    pipe = Pipeline([ray_stages.drops_a_record])
    with pytest.raises(PipelineError, match="must return one dict per record") as caught:
        run_ray(pipe, pipe.records(["one", "two", "three"]), progress=False)
    assert type(caught.value) is PipelineError  # the worker's own error, not Ray's wrapper around it


def test_missing_ray_names_the_extra(monkeypatch):
    pipe = Pipeline([ray_stages.word_stats])
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'specnb\[ray\]'"):
        run_ray(pipe, pipe.records(["some text"]), progress=False)


def test_bad_batch_size_and_empty_input_need_no_ray(monkeypatch):
    pipe = Pipeline([ray_stages.word_stats])
    monkeypatch.setitem(sys.modules, "ray", None)
    assert run_ray(pipe, []) == []
    with pytest.raises(PipelineError, match="batch_size"):
        run_ray(pipe, pipe.records(["x"]), batch_size=0)


def test_plan_puts_models_on_actors_and_fits_the_shares():
    stages = [
        {"kind": "model", "field": "lang", "model": "langid", "input": "text"},
        {"kind": "route", "field": "lang", "branches": {"en": [{"kind": "python", "function": "m:f"}]}},
        {"kind": "route", "field": "lang", "branches": {"en": [
            {"kind": "cascade", "field": "s", "specialist": "vader", "fallback": "minilm", "threshold": 0.5,
             "input": "text"}]}},
        {"kind": "python", "function": "m:g"},
    ]
    cpu = ray_engine._plan(stages, cpus=(2, 2), cuda=False, num_gpus_per_model=None)
    assert [s["actor"] for s in cpu] == [True, False, True, False]  # a route is an actor only around a model
    assert [s["stages"] for s in cpu] == [[s] for s in stages]
    assert all(s["num_gpus"] == 0 for s in cpu)
    assert sum(s["num_cpus"] for s in cpu) < 2  # every step at once, with room left for Ray Data
    gpu = ray_engine._plan(stages, cpus=(32, 16), cuda=True, num_gpus_per_model=None)
    assert [s["num_gpus"] for s in gpu] == [0.5, 0, 0.5, 0]  # one GPU shared by the two model actors
    assert [s["num_cpus"] for s in gpu] == [14.5, 1, 14.5, 1]  # actors get the threads; no more than a node
    assert ray_engine._plan(stages, cpus=(64, 16), cuda=True, num_gpus_per_model=1)[0] | {"stages": None} == {
        "stages": None, "actor": True, "num_cpus": 16, "num_gpus": 1}


def test_a_model_that_cannot_load_in_the_worker_raises_its_own_error(ray_session):
    from specnb.errors import MemoryBudgetError

    specnb.config.memory_budget["cpu"] = 1000  # the driver's settings travel to the workers
    pipe = Pipeline([{"kind": "model", "field": "lang", "model": "langid", "input": "text"}])
    with pytest.raises(MemoryBudgetError, match="langid") as caught:
        run_ray(pipe, pipe.records(["Guten Morgen", "Good morning"]), progress=False)
    assert type(caught.value) is MemoryBudgetError


def test_asking_for_a_gpu_the_cluster_lacks_fails_at_once(ray_session):
    import ray

    if ray.cluster_resources().get("GPU"):
        pytest.skip("this Ray has a GPU")
    pipe = Pipeline([{"kind": "model", "field": "lang", "model": "langid", "input": "text"}])
    with pytest.raises(PipelineError, match="no GPU"):
        run_ray(pipe, pipe.records(["hello"]), num_gpus_per_model=1, progress=False)


def test_a_worker_loads_a_model_named_by_a_stage_with_its_own_default_task(ray_session):
    # minilm is not loaded in the driver: the worker loads it by name, as an embedder asked for sentiment
    # per call (a python stage in the same step, inside the route, reads the worker's own registry).
    cascade = {"kind": "cascade", "field": "s", "specialist": "vader", "fallback": "minilm", "threshold": 1.0,
               "input": "text"}
    pipe = Pipeline([{"kind": "route", "field": "text", "branches": {},
                      "default": [cascade, {"kind": "python", "function": "ray_stages:worker_tasks"}]}])
    [record] = run_ray(pipe, pipe.records(["I love this film!"]), progress=False)
    assert record["s:by"] == "minilm" and record["s"] in ("positive", "negative", "neutral")
    assert record["worker_tasks"] == {"vader": "sentiment", "minilm": "embed"}
    assert "minilm" not in specnb.registry  # the driver's registry is untouched


def test_an_endpoint_model_in_a_cascade_on_ray_equals_local(ray_session, vllm):
    """The worker loads the endpoint from its source and options (the key, if any, from the environment); its
    answers through the real vLLM server equal the local engine's."""
    specnb.load(vllm.base_url, alias="big", cache=False)
    pipe = Pipeline([{"kind": "cascade", "field": "lang", "specialist": "langid", "fallback": "big",
                      "threshold": 1.0, "input": "text", "task": "langid", "labels": ["en", "fr", "de"]}])
    frame = specnb.datasets.langid_sentences()
    texts = frame[frame["label"].isin(["en", "fr", "de"])].groupby("label").head(2)["text"].tolist()
    local_records, remote_records, local, remote = _both(pipe, pipe.records(texts), batch_size=4)
    assert "big" in set(remote["lang:by"])
    pd.testing.assert_frame_equal(remote, local, check_exact=False, rtol=0, atol=1e-4)
