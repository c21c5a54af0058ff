"""The results store of a study: one SQLite file (``DIR/results.sqlite``) in WAL mode.

Tables:

* ``points`` — one row per finished point, keyed by the point hash: ``status`` ("done" or
  "failed"), ``train_key``, the axis values, the resolved training config and deployment
  settings (JSON), ``metrics`` (JSON), ``timings`` (JSON, s), ``versions`` (JSON), ``error``
  (traceback of a failed point), ``attempts`` and ``finished`` (Unix time, s).
* ``models`` — one row per trained model (``train_key``): status, training history, time.
* ``meta`` — the latest spec (``spec_text``) and study name.

Only the coordinating process writes, one transaction per finished point (``synchronous =
FULL``), so a process killed at any moment leaves a readable database holding every point
finished before the kill; a re-run skips the points whose status is "done" (and "failed" unless
``retry_failed``).
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

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


class Store:
    """SQLite results store of a study directory (module docstring)."""

    def __init__(self, out_dir, *, create: bool = True):
        self.dir = Path(out_dir)
        self.path = self.dir / DB_NAME
        if not create and not self.path.is_file():
            raise FileNotFoundError(f"no sweep results in {self.dir} (missing {DB_NAME}); run `xbar sweep run` first")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ writes
    def _write(self, sql: str, args: tuple) -> None:
        with self.conn:  # one transaction
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(sql, args)

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
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def attempts(self, key: str) -> int:
        row = self.conn.execute("SELECT attempts FROM points WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def statuses(self) -> dict[str, str]:
        """``{point key: status}`` of every recorded point."""
        return dict(self.conn.execute("SELECT key, status FROM points").fetchall())

    def model(self, train_key: str) -> dict | None:
        row = self.conn.execute("SELECT status, history, train_s, epochs_trained, error FROM models "
                                "WHERE train_key = ?", (train_key,)).fetchone()
        if row is None:
            return None
        return {"status": row[0], "history": json.loads(row[1]) if row[1] else None, "train_s": row[2],
                "epochs_trained": row[3], "error": row[4]}

    def models(self) -> list[dict]:
        rows = self.conn.execute("SELECT train_key, status, train_s, epochs_trained FROM models").fetchall()
        return [{"train_key": r[0], "status": r[1], "train_s": r[2], "epochs_trained": r[3]} for r in rows]

    def rows(self, keys=None, status: str | None = None) -> list[dict]:
        """Recorded points as dicts (JSON columns decoded), optionally only ``keys``/``status``."""
        cols = ("key", "train_key", "status", "axes", "config", "deploy", "metrics", "timings", "versions",
                "error", "attempts", "finished")
        out = []
        for values in self.conn.execute(f"SELECT {', '.join(cols)} FROM points ORDER BY key").fetchall():
            row = dict(zip(cols, values))
            for c in ("axes", "config", "deploy", "metrics", "timings", "versions"):
                row[c] = json.loads(row[c]) if row[c] is not None else None
            if (keys is None or row["key"] in keys) and (status is None or row["status"] == status):
                out.append(row)
        return out
