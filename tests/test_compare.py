"""specnb.compare: the same inputs through every model, scored the same way, kept in the run store."""

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

import specnb
from specnb._compare.comparison import INVALID

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TEXTS = [
    "I love this phone",
    "terrible battery, awful",
    "the screen is great",
    "worst purchase ever",
    "quite nice overall",
    "bad bad bad",
]
GOLD = ["pos", "neg", "pos", "neg", "pos", "neg"]


def keyword_model(texts):
    """Right on 5 of 6: 'quite nice overall' has no keyword it knows."""
    good = ("love", "great")
    return [("pos", 0.9) if any(w in t for w in good) else ("neg", 0.6) for t in texts]


def always_pos(texts):
    return [("pos", 0.5) for _ in texts]


@pytest.fixture
def two_models():
    return [specnb.load(keyword_model, task="classify", alias="keywords"),
            specnb.load(always_pos, task="classify", alias="constant")]


def test_compare_scores_every_model_on_the_same_inputs(specnb_home, two_models):
    cmp = specnb.compare("classify", TEXTS, two_models, labels=GOLD, progress=False)
    s = cmp.summary
    assert list(s.index) == ["keywords", "constant"]
    assert s.loc["keywords", "accuracy"] == pytest.approx(5 / 6)
    assert s.loc["constant", "accuracy"] == pytest.approx(3 / 6)
    assert s.loc["constant", "macro_f1"] == pytest.approx((2 * 3 / 9 + 0) / 2)
    assert s.loc["keywords", "agree:constant"] == pytest.approx(2 / 6)
    assert s.loc["keywords", "agree:keywords"] == 1.0
    for column in ["accuracy_low", "accuracy_high", "macro_f1_low", "valid", "p50_ms", "p95_ms", "p99_ms",
                   "items_per_s", "load_s", "weight_bytes", "run_peak_bytes", "price_per_hour", "usd_per_1m"]:
        assert column in s.columns, column
    assert (s["valid"] == 1.0).all() and (s["items"] == 6).all()
    assert s.loc["keywords", "accuracy_low"] <= 5 / 6 <= s.loc["keywords", "accuracy_high"]
    assert cmp.label_space == ("neg", "pos")  # classify: the distinct gold labels
    # cost: dollars per hour / items per hour, at the default CPU price
    per_s = s.loc["keywords", "items_per_s"]
    assert s.loc["keywords", "usd_per_1m"] == pytest.approx(specnb.config.price_per_hour["cpu"] / 3600 / per_s * 1e6)


def test_table_disagreements_and_confusion(specnb_home, two_models):
    cmp = specnb.compare("classify", TEXTS, two_models, labels=GOLD, progress=False)
    t = cmp.table
    assert list(t.columns[:4]) == ["input", "label", "keywords", "keywords:score"]
    assert t["input"].tolist() == TEXTS and t["label"].tolist() == GOLD
    assert t["keywords:correct"].tolist() == [True, True, True, True, False, True]
    # rows where the models differ or one is wrong: every "neg" item, and "quite nice overall"
    assert cmp.disagreements.index.tolist() == [1, 3, 4, 5]
    confusion = cmp.confusion("constant")
    assert confusion.loc["neg", "pos"] == 3 and confusion.loc["pos", "pos"] == 3
    assert INVALID in confusion.columns
    with pytest.raises(specnb.InputError, match="models: keywords, constant"):
        cmp.confusion("nope")


def test_bad_inputs_become_per_item_errors_and_the_other_items_run(specnb_home):
    seen = []

    def model(texts):
        seen.extend(texts)
        return [("en", 1.0) for _ in texts]

    big = "a" * 2**20
    inputs = ["Hello there, how are you?", None, float("nan"), "", "   ", 42, big, pd.NA, "Bonjour à tous"]
    cmp = specnb.compare("langid", inputs, ["langid", model], progress=False)
    assert len(cmp.table) == len(inputs)
    assert seen == ["Hello there, how are you?", "Bonjour à tous"]  # only the good items reached the model
    for name in ("langid", "model"):
        valid = [p.valid for p in cmp.predictions[name]]
        assert valid == [True, False, False, False, False, False, False, False, True]
    errors = cmp.table["langid:error"].tolist()
    assert "missing input (None)" in errors[1] and "missing input (nan)" in errors[2]
    assert "empty text" in errors[3] and "empty text" in errors[4]
    assert "not a string: int 42" in errors[5] and "1,048,576 characters" in errors[6]
    assert "missing input" in errors[7]
    assert cmp.table.loc[8, "langid"] == "fr"
    assert cmp.summary.loc["langid", "valid"] == pytest.approx(2 / 9)
    assert cmp.table["input"][0] == "Hello there, how are you?" and pd.isna(cmp.table["input"][1])
    assert cmp.table["input"][5] == "42"
    # the stored run keeps them the same way
    again = specnb.get_run(cmp.run_id)
    assert again.table.equals(cmp.table)


