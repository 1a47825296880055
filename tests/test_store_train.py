"""Training runs in the run store (schema version 2): a version-1 file is migrated with its runs intact,
`runs()` lists comparisons and training runs side by side, `RecordingMonitor` forwards every call and writes
the log (marking the run however it ends), `get_run` gives a `TrainingRun`, and the ``answers`` cache keeps
what it is given. Real SQLite files in a tmp SPECNB_HOME; a fake store only to inject a failing write."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time

import pandas as pd
import pytest

import specnb
from specnb import store as store_module
from specnb._compare import Comparison, TrainingRun
from specnb._specialize.data import prepare
from specnb._specialize.history import RecordingMonitor, record
from specnb._specialize.monitor import TrainingMonitor
from specnb.errors import InputError, RunNotFoundError, SpecnbWarning, StoreError

#: The schema of specnb's version-1 run store, as that version wrote it.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, created REAL NOT NULL, finished REAL, status TEXT NOT NULL, task TEXT NOT NULL, name TEXT,
    n_items INTEGER NOT NULL, inputs_digest TEXT NOT NULL, pid INTEGER, host TEXT, meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, idx INTEGER NOT NULL, input TEXT NOT NULL,
    label TEXT, PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS run_models (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, position INTEGER NOT NULL, model TEXT NOT NULL,
    info TEXT NOT NULL, stats TEXT, PRIMARY KEY (run_id, model)
);
CREATE TABLE IF NOT EXISTS predictions (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, model TEXT NOT NULL, idx INTEGER NOT NULL,
    prediction TEXT NOT NULL, seconds REAL NOT NULL, PRIMARY KEY (run_id, model, idx)
);
"""

TEXTS = [f"lovely day number {i}" for i in range(6)] + [f"awful day number {i}" for i in range(6)]
GOLD = ["positive"] * 6 + ["negative"] * 6


@pytest.fixture(autouse=True)
def _close_stores():
    yield
    for s in store_module._stores.values():
        s.close()


def _plan(alias="mood", total_steps=100):
    return {"alias": alias, "base": "tiny", "method": "finetune", "task": "sentiment", "epochs": 2,
            "total_steps": total_steps, "train": 9, "held_out": 3, "batch_size": 4, "metric": "accuracy",
            "label_space": ["negative", "positive"], "settings": {"learning_rate": 5e-5, "seed": 0},
            "data_digest": "abc"}


def _prepared():
    return prepare(pd.DataFrame({"text": TEXTS, "label": GOLD}), task="sentiment", eval=0.25)


def _step(i):
    return {"step": i, "epoch": i / 50, "loss": 1.0 / i, "learning_rate": 5e-5, "elapsed": i * 0.01}


def _log(run_id):
    return specnb.store.default_store().read(run_id)["log"]


# -- schema version 2 --------------------------------------------------------------------------------------

def test_a_version_1_store_gets_the_new_tables_and_keeps_its_runs(specnb_home):
    specnb_home.mkdir(parents=True)
    path = specnb_home / "runs.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    meta = {"models": ["english"], "label_space": ["en", "fr"], "descriptions": {}, "seed": 0, "sample": None,
            "index": [0, 1], "has_labels": True, "settings": {}}
    conn.execute("INSERT INTO runs VALUES ('20250101-000000-abcdef', ?, ?, 'finished', 'langid', 'old', 2, 'd', ?, ?, ?)",
                 (time.time() - 60, time.time() - 50, os.getpid(), socket.gethostname(), json.dumps(meta)))
    for i, (text, gold) in enumerate([("hello there", "en"), ("bonjour", "fr")]):
        conn.execute("INSERT INTO items VALUES ('20250101-000000-abcdef', ?, ?, ?)", (i, json.dumps(text), json.dumps(gold)))
        conn.execute("INSERT INTO predictions VALUES ('20250101-000000-abcdef', 'english', ?, ?, 0.001)",
                     (i, json.dumps({"label": "en", "score": 0.9})))
    conn.execute("INSERT INTO run_models VALUES ('20250101-000000-abcdef', 0, 'english', ?, ?)",
                 (json.dumps({"role": "specialist", "device": "cpu"}), json.dumps({"seconds": 0.002, "items": 2})))
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()

    listing = specnb.runs()
    assert listing.loc[0, "kind"] == "compare" and listing.loc[0, "models"] == ["english"]
    assert listing.loc[0, "done"] == 1.0 and listing.loc[0, "status"] == "finished"
    old = specnb.get_run("20250101-000000-abcdef")
    assert isinstance(old, Comparison) and old.summary.loc["english", "accuracy"] == 0.5
    store_module.default_store().close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION == 2
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"train_log", "answers", "runs", "items", "run_models", "predictions"} <= tables
    conn.close()


