"""The run store: every comparison and training run, in one SQLite file (``$SPECNB_HOME/runs.sqlite``, WAL).

A run is written as it goes: its inputs and settings first, then each model's predictions (a comparison) or
its training log (a training run, ``meta["kind"] == "train"``) chunk by chunk, each chunk in its own
transaction. A run whose process dies keeps every finished chunk; `RunStore.runs` reports it as
``interrupted`` (its writer is gone) rather than ``running``. ``answers`` caches a model's answers by
(model-and-settings key, text digest), so that nobody pays twice for the same answer (a teacher's labels).

Tables (schema version 2; a version-1 file gets ``train_log`` and ``answers`` when opened, its runs intact):
runs         id, created, finished, status, task, name, n_items, inputs_digest, pid, host, meta (JSON)
items        run_id, idx, input (JSON), label (JSON)
run_models   run_id, position, model, info (JSON), stats (JSON)
predictions  run_id, model, idx, prediction (JSON), seconds
train_log    run_id, seq, event (step / eval / event), data (JSON)
answers      key, digest, answer (JSON), created
"""

from __future__ import annotations

import json
import math
import os
import secrets
import socket
import sqlite3
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError, RunNotFoundError, SpecnbWarning, StoreError

__all__ = ["RunStore", "default_store", "SCHEMA_VERSION", "LOG_EVENTS"]

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, created REAL NOT NULL, finished REAL, status TEXT NOT NULL,
    task TEXT NOT NULL, name TEXT, n_items INTEGER NOT NULL, inputs_digest TEXT NOT NULL, pid INTEGER, host TEXT,
    meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, idx INTEGER NOT NULL,
    input TEXT NOT NULL, label TEXT, PRIMARY KEY (run_id, idx));
CREATE TABLE IF NOT EXISTS run_models (run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, model TEXT NOT NULL, info TEXT NOT NULL, stats TEXT, PRIMARY KEY (run_id, model));
CREATE TABLE IF NOT EXISTS predictions (run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    model TEXT NOT NULL, idx INTEGER NOT NULL, prediction TEXT NOT NULL, seconds REAL NOT NULL,
    PRIMARY KEY (run_id, model, idx));
CREATE TABLE IF NOT EXISTS train_log (run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, event TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (run_id, seq));
CREATE TABLE IF NOT EXISTS answers (key TEXT NOT NULL, digest TEXT NOT NULL, answer TEXT NOT NULL,
    created REAL NOT NULL, PRIMARY KEY (key, digest));
"""

#: The columns of each table as `_SCHEMA` makes them: a store whose tables differ is not specnb's.
_COLUMNS = {
    "runs": ["id", "created", "finished", "status", "task", "name", "n_items", "inputs_digest", "pid", "host", "meta"],
    "items": ["run_id", "idx", "input", "label"],
    "run_models": ["run_id", "position", "model", "info", "stats"],
    "predictions": ["run_id", "model", "idx", "prediction", "seconds"],
    "train_log": ["run_id", "seq", "event", "data"],
    "answers": ["key", "digest", "answer", "created"],
}
#: Events of a training run's log (`RunStore.add_train_log`).
LOG_EVENTS = ("step", "eval", "event")
_SQL_VARIABLES = 500  # digests per ``IN (...)`` query, well under SQLite's limit on bound variables
#: Words of SQLite errors that mean the file is damaged or foreign (not a passing condition such as a lock).
_DAMAGED = ("malformed", "not a database", "no such table", "no such column", "has no column", "corrupt")


def dumps(value) -> str:
    """JSON that keeps NaN and infinities readable by `loads` (they appear in inputs and timings)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


def loads(text):
    return None if text is None else json.loads(text)