def test_a_dataframe_gives_text_and_label_columns(specnb_home, two_models):
    df = pd.DataFrame({"review": TEXTS, "y": GOLD, "label": ["x"] * 6})
    cmp = specnb.compare("classify", df, two_models, text="review", labels="y", progress=False)
    assert cmp.summary.loc["keywords", "accuracy"] == pytest.approx(5 / 6)
    auto = specnb.compare("classify", df.rename(columns={"review": "text"}).drop(columns="y").assign(label=GOLD),
                          two_models, progress=False)
    assert auto.labels == GOLD  # the "label" column is used when labels= is not given
    with pytest.raises(specnb.InputError, match=r"no text column 'text'.*\['review', 'y', 'label'\]"):
        specnb.compare("classify", df, two_models, progress=False)
    with pytest.raises(specnb.InputError, match="no label column 'gold'"):
        specnb.compare("classify", df, two_models, text="review", labels="gold", progress=False)


def test_sample_draws_a_fixed_subset_under_the_seed(specnb_home, two_models):
    texts = [f"text {i} love" for i in range(50)]
    a = specnb.compare("classify", texts, two_models, label_space=["pos", "neg"], sample=10, seed=3, progress=False)
    b = specnb.compare("classify", texts, two_models, label_space=["pos", "neg"], sample=10, seed=3, progress=False)
    c = specnb.compare("classify", texts, two_models, label_space=["pos", "neg"], sample=10, seed=4, progress=False)
    assert a.index == b.index != c.index
    assert len(a.index) == 10 and a.index == sorted(a.index)
    assert a.table["input"].tolist() == [texts[i] for i in a.index]
    assert a.table.index.tolist() == a.index
    everything = specnb.compare("classify", texts[:5], two_models, label_space=["pos", "neg"], sample=10,
                                progress=False)
    assert everything.index == list(range(5))


def test_without_labels_there_are_no_quality_columns_but_agreement(specnb_home, two_models):
    cmp = specnb.compare("classify", TEXTS, two_models, label_space=["pos", "neg"], progress=False)
    assert "accuracy" not in cmp.summary.columns and cmp.quality_column is None
    assert cmp.summary.loc["constant", "agree:keywords"] == pytest.approx(2 / 6)
    with pytest.raises(specnb.InputError, match="needs gold labels"):
        cmp.confusion("keywords")


def test_ner_is_scored_on_exact_spans(specnb_home):
    texts = ["Angela Merkel visited Paris.", "Apple hired Tim Cook.", "Nothing here."]
    gold = [[(0, 13, "PERSON"), (22, 27, "GPE")], [{"start": 0, "end": 5, "label": "ORG"}, (12, 20, "PER")], []]

    def tagger(batch):
        out = []
        for t in batch:
            spans = []
            if t.startswith("Angela"):
                spans = [(0, 6, "PERSON"), (22, 27, "LOC")]  # a partial name; LOC where gold has GPE
            elif t.startswith("Apple"):
                spans = [(0, 5, "ORG"), (12, 20, "PERSON")]
            out.append(spans)
        return out

    cmp = specnb.compare("ner", texts, [tagger], labels=gold, label_space=["PERSON", "ORG", "GPE"], progress=False)
    s = cmp.summary.loc["tagger"]
    # LOC is mapped to GPE (only GPE is asked): 3 of 4 predicted spans match exactly, 3 of 4 gold found
    assert (s["precision"], s["recall"], s["f1"]) == pytest.approx((3 / 4, 3 / 4, 3 / 4))
    assert cmp.table.loc[1, "label"] == "Apple/ORG; Tim Cook/PERSON"
    confusion = cmp.confusion("tagger")
    assert confusion.loc["PERSON", "PERSON"] == 1 and confusion.loc["PERSON", "(none)"] == 1
    assert confusion.loc["(none)", "PERSON"] == 1 and confusion.loc["GPE", "GPE"] == 1
    with pytest.raises(specnb.InputError, match="entity type 'MISC' of input 0"):
        specnb.compare("ner", texts[:1], [tagger], labels=[[(0, 6, "MISC")]], progress=False)