def test_a_foreign_answers_table_is_refused_and_left_as_it_was(specnb_home):
    specnb_home.mkdir(parents=True)
    path = specnb_home / "runs.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE answers (question TEXT, reply TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="table 'answers' that is not specnb's"):
        specnb.runs()
    assert path.read_bytes() == before


def test_the_answers_cache_keeps_replaces_and_reads_many(specnb_home):
    writer = store_module.default_store()
    assert writer.cached_answers("m", ["a", "b"]) == {}
    writer.add_answers("m", [("a", {"label": "x", "score": 0.5}), ("b", {"invalid": True, "raw": "", "reason": "?"})])
    writer.add_answers("other", [("a", {"label": "y"})])
    assert writer.cached_answers("m", ["a", "b", "c"]) == {"a": {"label": "x", "score": 0.5},
                                                           "b": {"invalid": True, "raw": "", "reason": "?"}}
    writer.add_answers("m", [("a", {"label": "z"})])  # replaced
    assert writer.cached_answers("m", ["a"]) == {"a": {"label": "z"}}
    writer.add_answers("many", [(f"d{i}", i) for i in range(1234)])  # more digests than one IN (...) query holds
    assert writer.cached_answers("many", [f"d{i}" for i in range(0, 1300)]) == {f"d{i}": i for i in range(1234)}
    conn = writer._connect()
    conn.execute("UPDATE answers SET answer = '{not json' WHERE key = 'm' AND digest = 'a'")
    assert writer.cached_answers("m", ["a", "b"]).keys() == {"b"}  # a damaged row is asked again


def test_the_training_log_takes_only_its_events(specnb_home):
    writer = store_module.default_store()
    writer.start_run("r1", task="classify", name=None, inputs=["a"], labels=["x"], digest="d", meta={"kind": "train"})
    with pytest.raises(InputError, match="training log events are step, eval, event; got loss"):
        writer.add_train_log("r1", [("step", {"step": 1}), ("loss", {})])
    assert writer.read("r1")["log"] == []  # nothing of a refused batch is written
    writer.add_train_log("r1", [("step", {"step": 1})])
    writer.add_train_log("r1", [("eval", {"step": 1, "accuracy": 0.5})])
    assert writer.read("r1")["log"] == [("step", {"step": 1}), ("eval", {"step": 1, "accuracy": 0.5})]


# -- RecordingMonitor ---------------------------------------------------------------------------------------