def encode_input(value):
    """A raw input as JSON-able data: strings and None as they are, other values tagged with
    their type and repr (the run shows what was given, and reloading cannot turn them into text)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return {"type": "float", "repr": "nan"}
    return {"type": type(value).__name__, "repr": repr(value)[:200]}


def _alive(pid: int | None, host: str | None) -> bool:
    if pid is None or host != socket.gethostname():
        return True  # cannot tell from here: trust the status
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """One SQLite run store. Connections are per thread; every write is one short transaction."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._local = threading.local()

    def _aside(self) -> str:
        return (f"move it aside (e.g. rename it to {self.path.name}.damaged) and specnb starts a new, empty store "
                "there, or set specnb.config.home (or $SPECNB_HOME) to another folder")

    def _error(self, exc: sqlite3.Error, doing: str) -> StoreError:
        """A StoreError naming the file and what to do about ``exc``."""
        text = str(exc).lower()
        if any(word in text for word in _DAMAGED):
            advice = f"the file is damaged or is not a specnb run store; {self._aside()}"
        elif "locked" in text or "busy" in text:
            advice = "another process holds the store; try again when it is done"
        else:
            advice = f"check the folder is writable and has space; if the file is damaged, {self._aside()}"
        return StoreError(f"{doing} the run store {self.path} failed: {exc}; {advice}")

    @contextmanager
    def _guard(self, doing: str):
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc, doing) from exc

    def _check_version(self, version: int) -> None:
        """Refuse a store that a newer specnb wrote, before writing anything to it: never reset it."""
        if version > SCHEMA_VERSION:
            raise StoreError(f"the run store {self.path} has schema version {version}, newer than this specnb reads "
                             f"({SCHEMA_VERSION}); upgrade specnb, or {self._aside()} (nothing in it was changed)")

    def _check_tables(self, conn: sqlite3.Connection) -> None:
        """Refuse a store whose tables are not specnb's (another program's ``runs`` table, say), before changing it."""
        for table, columns in _COLUMNS.items():
            found = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            if found and found != columns:  # a missing table is made
                raise StoreError(f"the run store {self.path} holds a table {table!r} that is not specnb's (columns "
                                 f"{', '.join(found)}); it is another program's database or damaged: {self._aside()}")

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(f"cannot open the run store {self.path}: {exc}; set specnb.config.home "
                                 "(or $SPECNB_HOME) to a writable folder") from exc
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                self._check_version(version)  # both before anything is written to the file
                self._check_tables(conn)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.executescript(_SCHEMA)
                if version != SCHEMA_VERSION:
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            except sqlite3.Error as exc:
                conn.close()
                raise StoreError(f"cannot open the run store {self.path}: {exc}; if the folder is writable, the file "
                                 f"is damaged or not a specnb run store: {self._aside()}") from exc
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    def _reader(self) -> sqlite3.Connection:
        """The connection, out of any transaction an interrupt cut off (its locks would block every writer)."""
        conn = self._connect()
        if conn.in_transaction:
            conn.rollback()
        return conn

    @contextmanager
    def _transaction(self):
        """One write transaction. It begins inside the ``try``, so an interrupt (Ctrl-C) landing anywhere, even
        just after ``BEGIN``, rolls it back; one left open anyway is rolled back before the next begins."""
        conn = self._connect()
        with self._guard("writing to"):
            if conn.in_transaction:
                conn.rollback()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- writing -------------------------------------------------------------------------------
    def new_run_id(self) -> str:
        return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)  # UTC, as `created`

    def start_run(self, run_id: str, *, task: str, name: str | None, inputs: list, labels: list | None,
                  digest: str, meta: dict, created: float | None = None) -> None:
        """Record a run and its items before any model runs."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO runs (id, created, finished, status, task, name, n_items, inputs_digest, pid, host, meta)"
                " VALUES (?, ?, NULL, 'running', ?, ?, ?, ?, ?, ?, ?)",
                (run_id, time.time() if created is None else created, task, name, len(inputs), digest, os.getpid(), socket.gethostname(), dumps(meta)),
            )
            conn.executemany(
                "INSERT INTO items (run_id, idx, input, label) VALUES (?, ?, ?, ?)",
                [(run_id, i, dumps(encode_input(x)), None if labels is None else dumps(labels[i]))
                 for i, x in enumerate(inputs)],
            )

    def add_model(self, run_id: str, position: int, model: str, info: dict) -> None:
        with self._transaction() as conn:
            conn.execute("INSERT INTO run_models (run_id, position, model, info, stats) VALUES (?, ?, ?, ?, NULL)",
                         (run_id, position, model, dumps(info)))

    def add_predictions(self, run_id: str, model: str, rows, stats: dict) -> None:
        """Store one chunk of predictions, ``rows`` of (idx, prediction dict, seconds), and the
        model's running totals, in one transaction."""
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO predictions (run_id, model, idx, prediction, seconds) VALUES (?, ?, ?, ?, ?)",
                [(run_id, model, idx, dumps(pred), float(seconds)) for idx, pred, seconds in rows],
            )
            conn.execute("UPDATE run_models SET stats = ? WHERE run_id = ? AND model = ?", (dumps(stats), run_id, model))

    def add_train_log(self, run_id: str, rows) -> None:
        """Append ``rows`` of (event, dict) to a training run's log, in one transaction (event: `LOG_EVENTS`)."""
        rows = list(rows)
        bad = sorted({str(event) for event, _ in rows if event not in LOG_EVENTS})
        if bad:
            raise InputError(f"training log events are {', '.join(LOG_EVENTS)}; got {', '.join(bad)}")
        with self._transaction() as conn:
            last = conn.execute("SELECT max(seq) FROM train_log WHERE run_id = ?", (run_id,)).fetchone()[0]
            start = 0 if last is None else last + 1
            conn.executemany("INSERT INTO train_log (run_id, seq, event, data) VALUES (?, ?, ?, ?)",
                             [(run_id, start + j, event, dumps(data)) for j, (event, data) in enumerate(rows)])

    def add_answers(self, key: str, rows) -> None:
        """Cache ``rows`` of (text digest, answer: JSON-able) under ``key`` (a model and its settings), in one
        transaction; an answer already cached for the same (key, digest) is replaced."""
        now = time.time()
        with self._transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO answers (key, digest, answer, created) VALUES (?, ?, ?, ?)",
                             [(key, digest, dumps(answer), now) for digest, answer in rows])

    def finish_run(self, run_id: str, status: str = "finished", summary: dict | None = None) -> None:
        with self._transaction() as conn:
            meta = self._meta(run_id, conn.execute("SELECT meta FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
            if summary is not None:
                meta["summary"] = summary
            conn.execute("UPDATE runs SET status = ?, finished = ?, meta = ? WHERE id = ?",
                         (status, time.time(), dumps(meta), run_id))

    def stop_run(self, run_id: str, status: str) -> bool:
        """Mark a run that is still ``running`` ``interrupted`` or ``failed``; a finished run stays finished.
        Whether a run was marked."""
        with self._transaction() as conn:
            return conn.execute("UPDATE runs SET status = ?, finished = ? WHERE id = ? AND status = 'running'",
                                (status, time.time(), run_id)).rowcount > 0

    def delete(self, run_id: str) -> None:
        with self._transaction() as conn:
            if conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount == 0:
                raise self._not_found(run_id, conn)

    # -- reading -------------------------------------------------------------------------------
    def _status(self, status: str, pid, host) -> str:
        return "interrupted" if status == "running" and not _alive(pid, host) else status

    def runs(self):
        """Every run, comparisons and training runs, newest first, as a DataFrame: id, created, status, kind
        (``compare`` / ``train``), task, name, items, models, done (share of predictions stored; a training
        run: its last logged step over its planned steps), seconds."""
        import pandas as pd

        with self._guard("reading"):
            rows = self._reader().execute(
                "SELECT r.id, r.created, r.finished, r.status, r.task, r.name, r.n_items, r.pid, r.host, r.meta,"
                " (SELECT group_concat(model, ',') FROM (SELECT model FROM run_models m WHERE m.run_id = r.id"
                "  ORDER BY position)),"
                " (SELECT count(*) FROM predictions p WHERE p.run_id = r.id),"
                " (SELECT data FROM train_log t WHERE t.run_id = r.id AND t.event = 'step' ORDER BY seq DESC LIMIT 1)"
                " FROM runs r ORDER BY r.created DESC, r.id DESC"
            ).fetchall()
        records = []
        for rid, created, finished, status, task, name, n, pid, host, meta, models, done, step in rows:
            models = models.split(",") if models else []
            try:
                meta = self._meta(rid, meta)
            except StoreError as exc:  # one damaged run must not hide the others
                warnings.warn(f"{exc}; it is listed without its settings", SpecnbWarning, stacklevel=3)
                meta = {}
            kind = "train" if meta.get("kind") == "train" else "compare"
            if kind == "train":
                models, done = [str(meta.get("alias") or "")], self._trained_share(status, meta, step)
            else:
                done = done / (n * len(meta.get("models", models)) or 1) if n else 1.0
            records.append({
                "id": rid,
                "created": pd.Timestamp(created, unit="s").floor("s"),  # to the second, as people read it
                "status": self._status(status, pid, host),
                "kind": kind,
                "task": task,
                "name": name or "",  # not None (NaN beside runs that have a name)
                "items": n,
                "models": models,
                "done": done,
                "seconds": None if finished is None else round(finished - created, 3),
            })
        columns = ["id", "created", "status", "kind", "task", "name", "items", "models", "done", "seconds"]
        return pd.DataFrame.from_records(records, columns=columns)

    @staticmethod
    def _trained_share(status: str, meta: dict, step) -> float:
        """A training run's last logged step over its planned steps (1.0 once finished; 0.0 when unknown)."""
        total = meta.get("total_steps")
        try:
            last = float((loads(step) or {}).get("step") or 0) if step is not None else 0.0
            return 1.0 if status == "finished" else min(1.0, last / float(total)) if total else 0.0
        except (ValueError, TypeError, AttributeError):  # a damaged log row
            return 0.0

    def cached_answers(self, key: str, digests) -> dict:
        """The answers cached under ``key`` for these text digests, as {digest: answer} (a row that does not
        decode counts as not cached, so it is asked again and replaced)."""
        digests = list(dict.fromkeys(digests))
        found = {}
        with self._guard("reading"):
            conn = self._reader()
            for start in range(0, len(digests), _SQL_VARIABLES):
                part = digests[start:start + _SQL_VARIABLES]
                marks = ",".join("?" * len(part))
                for digest, answer in conn.execute(
                        f"SELECT digest, answer FROM answers WHERE key = ? AND digest IN ({marks})", (key, *part)):
                    try:
                        found[digest] = loads(answer)
                    except ValueError:
                        continue
        return found

    def _not_found(self, run_id: str, conn: sqlite3.Connection) -> RunNotFoundError:
        recent = [r[0] for r in conn.execute("SELECT id FROM runs ORDER BY created DESC LIMIT 5")]
        hint = f"recent runs: {', '.join(recent)}" if recent else "the store holds no runs yet"
        return RunNotFoundError(f"no run {run_id!r} in {self.path}; {hint} (specnb.runs() lists them)")

    def _meta(self, run_id: str, text) -> dict:
        try:
            meta = loads(text)
        except ValueError as exc:
            meta = exc
        if not isinstance(meta, dict):
            raise StoreError(f"run {run_id!r} in the run store {self.path} has damaged settings ({meta!s:.80}); "
                             f"specnb.delete_run({run_id!r}) removes it, the other runs are unharmed")
        return meta

    def read(self, run_id: str) -> dict:
        """Everything stored for one run, as plain data."""
        with self._guard("reading"):
            try:
                return self._read(run_id, self._reader())
            except ValueError as exc:  # JSON that does not decode: the row was damaged
                raise StoreError(f"run {run_id!r} in the run store {self.path} holds damaged data ({exc}); "
                                 f"specnb.delete_run({run_id!r}) removes it, the other runs are unharmed") from exc

    def _read(self, run_id: str, conn: sqlite3.Connection) -> dict:
        row = conn.execute("SELECT created, finished, status, task, name, n_items, inputs_digest, pid, host, meta"
                           " FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise self._not_found(run_id, conn)
        created, finished, status, task, name, n, digest, pid, host, meta = row
        meta = self._meta(run_id, meta)
        items = conn.execute("SELECT input, label FROM items WHERE run_id = ? ORDER BY idx", (run_id,)).fetchall()
        models = {}
        for model, info, stats in conn.execute(
            "SELECT model, info, stats FROM run_models WHERE run_id = ? ORDER BY position", (run_id,)
        ):
            models[model] = {"info": loads(info), "stats": loads(stats) or {}, "predictions": {}}
        for model, idx, prediction, seconds in conn.execute(
            "SELECT model, idx, prediction, seconds FROM predictions WHERE run_id = ?", (run_id,)
        ):
            models[model]["predictions"][idx] = (loads(prediction), seconds)
        log = [(event, loads(data)) for event, data in conn.execute(
            "SELECT event, data FROM train_log WHERE run_id = ? ORDER BY seq", (run_id,))]
        return {"id": run_id, "created": created, "finished": finished, "status": self._status(status, pid, host),
                "task": task, "name": name, "n_items": n, "inputs_digest": digest, "meta": meta,
                "inputs": [loads(x) for x, _ in items], "labels": [loads(y) for _, y in items], "models": models,
                "log": log}


_stores: dict[Path, RunStore] = {}


def default_store() -> RunStore:
    """The store under ``specnb.config.home`` (or ``$SPECNB_HOME``), read each time."""
    from .settings import config

    path = config.cache_dir / "runs.sqlite"
    if path not in _stores:
        _stores[path] = RunStore(path)
    return _stores[path]
