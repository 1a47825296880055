"""Faults keep the run store whole: an interrupt anywhere in a run, a model that finished no items, and a
damaged or foreign store file each leave the store usable, or are refused with a StoreError that names the
file and what to do. Real SQLite files in a tmp SPECNB_HOME; real compare runs with cheap callables."""

from __future__ import annotations

import os
import sqlite3

import pytest

import specnb
from specnb import store as store_module
from specnb._compare import run as run_module
from specnb.cli import main
from specnb.errors import SpecnbWarning, StoreError

TEXTS = ["hello there", "bonjour", "good morning", "merci beaucoup"]
GOLD = ["en", "fr", "en", "fr"]


def english(texts):
    return [("en", 0.9) for _ in texts]


def _compare(alias="english", fn=english, **kwargs):
    model = specnb.get(alias) if alias in specnb.registry else specnb.load(fn, alias=alias, task="langid")
    return specnb.compare("langid", TEXTS, [model], labels=GOLD, progress=False, **kwargs)


@pytest.fixture(autouse=True)
def _close_stores():
    yield
    for s in store_module._stores.values():
        s.close()


class InterruptAfterBegin:
    """A fault-injection double of the store's connection: it runs the ``nth`` ``BEGIN IMMEDIATE`` and then
    raises KeyboardInterrupt, as a Ctrl-C landing right after BEGIN returns would."""

    def __init__(self, conn, nth):
        self._conn, self._nth, self.begins = conn, nth, 0

    def execute(self, sql, *args):
        result = self._conn.execute(sql, *args)
        if sql.strip().upper().startswith("BEGIN"):
            self.begins += 1
            if self.begins == self._nth:
                raise KeyboardInterrupt
        return result

    def __getattr__(self, name):
        return getattr(self._conn, name)


def _inject(nth):
    writer = store_module.default_store()
    double = InterruptAfterBegin(writer._connect(), nth)
    writer._local.conn = double
    return writer, double


# -- interrupts -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("nth", [1, 2, 3, 4], ids=["start_run", "add_model", "add_predictions", "finish_run"])
def test_an_interrupt_just_after_begin_rolls_back_and_later_compares_work(specnb_home, nth):
    writer, double = _inject(nth)
    with pytest.raises(KeyboardInterrupt):
        _compare()
    assert double.begins >= nth and not double.in_transaction
    listing = specnb.runs()
    if nth == 1:
        assert listing.empty  # the run's first write was rolled back whole
    else:
        assert listing.loc[0, "status"] == "interrupted"
        assert specnb.get_run(listing.loc[0, "id"]).status == "interrupted"
    again = _compare()
    assert specnb.get_run(again.run_id).status == "finished"
    other = sqlite3.connect(specnb_home / "runs.sqlite", timeout=1)  # no lock is left behind either
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()


def test_a_transaction_left_open_is_rolled_back_before_the_next(specnb_home):
    _compare()
    writer = store_module.default_store()
    writer._connect().execute("BEGIN IMMEDIATE")  # as an interrupt would leave it
    assert len(specnb.runs()) == 1
    writer._connect().execute("BEGIN IMMEDIATE")
    assert _compare().run_id in specnb.runs()["id"].tolist()


def _after_start_run(monkeypatch):
    real = store_module.RunStore.start_run

    def start_run(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module.RunStore, "start_run", start_run)


def _building_the_comparison(monkeypatch):
    def comparison(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "Comparison", comparison)


def _summarising(monkeypatch):
    class Json:
        @staticmethod
        def loads(text):
            raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "json", Json)


def _before_finishing(monkeypatch):
    def finish_run(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module.RunStore, "finish_run", finish_run)


@pytest.mark.parametrize("inject", [_after_start_run, _building_the_comparison, _summarising, _before_finishing])
def test_ctrl_c_anywhere_in_a_run_leaves_it_interrupted_not_running(specnb_home, inject):
    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt) as info:
        inject(patch)
        _compare()
    listing = specnb.runs()  # this process is alive: only the stored status can say the run stopped
    assert listing.loc[0, "status"] == "interrupted"
    run_id = listing.loc[0, "id"]
    if hasattr(info.value, "add_note"):  # Python 3.11+
        assert run_id in " ".join(info.value.__notes__)
    assert specnb.get_run(run_id).status == "interrupted"
    assert specnb.get_run(_compare().run_id).status == "finished"