def test_the_recorder_forwards_every_call_and_writes_steps_in_batches(specnb_home):
    inner = TrainingMonitor()
    monitor = RecordingMonitor.wrap(inner, _prepared())
    monitor.on_start(_plan())
    assert inner.status == "running" and monitor.run_id is not None
    for i in range(1, 50):
        monitor.on_step(_step(i))
    assert _log(monitor.run_id) == []  # buffered
    monitor.on_step(_step(50))
    assert len(_log(monitor.run_id)) == 50  # every 50 steps
    monitor.on_step(_step(51))
    monitor.on_evaluate({"step": 51, "epoch": 1.0, "accuracy": 0.75, "macro_f1": 0.7, "loss": 0.4, "elapsed": 1.0})
    assert [e for e, _ in _log(monitor.run_id)][-2:] == ["step", "eval"]  # an evaluation flushes
    monitor.on_event({"step": 52, "elapsed": 1.1, "text": "out of memory: batch halved to 2"})
    assert _log(monitor.run_id)[-1] == ("event", {"step": 52, "elapsed": 1.1, "text": "out of memory: batch halved to 2"})
    listing = specnb.runs()
    row = listing.iloc[0]
    assert row["kind"] == "train" and row["status"] == "running" and row["models"] == ["mood"]
    assert row["done"] == pytest.approx(0.51) and row["items"] == len(TEXTS)
    assert len(inner.steps) == 51 and len(inner.evals) == 1 and len(inner.events) == 1
    monitor.on_end("finished", {"metrics": {"accuracy": {"value": 0.75, "low": 0.3, "high": 0.95}}, "seconds": 2.0,
                                "out": str(specnb_home / "out")})
    assert inner.status == "finished" and inner.summary["seconds"] == 2.0
    row = specnb.runs().iloc[0]
    assert row["status"] == "finished" and row["done"] == 1.0
    run = specnb.get_run(monitor.run_id)
    assert isinstance(run, TrainingRun) and run.best_epoch == 1.0 and run.out == str(specnb_home / "out")
    assert list(run.steps["step"]) == list(range(1, 52)) and run.evals.loc[0, "accuracy"] == 0.75
    assert run.events.loc[0, "text"].startswith("out of memory") and run.settings["learning_rate"] == 5e-5
    assert run.split == {"kind": "stratified", "fraction": 0.25, "seed": 0, "train": 8, "held_out": 4}
    held = run.frame("held_out")
    assert len(held) == 4 and sorted(held["label"]) == ["negative"] * 2 + ["positive"] * 2
    assert len(run.frame("train")) == 8 and "gold" not in held


def test_the_recorder_passes_stop_requests_both_ways(specnb_home):
    inner = TrainingMonitor()
    monitor = record(inner, _prepared())
    assert record(inner, _prepared(), store=False) is inner
    assert not monitor.stop_requested
    inner.stop()  # the live view's Stop button
    assert monitor.stop_requested
    other = TrainingMonitor()
    recorded = RecordingMonitor.wrap(other, _prepared())
    recorded.stop()
    assert other.stop_requested and recorded.stop_requested


def test_a_stopped_run_is_stopped_and_done_counts_its_steps(specnb_home):
    monitor = RecordingMonitor.wrap(TrainingMonitor(), _prepared())
    monitor.on_start(_plan(total_steps=40))
    for i in range(1, 11):
        monitor.on_step(_step(i))
    monitor.on_end("stopped", {"seconds": 0.5})
    row = specnb.runs().iloc[0]
    assert row["status"] == "stopped" and row["done"] == 0.25
    assert len(specnb.get_run(monitor.run_id).steps) == 10  # the buffer was written at the end


@pytest.mark.parametrize(("error", "status"), [(KeyboardInterrupt, "interrupted"), (RuntimeError, "failed")])
def test_an_exception_leaves_the_run_marked(specnb_home, error, status):
    monitor = RecordingMonitor.wrap(TrainingMonitor(), _prepared())
    with pytest.raises(error), monitor:
        monitor.on_start(_plan())
        monitor.on_step(_step(1))
        raise error("boom")
    run = specnb.get_run(monitor.run_id)
    assert run.status == status and len(run.steps) == 1 and "boom" in run.summary["error"]


def test_the_run_is_marked_even_when_the_wrapped_monitor_fails_to_end(specnb_home):
    class Broken(TrainingMonitor):
        def on_end(self, status, summary):
            raise KeyboardInterrupt

    monitor = RecordingMonitor.wrap(Broken(), _prepared())
    monitor.on_start(_plan())
    with pytest.raises(KeyboardInterrupt):
        monitor.on_end("failed", {"error": "RuntimeError: boom"})
    assert specnb.get_run(monitor.run_id).status == "failed"


