"""The results store of a study: one SQLite file (``DIR/results.sqlite``) in WAL mode.

Tables:

* ``points`` — one row per finished point, keyed by the point hash: ``status`` ("done" or
  "failed"), ``train_key``, the axis values, the resolved training config and deployment
  settings (JSON), ``metrics`` (JSON), ``timings`` (JSON, s), ``versions`` (JSON), ``error``
  (traceback of a failed point), ``attempts`` and ``finished`` (Unix time, s).
* ``models`` — one row per trained model (``train_key``): status, training history, training
  time (s, summed over every session that trained it).
* ``meta`` — the latest spec (``spec_text``) and study name.

Only the coordinating process writes, one transaction per finished point (``synchronous =
FULL``), so a process killed at any moment leaves a readable database holding every point
finished before the kill; a re-run skips the points whose status is "done" (and "failed" unless
``retry_failed``). Points that never finished (a worker died, the run was interrupted) have no
row: they are pending and a plain re-run runs them.

``Store(DIR, readonly=True)`` (``plan``, ``status``, ``report``) opens the file read-only
(``mode=ro``; ``immutable=1`` when the directory does not even allow SQLite's shared-memory
file) and never writes: a study on a read-only medium can be read. Every problem — a file that
is not an SQLite database, a truncated one, another schema, invalid JSON in a row, a read-only
file opened for writing — raises :class:`~training.sweeps.errors.StoreError` with one line
naming the file (and the row and column).
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

from .errors import StoreError

DB_NAME = "results.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY, train_key TEXT NOT NULL, status TEXT NOT NULL, axes TEXT NOT NULL,
    config TEXT NOT NULL, deploy TEXT NOT NULL, metrics TEXT, timings TEXT, versions TEXT,
    error TEXT, attempts INTEGER NOT NULL DEFAULT 1, finished REAL NOT NULL);
CREATE INDEX IF NOT EXISTS points_train ON points(train_key);
CREATE TABLE IF NOT EXISTS models (
    train_key TEXT PRIMARY KEY, status TEXT NOT NULL, config TEXT NOT NULL, history TEXT,
    train_s REAL, epochs_trained INTEGER, error TEXT, finished REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
#: the columns every table must have (a store of another schema is refused, not guessed at)
COLUMNS = {"points": ("key", "train_key", "status", "axes", "config", "deploy", "metrics", "timings", "versions",
                      "error", "attempts", "finished"),
           "models": ("train_key", "status", "config", "history", "train_s", "epochs_trained", "error", "finished"),
           "meta": ("key", "value")}
JSON_COLUMNS = ("axes", "config", "deploy", "metrics", "timings", "versions")


class Store:
    """SQLite results store of a study directory (module docstring).

    ``create``: create the directory and the database if missing (else a missing database raises
    ``FileNotFoundError``); ``readonly``: open for reading only (implies ``create=False``)."""

    def __init__(self, out_dir, *, create: bool = True, readonly: bool = False):
        self.dir = Path(out_dir)
        self.path = self.dir / DB_NAME
        self.readonly = readonly
        if self.dir.exists() and not self.dir.is_dir():
            raise StoreError(f"study directory {self.dir} is a file, not a directory")
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"{self.path} is not a file")
        if (readonly or not create) and not self.path.is_file():
            raise FileNotFoundError(f"no sweep results in {self.dir} (missing {DB_NAME}); run `xbar sweep run` first")
        self.conn = self._open_readonly() if readonly else self._open_writable()

    # ------------------------------------------------------------------ opening
    def _error(self, exc: Exception, doing: str = "read") -> StoreError:
        what = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "not a database" in what or "malformed" in what:
            what += " (not an SQLite database, or a truncated/corrupt one; move it away to start the study afresh)"
        elif "readonly" in what or "read-only" in what:
            what += " (status/report can read it; a run needs a writable study directory)"
        return StoreError(f"cannot {doing} {self.path}: {what}")

    def _open_writable(self) -> sqlite3.Connection:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the study directory {self.dir}: {exc.strerror or exc}") from None
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._check_schema(conn, allow_missing=True)
            conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise self._error(exc, "open for writing") from None
        except StoreError:
            conn.close()
            raise
        return conn

    def _open_readonly(self) -> sqlite3.Connection:
        uri = "file:" + quote(str(self.path.resolve()))
        last = None
        for options in ("mode=ro", "mode=ro&immutable=1"):  # immutable: no -shm file can be made
            conn = None
            try:
                conn = sqlite3.connect(f"{uri}?{options}", uri=True, timeout=30.0, isolation_level=None)
                self._check_schema(conn, allow_missing=False)
                return conn
            except sqlite3.OperationalError as exc:
                last = exc
                if conn is not None:
                    conn.close()
                if "unable to open" not in str(exc):
                    break
            except sqlite3.Error as exc:
                if conn is not None:
                    conn.close()
                raise self._error(exc) from None
            except StoreError:
                conn.close()
                raise
        raise self._error(last) from None

    def _check_schema(self, conn: sqlite3.Connection, allow_missing: bool) -> None:
        """Raise StoreError if a table lacks columns of :data:`COLUMNS` (``allow_missing``: a
        table may be absent, as in a new database)."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, cols in COLUMNS.items():
            if table not in tables:
                if allow_missing:
                    continue
                raise StoreError(f"{self.path} is not a sweep results database: it has no table {table!r} "
                                 f"(tables: {sorted(tables)})")
            have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in cols if c not in have]
            if missing:
                raise StoreError(f"{self.path} is not a sweep results database of this version: table {table!r} "
                                 f"lacks column(s) {missing}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ low level
    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _write(self, sql: str, args: tuple) -> None:
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        try:
            with self.conn:  # one transaction
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute(sql, args)
        except sqlite3.Error as exc:
            raise self._error(exc, "write") from None

    def _json(self, text, table: str, row: str, column: str):
        """``json.loads(text)`` (None stays None); bad JSON raises one line naming the row."""
        if text is None:
            return None
        try:
            return json.loads(text)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"{self.path}: {table} row {row!r}: column {column!r} holds invalid JSON "
                             f"({exc}); repair or delete that row") from None

    # ------------------------------------------------------------------ writes
    def set_meta(self, key: str, value) -> None:
        self._write("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def record_point(self, point, *, status: str, metrics: dict | None = None, timings: dict | None = None,
                     versions: dict | None = None, error: str | None = None) -> None:
        """Insert or replace the row of ``point`` (a :class:`~training.sweeps.spec.Point`)."""
        if status not in ("done", "failed"):
            raise ValueError(f"status must be 'done' or 'failed', got {status!r}")
        attempts = self.attempts(point.key) + 1
        self._write("INSERT OR REPLACE INTO points(key, train_key, status, axes, config, deploy, metrics, timings, "
                    "versions, error, attempts, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (point.key, point.train_key, status, json.dumps(point.axes), json.dumps(point.train),
                     json.dumps(point.deploy), json.dumps(metrics), json.dumps(timings), json.dumps(versions),
                     error, attempts, time.time()))

    def record_model(self, train_key: str, config: dict, *, status: str, history=None, train_s=None,
                     epochs_trained=None, error: str | None = None) -> None:
        self._write("INSERT OR REPLACE INTO models(train_key, status, config, history, train_s, epochs_trained, "
                    "error, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (train_key, status, json.dumps(config), json.dumps(history), train_s, epochs_trained, error,
                     time.time()))

    # ------------------------------------------------------------------ reads
    def meta(self, key: str, default=None):
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return self._json(rows[0][0], "meta", key, "value") if rows else default

    def attempts(self, key: str) -> int:
        rows = self._query("SELECT attempts FROM points WHERE key = ?", (key,))
        if not rows:
            return 0
        try:
            return int(rows[0][0])
        except (TypeError, ValueError):
            raise StoreError(f"{self.path}: points row {key!r}: column 'attempts' holds {rows[0][0]!r}, "
                             "not an integer") from None

    def statuses(self) -> dict[str, str]:
        """``{point key: status}`` of every recorded point."""
        return dict(self._query("SELECT key, status FROM points"))

    def model(self, train_key: str) -> dict | None:
        rows = self._query("SELECT status, history, train_s, epochs_trained, error FROM models WHERE train_key = ?",
                           (train_key,))
        if not rows:
            return None
        status, history, train_s, epochs, error = rows[0]
        return {"status": status, "history": self._json(history, "models", train_key, "history"),
                "train_s": _number(train_s), "epochs_trained": epochs, "error": error}

    def models(self) -> list[dict]:
        rows = self._query("SELECT train_key, status, train_s, epochs_trained FROM models")
        return [{"train_key": r[0], "status": r[1], "train_s": _number(r[2]), "epochs_trained": r[3]} for r in rows]

    def rows(self, keys=None, status: str | None = None) -> list[dict]:
        """Recorded points as dicts (JSON columns decoded), optionally only ``keys``/``status``."""
        cols = COLUMNS["points"]
        out = []
        for values in self._query(f"SELECT {', '.join(cols)} FROM points ORDER BY key"):
            row = dict(zip(cols, values))
            if (keys is not None and row["key"] not in keys) or (status is not None and row["status"] != status):
                continue
            for c in JSON_COLUMNS:
                row[c] = self._json(row[c], "points", row["key"], c)
            for c in ("axes", "config", "deploy"):
                if not isinstance(row[c], dict):
                    raise StoreError(f"{self.path}: points row {row['key']!r}: column {c!r} must hold a JSON object, "
                                     f"got {type(row[c]).__name__}")
            for c in ("metrics", "timings", "versions"):
                if row[c] is not None and not isinstance(row[c], dict):
                    raise StoreError(f"{self.path}: points row {row['key']!r}: column {c!r} must hold a JSON object "
                                     f"or null, got {type(row[c]).__name__}")
            out.append(row)
        return out


def _number(value) -> float | None:
    """A stored REAL as float (None and non-numbers as None)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
