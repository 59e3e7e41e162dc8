"""Durable jobs in SQLite (WAL): what the service accepted, what runs, what is done.

A job row is written (and committed) before the client hears 202, so an accepted job survives a
crash. Every state change is one conditional statement (or one IMMEDIATE transaction), so the API
process, its supervisor thread and the worker processes never act on a state another has changed
meanwhile: `claim` takes the next job atomically, `cancel` cannot race a claim, and a worker's
`progress` / `finish` only land while its job is still running (a cancelled job stays cancelled).

Claim order is (attempts, created): a job whose worker died goes behind the jobs that never failed,
so a poison video never runs ahead of the others after a restart.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from dfer.serve.params import QueuedParams


class JobStatus(str, Enum):
    """A job's state: queued -> running -> done | failed, or cancelled from queued or running; a
    running job whose worker died goes back to queued. The values are what the API and SQLite hold."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:  # the value in f-strings, logs and metric labels
        return self.value

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)
STATUSES = tuple(JobStatus)


def _sql(*statuses: JobStatus) -> str:
    """A SQL list of status literals, from the enum (never from input)."""
    return "(" + ", ".join(f"'{s.value}'" for s in statuses) + ")"


_Q, _R, _ENDED = f"'{JobStatus.QUEUED.value}'", f"'{JobStatus.RUNNING.value}'", _sql(*FINAL)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN {_sql(*JobStatus)}),
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
_COLUMNS = "id, status, progress, error, params, filename, attempts, created, updated"


@dataclass
class Job:
    id: str
    status: JobStatus
    progress: float
    error: str | None
    params: QueuedParams
    filename: str  # what the client called the upload (shown only; never used as a path)
    attempts: int
    created: float
    updated: float

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status, "progress": round(self.progress, 4),
                               "filename": self.filename, "created": self.created, "updated": self.updated,
                               "params": self.params.to_dict()}
        if self.status in (JobStatus.FAILED, JobStatus.CANCELLED) and self.error:
            out["error"] = self.error
        return out


class JobStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        c = self._conn()
        c.execute("PRAGMA journal_mode=WAL")
        c.executescript(_SCHEMA)
        self._migrate(c)

    @staticmethod
    def _migrate(c: sqlite3.Connection) -> None:
        """A database from before `cancelled` existed: the table rebuilt with the new status list."""
        sql = c.execute("SELECT sql FROM sqlite_master WHERE name = 'jobs'").fetchone()[0]
        if "'cancelled'" in sql:
            return
        c.execute("BEGIN IMMEDIATE")
        c.execute("ALTER TABLE jobs RENAME TO jobs_old")
        c.execute("DROP INDEX IF EXISTS jobs_status_created")
        for statement in _SCHEMA.split(";")[:2]:  # the table and its index (executescript would commit)
            c.execute(statement)
        c.execute(f"INSERT INTO jobs ({_COLUMNS}) SELECT {_COLUMNS} FROM jobs_old")
        c.execute("DROP TABLE jobs_old")
        c.execute("COMMIT")

    def _conn(self) -> sqlite3.Connection:
        # One connection per thread (and per process); sqlite3 connections are not shared across threads.
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
        d["params"] = QueuedParams.model_validate(json.loads(d["params"]))
        d["status"] = JobStatus(d["status"])
        return Job(**d)

    def create(self, job_id: str, params: QueuedParams, filename: str) -> Job:
        now = time.time()
        self._conn().execute(
            f"INSERT INTO jobs (id, status, params, filename, created, updated) VALUES (?, {_Q}, ?, ?, ?, ?)",
            (job_id, json.dumps(params.to_dict()), filename, now, now))
        return self.get(job_id)

    def create_if_room(self, job_id: str, params: QueuedParams, filename: str, max_queued: int) -> Job | None:
        """Like `create`, but only while fewer than `max_queued` jobs are queued, checked and written in one
        IMMEDIATE transaction (concurrent uploads cannot all slip under the limit). None: the queue is full."""
        c, now = self._conn(), time.time()
        c.execute("BEGIN IMMEDIATE")
        try:
            queued = c.execute(f"SELECT COUNT(*) FROM jobs WHERE status = {_Q}").fetchone()[0]
            if queued < max_queued:
                c.execute("INSERT INTO jobs (id, status, params, filename, created, updated) "
                          f"VALUES (?, {_Q}, ?, ?, ?, ?)", (job_id, json.dumps(params.to_dict()), filename, now, now))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return self.get(job_id) if queued < max_queued else None

    def get(self, job_id: str) -> Job | None:
        return self._job(self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def status(self, job_id: str) -> JobStatus | None:
        row = self._conn().execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else JobStatus(row[0])

    def list(self, limit: int = 100) -> list[Job]:
        rows = self._conn().execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [self._job(r) for r in rows]

    def statuses(self) -> dict[str, JobStatus]:
        """Every job's status by id (without reading their parameters)."""
        return {i: JobStatus(s) for i, s in self._conn().execute("SELECT id, status FROM jobs").fetchall()}

    def count(self, *statuses: JobStatus) -> int:
        marks = ",".join("?" * len(statuses))
        values = tuple(JobStatus(s).value for s in statuses)
        return self._conn().execute(f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", values).fetchone()[0]

    def claim(self) -> Job | None:
        """The next queued job (fewest attempts, then oldest), now running with one more attempt, or None."""
        row = self._conn().execute(
            f"UPDATE jobs SET status = {_R}, progress = 0, attempts = attempts + 1, updated = ? "
            f"WHERE id = (SELECT id FROM jobs WHERE status = {_Q} ORDER BY attempts, created LIMIT 1) RETURNING *",
            (time.time(),)).fetchone()
        return self._job(row)

    def progress(self, job_id: str, value: float) -> bool:
        """Record progress; False when the job is no longer running (cancelled): the worker stops."""
        return self._conn().execute(
            f"UPDATE jobs SET progress = ?, updated = ? WHERE id = ? AND status = {_R}",
            (min(max(value, 0.0), 1.0), time.time(), job_id)).rowcount > 0

    def finish(self, job_id: str, *, error: str | None = None) -> bool:
        """done (or failed with `error`) if the job is still running; False if it was cancelled meanwhile."""
        status, progress = (JobStatus.FAILED, 0.0) if error else (JobStatus.DONE, 1.0)
        return self._conn().execute(
            f"UPDATE jobs SET status = ?, progress = ?, error = ?, updated = ? WHERE id = ? AND status = {_R}",
            (status.value, progress, error, time.time(), job_id)).rowcount > 0

    def requeue(self, job_id: str, *, count_attempt: bool = True) -> bool:
        """A running job back to the queue; without `count_attempt` (a shutdown, not the video's fault)
        its attempt is given back."""
        back = 0 if count_attempt else 1
        return self._conn().execute(
            f"UPDATE jobs SET status = {_Q}, progress = 0, attempts = MAX(0, attempts - ?), updated = ? "
            f"WHERE id = ? AND status = {_R}", (back, time.time(), job_id)).rowcount > 0

    def cancel(self, job_id: str) -> JobStatus | None:
        """Atomically: a queued or running job becomes `cancelled`. Returns the status it had (None: no such job)."""
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")  # the read and the write as one step: no claim can slip between them
        try:
            row = c.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is not None and not JobStatus(row[0]).final:
                c.execute("UPDATE jobs SET status = ?, error = 'cancelled by a DELETE request', updated = ? "
                          "WHERE id = ?", (JobStatus.CANCELLED.value, time.time(), job_id))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return None if row is None else JobStatus(row[0])

    def recover_interrupted(self, max_attempts: int) -> tuple[list[str], list[str]]:
        """Jobs left running by a server that died: back to the queue, or failed once they have had
        `max_attempts` runs. Returns (re-queued ids, failed ids)."""
        c, now = self._conn(), time.time()
        failed = [r[0] for r in c.execute(
            "UPDATE jobs SET status = ?, progress = 0, updated = ?, error = 'the server stopped ' || attempts || "
            f"' times while running this video' WHERE status = {_R} AND attempts >= ? RETURNING id",
            (JobStatus.FAILED.value, now, max_attempts)).fetchall()]
        again = [r[0] for r in c.execute(f"UPDATE jobs SET status = {_Q}, progress = 0, updated = ? "
                                         f"WHERE status = {_R} RETURNING id", (now,)).fetchall()]
        return again, failed

    def expired(self, before: float) -> list[str]:
        """Finished jobs (done, failed, cancelled) last changed before `before` (a time.time())."""
        rows = self._conn().execute(f"SELECT id FROM jobs WHERE status IN {_ENDED} AND updated < ?",
                                    (before,)).fetchall()
        return [r[0] for r in rows]

    def delete(self, job_id: str) -> bool:
        """Remove a finished job's row (never a queued or running one: cancel those first)."""
        return self._conn().execute(f"DELETE FROM jobs WHERE id = ? AND status IN {_ENDED}",
                                    (job_id,)).rowcount > 0
