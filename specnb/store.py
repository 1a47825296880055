"""The run store: every comparison, in one SQLite file (``$SPECNB_HOME/runs.sqlite``, WAL mode).

A run is written as it goes: its inputs and settings first, then each model's predictions chunk
by chunk, each chunk in its own transaction. A run whose process dies keeps every finished chunk;
`RunStore.runs` reports it as ``interrupted`` (its writer is gone) rather than ``running``.

Tables
------
runs         id, created, finished, status, task, name, n_items, inputs_digest, pid, host, meta (JSON)
items        run_id, idx, input (JSON), label (JSON)
run_models   run_id, position, model, info (JSON), stats (JSON)
predictions  run_id, model, idx, prediction (JSON), seconds
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
from contextlib import contextmanager
from pathlib import Path

from .errors import RunNotFoundError, StoreError

__all__ = ["RunStore", "default_store", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    task TEXT NOT NULL,
    name TEXT,
    n_items INTEGER NOT NULL,
    inputs_digest TEXT NOT NULL,
    pid INTEGER,
    host TEXT,
    meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    input TEXT NOT NULL,
    label TEXT,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS run_models (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    model TEXT NOT NULL,
    info TEXT NOT NULL,
    stats TEXT,
    PRIMARY KEY (run_id, model)
);
CREATE TABLE IF NOT EXISTS predictions (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    idx INTEGER NOT NULL,
    prediction TEXT NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (run_id, model, idx)
);
"""


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

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(f"cannot open the run store {self.path}: {exc}; set specnb.config.home "
                                 "(or $SPECNB_HOME) to a writable folder") from exc
            self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self):
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

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

    def finish_run(self, run_id: str, status: str = "finished", summary: dict | None = None) -> None:
        with self._transaction() as conn:
            meta = loads(conn.execute("SELECT meta FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
            if summary is not None:
                meta["summary"] = summary
            conn.execute("UPDATE runs SET status = ?, finished = ?, meta = ? WHERE id = ?",
                         (status, time.time(), dumps(meta), run_id))

    def delete(self, run_id: str) -> None:
        with self._transaction() as conn:
            if conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount == 0:
                raise self._not_found(run_id)

    # -- reading -------------------------------------------------------------------------------
    def _status(self, status: str, pid, host) -> str:
        return "interrupted" if status == "running" and not _alive(pid, host) else status

    def runs(self):
        """Every run, newest first, as a DataFrame."""
        import pandas as pd

        conn = self._connect()
        rows = conn.execute(
            "SELECT r.id, r.created, r.finished, r.status, r.task, r.name, r.n_items, r.pid, r.host, r.meta,"
            " (SELECT group_concat(model, ',') FROM (SELECT model FROM run_models m WHERE m.run_id = r.id"
            "  ORDER BY position)),"
            " (SELECT count(*) FROM predictions p WHERE p.run_id = r.id)"
            " FROM runs r ORDER BY r.created DESC, r.id DESC"
        ).fetchall()
        records = []
        for rid, created, finished, status, task, name, n, pid, host, meta, models, done in rows:
            models = models.split(",") if models else []
            meta = loads(meta)
            records.append({
                "id": rid,
                "created": pd.Timestamp(created, unit="s").floor("s"),  # to the second, as people read it
                "status": self._status(status, pid, host),
                "task": task,
                "name": name or "",  # not None (NaN beside runs that have a name)
                "items": n,
                "models": models,
                "done": done / (n * len(meta.get("models", models)) or 1) if n else 1.0,
                "seconds": None if finished is None else round(finished - created, 3),
            })
        columns = ["id", "created", "status", "task", "name", "items", "models", "done", "seconds"]
        return pd.DataFrame.from_records(records, columns=columns)

    def _not_found(self, run_id: str) -> RunNotFoundError:
        recent = [r[0] for r in self._connect().execute("SELECT id FROM runs ORDER BY created DESC LIMIT 5")]
        hint = f"recent runs: {', '.join(recent)}" if recent else "the store holds no runs yet"
        return RunNotFoundError(f"no run {run_id!r} in {self.path}; {hint} (specnb.runs() lists them)")

    def read(self, run_id: str) -> dict:
        """Everything stored for one run, as plain data."""
        conn = self._connect()
        row = conn.execute("SELECT created, finished, status, task, name, n_items, inputs_digest, pid, host, meta"
                           " FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise self._not_found(run_id)
        created, finished, status, task, name, n, digest, pid, host, meta = row
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
        return {
            "id": run_id,
            "created": created,
            "finished": finished,
            "status": self._status(status, pid, host),
            "task": task,
            "name": name,
            "n_items": n,
            "inputs_digest": digest,
            "meta": loads(meta),
            "inputs": [loads(x) for x, _ in items],
            "labels": [loads(y) for _, y in items],
            "models": models,
        }


_stores: dict[Path, RunStore] = {}


def default_store() -> RunStore:
    """The store under ``specnb.config.home`` (or ``$SPECNB_HOME``), read each time."""
    from .settings import config

    path = config.cache_dir / "runs.sqlite"
    if path not in _stores:
        _stores[path] = RunStore(path)
    return _stores[path]
