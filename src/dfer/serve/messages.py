"""The contract between the pool's supervisor and its workers (a process, dfer.serve.worker, or a Ray
actor, dfer.serve.ray_engine): what a worker tells the supervisor, and what the supervisor needs of
any worker. Messages are small frozen dataclasses (they cross a pipe pickled)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from dfer.serve.jobs import Job, JobStatus


@dataclass(frozen=True)
class Ready:
    """The worker loaded the model; what GET /v1/model shows of it."""

    description: dict[str, Any]


@dataclass(frozen=True)
class LoadFailed:
    """The worker could not load the model (the reason, one line); it ends."""

    reason: str


@dataclass(frozen=True)
class Finished:
    """A job ended, already recorded in the job database and on disk by the worker."""

    job_id: str
    status: JobStatus
    seconds: float
    error: str | None


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
