"""The contract between the pool's supervisor and its workers (a process, dfer.serve.worker, or a Ray
actor, dfer.serve.ray_engine): what a worker tells the supervisor, and what the supervisor needs of
any worker. Messages are small frozen dataclasses (they cross a pipe pickled)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

from dfer.serve.disk import DataDir
from dfer.serve.jobs import Job, JobStatus, JobStore


@dataclass(frozen=True)
class Ready:
    """The worker loaded the model; what GET /v1/model shows of it."""

    description: dict[str, Any]


@dataclass(frozen=True)
class LoadFailed:
    """The worker could not load the model (the reason, one line); it ends."""

    reason: str


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended: what a worker process sends through its pipe (in Finished), what a Ray actor returns
    (with the result files when there is no shared folder), and what the supervisor records when it ends a
    job itself (deadline, memory, a worker that died too often): one record, one recording (record_outcome)."""

    status: JobStatus
    seconds: float = 0.0
    error: str | None = None
    files: dict[str, bytes] | None = None  # a Ray actor's result files, when they travel by the object store


@dataclass(frozen=True)
class Finished:
    """A job ended, already recorded in the job database and on disk by the worker."""

    job_id: str
    outcome: JobOutcome


def record_outcome(store: JobStore, disk: DataDir, job_id: str, outcome: JobOutcome, keep_uploads: bool) -> JobOutcome:
    """A job's end in the database and on disk (by its worker, or by the supervisor that ended it); returns
    the outcome as recorded: a job cancelled (or deleted) after its worker's last progress write ends
    cancelled, whatever the worker made of it."""
    status = outcome.status
    if status is JobStatus.QUEUED:  # the server is stopping: run it again on the next start, attempt given back
        store.requeue(job_id, count_attempt=False)
        return outcome
    if status is JobStatus.CANCELLED or not store.finish(job_id, error=outcome.error if status is JobStatus.FAILED else None):
        disk.remove_all(job_id)
        return replace(outcome, status=JobStatus.CANCELLED, error=None, files=None)
    if status is JobStatus.FAILED:
        disk.remove_outputs(job_id)
    if not keep_uploads:
        disk.upload(job_id).unlink(missing_ok=True)
    return replace(outcome, error=outcome.error if status is JobStatus.FAILED else None, files=None)


WorkerMessage = Ready | LoadFailed | Finished


class Worker(Protocol):
    """What the supervisor needs of a started worker (dfer.serve.pool.WorkerPool's `make_worker` makes one)."""

    @property
    def pid(self) -> int | None: ...

    def waitables(self) -> list:
        """Objects multiprocessing.connection.wait can wake on (a pipe, a process sentinel); may be empty."""
        ...

    def alive(self) -> bool: ...

    def exit_reason(self) -> str:
        """Why it is gone, for people: "killed by signal 9 (SIGKILL)", "exited with code 1", ..."""
        ...

    def rss(self) -> int:
        """Resident memory in bytes (0 when unknown)."""
        ...

    def messages(self) -> list[WorkerMessage]:
        """What arrived since the last call, in order; never blocks."""
        ...

    def send(self, job: Job | None) -> None:
        """A job to run; None asks it to stop (a running job goes back to the queue)."""
        ...

    def join(self, timeout: float) -> None: ...

    def kill(self) -> None: ...