def test_errors_name_what_is_wrong_before_anything_runs(specnb_home, two_models):
    with pytest.raises(specnb.TaskError, match="compare scores classify, sentiment, langid, ner"):
        specnb.compare("embed", TEXTS, two_models)
    with pytest.raises(specnb.TaskError, match="'vader' cannot serve 'langid'; it serves sentiment"):
        specnb.compare("langid", TEXTS, ["langid", "vader"])
    with pytest.raises(specnb.InputError, match="labels has 2 entries for 6 inputs"):
        specnb.compare("classify", TEXTS, two_models, labels=["pos", "neg"])
    with pytest.raises(specnb.InputError, match=r"gold labels \['neg'\] are not in the label space"):
        specnb.compare("classify", TEXTS, two_models, labels=GOLD, label_space=["pos", "other"])
    with pytest.raises(specnb.TaskError, match="classify needs a label space"):
        specnb.compare("classify", TEXTS, two_models)
    with pytest.raises(specnb.InputError, match=r"labels are missing .* \(positions 1\)"):
        specnb.compare("classify", TEXTS[:2], two_models, labels=["pos", None])
    with pytest.raises(specnb.InputError, match="listed twice"):
        specnb.compare("classify", TEXTS, [two_models[0], "keywords"], labels=GOLD)
    with pytest.raises(specnb.InputError, match="sample must be a positive int"):
        specnb.compare("classify", TEXTS, two_models, labels=GOLD, sample=0)
    with pytest.raises(specnb.InputError, match="not one string"):
        specnb.compare("classify", "one text", two_models, labels=GOLD)
    with pytest.raises(specnb.UnknownModelError):
        specnb.compare("classify", TEXTS, ["no-such-model-xyz"], labels=GOLD)
    with pytest.raises(specnb.InputError, match="price_per_hour"):
        specnb.compare("classify", TEXTS, two_models, labels=GOLD, price_per_hour=-1, progress=False)
    assert specnb.runs().empty  # nothing was stored


def test_a_model_failing_mid_run_keeps_what_finished(specnb_home, two_models):
    def broken(texts):
        raise RuntimeError("the model fell over")

    with pytest.raises(RuntimeError, match="fell over") as info:
        specnb.compare("classify", TEXTS, [*two_models, broken], labels=GOLD, progress=False)
    run_id = specnb.runs()["id"][0]
    assert run_id in " ".join(info.value.__notes__)
    stored = specnb.get_run(run_id)
    assert stored.status == "failed"
    assert stored.predictions["keywords"][0] == specnb.Label("pos", 0.9)
    assert all(p is None for p in stored.predictions["broken"])
    assert stored.done == [] and not stored.complete


def test_an_answer_outside_the_label_space_is_invalid(specnb_home):
    def wanders(texts):
        return [("maybe", 0.8) if "terrible" in t else ("pos", 0.9) for t in texts]

    cmp = specnb.compare("classify", TEXTS[:2], [wanders], labels=["pos", "neg"], progress=False)
    assert cmp.table["wanders"].tolist()[0] == "pos" and pd.isna(cmp.table["wanders"][1])
    assert "'maybe' is not in the label space (neg, pos)" in cmp.table["wanders:error"][1]
    assert cmp.summary.loc["wanders", "valid"] == 0.5
    assert cmp.confusion("wanders").loc["neg", INVALID] == 1


def test_prices_per_model_or_device_kind(specnb_home, two_models):
    cmp = specnb.compare("classify", TEXTS, two_models, labels=GOLD, price_per_hour={"keywords": 3.6},
                         progress=False)
    assert cmp.summary.loc["keywords", "price_per_hour"] == 3.6
    assert cmp.summary.loc["constant", "price_per_hour"] == specnb.config.price_per_hour["cpu"]
    one = specnb.compare("classify", TEXTS, two_models, labels=GOLD, price_per_hour=1.0, progress=False)
    assert (one.summary["price_per_hour"] == 1.0).all()