def test_a_store_that_cannot_be_opened_refuses_the_run_before_training(specnb_home):
    specnb_home.mkdir(parents=True)
    (specnb_home / "runs.sqlite").write_bytes(b"not a database" * 600)
    inner = TrainingMonitor()
    monitor = RecordingMonitor.wrap(inner, _prepared())
    with pytest.raises(StoreError, match="move it aside"):
        monitor.on_start(_plan())
    assert inner.status == "pending"  # the wrapped monitor never started


def test_a_write_that_fails_mid_run_warns_once_and_training_goes_on(specnb_home):
    class FailingLog(store_module.RunStore):  # fault injection: the log cannot be written
        def add_train_log(self, run_id, rows):
            raise StoreError("disk full")

    writer = FailingLog(specnb_home / "runs.sqlite")
    inner = TrainingMonitor()
    monitor = RecordingMonitor(inner, store=writer, texts=TEXTS, labels=GOLD, held_out=[0, 6], every=2)
    monitor.on_start(_plan())
    monitor.on_step(_step(1))
    with pytest.warns(SpecnbWarning, match="disk full; training run .* goes on but is no longer recorded"):
        monitor.on_step(_step(2))
    monitor.on_step(_step(3))  # no second warning, no error
    monitor.on_end("finished", {})
    assert len(inner.steps) == 3 and inner.status == "finished"
    assert writer.read(monitor.run_id)["status"] == "running"  # unrecorded from the failure on
    writer.close()


# -- TrainingRun ---------------------------------------------------------------------------------------------

def test_a_training_run_shows_itself_escaped_and_is_deleted_like_a_comparison(specnb_home):
    prepared = _prepared()
    prepared.gold = list(prepared.labels)
    monitor = RecordingMonitor.wrap(TrainingMonitor(), prepared)
    monitor.on_start({**_plan(alias="<b>mood</b>"), "settings": {"note": "<script>x</script>"}})
    monitor.on_evaluate({"step": 3, "epoch": 1.0, "accuracy": 0.5, "macro_f1": 0.5, "loss": 0.7, "elapsed": 0.1})
    monitor.on_end("finished", {"metrics": {"accuracy": {"value": 0.5, "low": 0.1, "high": 0.9}}})
    run = specnb.get_run(monitor.run_id)
    assert "alias=<b>mood</b>" in repr(run) and "accuracy=0.500 [0.100, 0.900]" in repr(run)
    page = run._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;mood&lt;/b&gt;" in page
    assert "gold" in run.frame("all") and run.frame("all")["gold"].tolist() == prepared.labels
    with pytest.raises(InputError, match="without writing a model folder"):
        run.load()
    with pytest.raises(InputError, match="'train', 'held_out' or 'all'"):
        run.frame("test")
    specnb.delete_run(monitor.run_id)
    with pytest.raises(RunNotFoundError):
        specnb.get_run(monitor.run_id)


def test_specialize_records_its_run_beside_the_comparisons(specnb_home, tiny_embed_dir):
    model = specnb.specialize(str(tiny_embed_dir), pd.DataFrame({"text": TEXTS, "label": GOLD}), task="sentiment",
                              eval=0.25, progress=False)
    specnb.compare("sentiment", model.eval_data, [model], progress=False)
    listing = specnb.runs()
    assert list(listing["kind"]) == ["compare", "train"]
    train = listing.iloc[1]
    assert train["status"] == "finished" and train["models"] == [model.alias] and train["done"] == 1.0
    run = specnb.get_run(train["id"])
    assert isinstance(run, TrainingRun) and run.method == "head" and run.out == model.training["out"]
    assert run.metrics["accuracy"]["value"] == model.training["metrics"]["accuracy"]["value"]
    assert run.frame("held_out")["text"].tolist() == model.eval_data["text"].tolist()
