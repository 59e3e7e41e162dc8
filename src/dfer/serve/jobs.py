"""Durable jobs in SQLite (WAL): what the service accepted, what runs, what is done.

A job row is written (and committed) before the client hears 202, so an accepted job survives a
crash. `claim` moves one queued job to running in a single statement (safe across threads); on
start, `requeue_interrupted` sends jobs that were running when the server died back to the queue.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATUSES = ("queued", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress REAL NOT NULL DEFAULT 0,
    error TEXT,
    params TEXT NOT NULL,
    filename TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status_created ON jobs (status, created);
"""


@dataclass
class Job:
    id: str
    status: str
    progress: float
    error: str | None
    params: dict[str, Any]
    filename: str  # what the client called the upload (shown only; never used as a path)
    attempts: int
    created: float
    updated: float

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status, "progress": round(self.progress, 4),
                               "filename": self.filename, "created": self.created, "updated": self.updated,
                               "params": self.params}
        if self.status == "failed":
            out["error"] = self.error
        return out


class JobStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as c:
            c.execute("PRAGMA journal_mode=WAL")
            c.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        # One connection per thread; sqlite3 connections are not shared across threads.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # autocommit; explicit BEGIN below
            conn.execute("PRAGMA synchronous=FULL")  # an acknowledged job is on disk
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    @staticmethod
    def _job(row: sqlite3.Row | None) -> Job | None:
        if row is None:
            return None
        d = dict(row)
        d["params"] = json.loads(d["params"])
        return Job(**d)

    def create(self, job_id: str, params: dict[str, Any], filename: str) -> Job:
        now = time.time()
        self._conn().execute(
            "INSERT INTO jobs (id, status, params, filename, created, updated) VALUES (?, 'queued', ?, ?, ?, ?)",
            (job_id, json.dumps(params), filename, now, now))
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        return self._job(self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def list(self, limit: int = 100) -> list[Job]:
        rows = self._conn().execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [self._job(r) for r in rows]

    def count(self, *statuses: str) -> int:
        marks = ",".join("?" * len(statuses))
        return self._conn().execute(f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", statuses).fetchone()[0]

    def claim(self) -> Job | None:
        """The oldest queued job, now running (atomically), or None."""
        row = self._conn().execute(
            "UPDATE jobs SET status = 'running', progress = 0, attempts = attempts + 1, updated = ? "
            "WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY created LIMIT 1) RETURNING *",
            (time.time(),)).fetchone()
        return self._job(row)

    def progress(self, job_id: str, value: float) -> None:
        self._conn().execute("UPDATE jobs SET progress = ?, updated = ? WHERE id = ? AND status = 'running'",
                             (min(max(value, 0.0), 1.0), time.time(), job_id))

    def finish(self, job_id: str, *, error: str | None = None) -> None:
        status, progress = ("failed", 0.0) if error else ("done", 1.0)
        self._conn().execute("UPDATE jobs SET status = ?, progress = ?, error = ?, updated = ? WHERE id = ?",
                             (status, progress, error, time.time(), job_id))

    def requeue(self, job_id: str) -> None:
        self._conn().execute("UPDATE jobs SET status = 'queued', progress = 0, updated = ? WHERE id = ?",
                             (time.time(), job_id))

    def requeue_interrupted(self) -> list[str]:
        """Jobs left running by a server that died: back to the queue (their partial files are redone)."""
        rows = self._conn().execute("UPDATE jobs SET status = 'queued', progress = 0, updated = ? "
                                    "WHERE status = 'running' RETURNING id", (time.time(),)).fetchall()
        return [r[0] for r in rows]

    def delete(self, job_id: str) -> bool:
        return self._conn().execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount > 0