def test_runs_are_listed_reloaded_and_deleted(specnb_home, two_models):
    cmp = specnb.compare("classify", TEXTS, two_models, labels=GOLD, name="first", progress=False)
    listing = specnb.runs()
    assert listing.loc[0, "id"] == cmp.run_id and listing.loc[0, "status"] == "finished"
    assert listing.loc[0, "models"] == ["keywords", "constant"] and listing.loc[0, "done"] == 1.0
    assert listing.loc[0, "name"] == "first" and listing.loc[0, "items"] == 6
    again = specnb.get_run(cmp.run_id)
    pd.testing.assert_frame_equal(again.summary, cmp.summary, check_exact=True)
    pd.testing.assert_frame_equal(again.table, cmp.table, check_exact=True)
    assert again.predictions == cmp.predictions and repr(again) == repr(cmp)
    conn = sqlite3.connect(specnb_home / "runs.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    specnb.delete_run(cmp.run_id)
    assert specnb.runs().empty
    with pytest.raises(specnb.RunNotFoundError, match="no run"):
        specnb.get_run(cmp.run_id)
    with pytest.raises(specnb.RunNotFoundError):
        specnb.delete_run(cmp.run_id)


def test_runs_listing_reads_as_people_read_it(specnb_home, two_models):
    """``%specnb runs`` (specnb.runs()): a run without a name shows an empty name beside named ones, not NaN;
    ``created`` is to the second."""
    specnb.compare("classify", TEXTS, two_models, labels=GOLD, name="named", progress=False)
    specnb.compare("classify", TEXTS, two_models, labels=GOLD, progress=False)
    listing = specnb.runs()
    assert sorted(listing["name"]) == ["", "named"] and not listing["name"].isna().any()
    assert "NaN" not in listing.to_string() and "None" not in listing.to_html()
    assert (listing["created"] == listing["created"].dt.floor("s")).all()
    assert str(listing.loc[0, "created"]).count(".") == 0  # 2026-01-02 03:04:05, no fraction


def test_store_false_keeps_nothing(specnb_home, two_models):
    cmp = specnb.compare("classify", TEXTS, two_models, labels=GOLD, store=False, progress=False)
    assert cmp.run_id is None and specnb.runs().empty


def _run_in_subprocess(code: str, home, **kwargs):
    env = dict(os.environ, SPECNB_HOME=str(home), PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_comparison_reloads_identically_in_a_fresh_process(specnb_home, tmp_path, two_models):
    def english(texts):
        return [("en", 0.7) for _ in texts]

    cmp = specnb.compare("langid", ["Hello world, how are you?", "Guten Tag zusammen", None, "Hola amigos"],
                         ["langid", english], labels=["en", "de", "fr", "es"], progress=False)
    out = tmp_path / "reloaded.pkl"
    proc = _run_in_subprocess(f"""
        import pickle, specnb
        c = specnb.get_run({cmp.run_id!r})
        pickle.dump((c.summary, c.table, c.predictions, c.status), open({str(out)!r}, "wb"))
    """, specnb_home)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    summary, table, predictions, status = pd.read_pickle(out)
    pd.testing.assert_frame_equal(summary, cmp.summary, check_exact=True)
    pd.testing.assert_frame_equal(table, cmp.table, check_exact=True)
    assert predictions == cmp.predictions and status == "finished"


def test_the_store_keeps_finished_items_when_the_writer_is_killed(specnb_home):
    proc = _run_in_subprocess("""
        import time, specnb
        specnb.config.store_chunk = 4
        texts = [f"item {i} {'yes' if i % 3 else 'no'}" for i in range(60)]
        def fast(batch):
            return [("yes" if "yes" in t else "no", 1.0) for t in batch]
        answered = 0
        def slow(batch):  # answers 12 items, then hangs until it is killed: the kill never races the end
            global answered
            while answered >= 12:
                time.sleep(1)
            answered += len(batch)
            return [("yes", 0.5) for _ in batch]
        specnb.compare("classify", texts, [fast, slow], labels=["yes" if i % 3 else "no" for i in range(60)],
                       name="killed", progress=False)
        print("finished")
    """, specnb_home)
    db = specnb_home / "runs.sqlite"
    deadline = time.time() + 600  # a hang guard: the child hangs once 12 items are stored
    done = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                conn = sqlite3.connect(db, timeout=5)
                done = conn.execute("SELECT count(*) FROM predictions WHERE model = 'slow'").fetchone()[0]
                conn.close()
            except sqlite3.OperationalError:
                done = 0
            if done >= 12:
                break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    listing = specnb.runs()
    assert listing.loc[0, "status"] == "interrupted" and listing.loc[0, "name"] == "killed"
    run = specnb.get_run(listing.loc[0, "id"])
    assert run.status == "interrupted" and not run.complete
    fast = run.predictions["fast"]
    slow = [p for p in run.predictions["slow"] if p is not None]
    assert all(p is not None for p in fast)  # the first model finished before the kill
    assert len(slow) >= 12 and len(slow) % 4 == 0 and len(slow) < 60  # whole chunks only
    assert run.predictions["slow"][: len(slow)] == [specnb.Label("yes", 0.5)] * len(slow)
    assert run.done == list(range(len(slow)))
    assert run.summary.loc["fast", "items"] == len(slow) and run.summary.loc["fast", "accuracy"] == 1.0
    assert "interrupted" in repr(run)
    assert math.isclose(listing.loc[0, "done"], (60 + len(slow)) / 120)


@pytest.mark.real
def test_minilm_answers_topics_zero_shot_from_label_descriptions(specnb_home):
    texts = ["The central bank raised interest rates as inflation hit markets and company profits fell.",
             "The striker scored twice as the team won the cup final in front of sixty thousand fans.",
             "The new smartphone chip runs machine learning software twice as fast."]
    space = {"business": "business, economy, companies and finance", "sport": "sport, football and athletes",
             "tech": "technology, computers and software"}
    cmp = specnb.compare("classify", texts, ["minilm"], labels=["business", "sport", "tech"], label_space=space,
                         progress=False)
    assert cmp.summary.loc["minilm", "accuracy"] == 1.0
    scores = cmp.table["minilm:score"]
    assert ((scores > 1 / 3) & (scores <= 1)).all()
    assert cmp.descriptions == space
    assert specnb.get_run(cmp.run_id).descriptions == space


def test_peak_memory_is_measured_during_the_run():
    """In a fresh interpreter: in this one, memory other tests left behind (garbage, caches, pools' threads) may
    be freed while the block runs, so the resident set need not rise by what the block holds."""
    script = textwrap.dedent("""
        import time
        import numpy as np
        from specnb.engine import PeakMemory

        with PeakMemory("cpu", interval=0.001) as meter:
            block = np.ones(64 * 2**20 // 8)  # 64 MiB, every page touched
            # hold it until the sampler thread has seen it; 600 s: a hang guard, not a speed limit
            deadline = time.monotonic() + 600
            while meter._high - meter._start < 48 * 2**20 and time.monotonic() < deadline:
                time.sleep(0.01)
            del block
        print(meter.peak_bytes)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(out.stdout.split()[-1]) >= 48 * 2**20  # the peak outlives the memory it measured


def test_an_embedding_model_answers_label_tasks_zero_shot(tiny_embed_dir):
    model = specnb.load(tiny_embed_dir, alias="tiny")
    assert model.tasks == ("embed", "classify", "sentiment")
    texts = ["a b c", "d e f", None]
    out = model.predict(texts, task="classify", labels={"x": "a b c", "y": "q r s"})
    assert out[0] == specnb.Label("x", pytest.approx(out[0].score)) and 0.5 < out[0].score <= 1
    assert out[1].label in ("x", "y") and not out[2].valid
    # without descriptions each label embeds as itself; sentiment has a default space
    assert model.predict(["a b c"], task="classify", labels=["a b c", "zzz"])[0].label == "a b c"
    assert model.predict(["good"], task="sentiment")[0].label in ("positive", "negative", "neutral")
    with pytest.raises(specnb.TaskError, match="classify needs labels|needs labels"):
        model.predict(["x"], task="classify")
    with pytest.raises(specnb.TaskError):
        model.predict(["x"], task="langid")


def test_only_the_charts_module_imports_plotly(specnb_home):
    proc = _run_in_subprocess("""
        import sys, specnb
        c = specnb.compare("classify", ["a", "b"], [lambda ts: ["x" for _ in ts]], labels=["x", "y"], progress=False)
        c.summary, c.table, c.disagreements, c.confusion(c.models[0]), c.to_dict()
        assert "plotly" not in sys.modules, "plotly imported before figures()"
        c.figures()
        assert "plotly" in sys.modules
        print("ok")
    """, specnb_home)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0 and out.strip() == "ok", err[-2000:]


def test_gold_labels_and_answers_are_spelt_the_same_way(specnb_home):
    def short_names(texts):
        return [("POS", 0.8) if "love" in t else ("neg", 0.7) for t in texts]

    cmp = specnb.compare("sentiment", TEXTS[:2], [short_names], labels=["pos", "Negative"], progress=False)
    assert cmp.labels == ["positive", "negative"]
    assert cmp.table["short_names"].tolist() == ["positive", "negative"]
    assert cmp.summary.loc["short_names", "accuracy"] == 1.0
    assert cmp.created == specnb.get_run(cmp.run_id).created


def test_an_encoder_loaded_for_a_zero_shot_task_stays_an_encoder(tiny_embed_dir):
    model = specnb.load(tiny_embed_dir, task="classify", alias="tiny-zs")
    assert model.task == "classify" and type(model.native).__name__ == "BertModel"
    assert model.predict(["a b c"], labels={"x": "a b c", "y": "q r s"})[0].label == "x"