def test_ctrl_c_after_the_last_write_keeps_the_run_finished(specnb_home, monkeypatch):
    real = store_module.RunStore.finish_run

    def finish_run(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module.RunStore, "finish_run", finish_run)
    with pytest.raises(KeyboardInterrupt):
        _compare()
    assert specnb.runs().loc[0, "status"] == "finished"


# -- a model that finished no items ---------------------------------------------------------------------

def test_reports_and_runs_show_work_when_a_model_finished_no_items(specnb_home, tmp_path):
    def broken(texts):
        raise RuntimeError("the model fell over")

    models = [specnb.load(english, alias="english", task="langid"), specnb.load(broken, alias="broken", task="langid")]
    with pytest.raises(RuntimeError, match="fell over"):
        specnb.compare("langid", TEXTS, models, labels=GOLD, progress=False)
    run_id = specnb.runs().loc[0, "id"]
    run = specnb.get_run(run_id)
    assert all(p is None for p in run.predictions["broken"])
    report = tmp_path / "r.html"
    run.to_html(report)
    assert report.stat().st_size > 0
    shown = tmp_path / "shown.html"
    assert main(["runs", "show", run_id, "-o", str(shown)]) == 0
    assert shown.stat().st_size > 0


# -- damaged and foreign stores -------------------------------------------------------------------------

def _store_file(specnb_home):
    store_module.default_store().close()  # checkpoints the WAL into the file
    return specnb_home / "runs.sqlite"


def _refused(path, call, *words):
    with pytest.raises(StoreError) as info:
        call()
    text = str(info.value)
    assert str(path) in text and "move it aside" in text, text
    for word in words:
        assert word in text, text
    return text


def test_one_run_with_damaged_settings_hides_no_other_run(specnb_home):
    good = _compare(name="good").run_id
    bad = _compare(name="bad").run_id
    path = _store_file(specnb_home)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE runs SET meta = '{not json' WHERE id = ?", (bad,))
    conn.commit()
    conn.close()
    with pytest.warns(SpecnbWarning, match=bad):
        listing = specnb.runs()
    assert sorted(listing["id"]) == sorted([good, bad])
    with pytest.raises(StoreError, match=f"{bad}.*{path}.*delete_run"):
        specnb.get_run(bad)
    assert specnb.get_run(good).status == "finished"
    specnb.delete_run(bad)
    assert specnb.runs()["id"].tolist() == [good]


def test_an_overwritten_page_is_a_store_error_naming_the_file(specnb_home):
    run_id = _compare().run_id
    path = _store_file(specnb_home)
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'items'").fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)
    _refused(path, lambda: specnb.get_run(run_id), "damaged")
    _refused(path, _compare, "damaged")


def test_a_foreign_runs_table_is_refused_and_left_as_it_was(specnb_home):
    specnb_home.mkdir(parents=True)
    path = specnb_home / "runs.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (lap INTEGER, seconds REAL)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    _refused(path, specnb.runs, "not specnb's")
    _refused(path, _compare, "not specnb's")
    assert path.read_bytes() == before


def test_a_store_from_a_newer_specnb_is_refused_never_reset(specnb_home):
    _compare()
    path = _store_file(specnb_home)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    _refused(path, specnb.runs, "newer", "upgrade specnb")
    _refused(path, _compare, "newer")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    conn.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "directory", "header"])
def test_unreadable_store_files_stay_store_errors(specnb_home, damage):
    _compare()
    path = _store_file(specnb_home)
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(os.urandom(8192))
    elif damage == "truncated":
        path.write_bytes(data[:100])
    elif damage == "header":
        path.write_bytes(b"NOT A SQLITE FILE\0" + data[18:])
    else:
        path.unlink()
        path.mkdir()
    with pytest.raises(StoreError, match="run store"):
        specnb.runs()
    with pytest.raises(StoreError, match="run store"):
        _compare()
