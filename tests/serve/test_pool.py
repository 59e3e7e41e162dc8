"""The supervisor's rules (dfer.serve.pool) driven step by step with fake workers: no process, no model,
no clock to wait on. Real worker processes killed with SIGKILL are in test_serve_workers.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dfer.serve.jobs import JobStatus, JobStore
from dfer.serve.messages import Finished, JobOutcome, LoadFailed, Ready, WorkerMessage
from dfer.serve.metrics import ServiceMetrics
from dfer.serve.params import QueuedParams
from dfer.serve.pool import PoolLimits, WorkerPool
from dfer.serve.spec import ModelSpec, WorkerSetup


class FakeWorker:
    """A dfer.serve.messages.Worker the test controls: what it says, whether it lives, its memory."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pid = 1000 + len(name)
        self.inbox: list = []  # what the supervisor sent
        self.outbox: list[WorkerMessage] = [Ready({"model": "fake"})]
        self.living, self.reason, self.memory, self.killed = True, "", 0, False

    def waitables(self) -> list:
        return []

    def alive(self) -> bool:
        return self.living

    def exit_reason(self) -> str:
        return self.reason

    def rss(self) -> int:
        return self.memory

    def messages(self) -> list[WorkerMessage]:
        out, self.outbox = self.outbox, []
        return out

    def send(self, job) -> None:
        self.inbox.append(job)

    def join(self, timeout: float) -> None:
        pass

    def kill(self) -> None:
        self.killed, self.living = True, False

    def die(self, reason: str = "killed by signal 9 (SIGKILL)") -> None:
        self.living, self.reason = False, reason


@pytest.fixture
def pool(tmp_path: Path):
    """(pool, store, workers made so far, metric log lines) with one worker slot and fake workers."""
    store = JobStore(tmp_path / "jobs.sqlite")
    made: list[FakeWorker] = []
    lines: list[str] = []

    def make(name: str) -> FakeWorker:
        made.append(FakeWorker(name))
        return made[-1]

    setup = WorkerSetup(ModelSpec(tmp_path / "m.pt"), tmp_path / "data")
    p = WorkerPool(store, setup, PoolLimits(workers=1, max_attempts=2, cancel_grace=0.0),
                   metrics=ServiceMetrics(store.count, lines.append), log=lines.append, make_worker=make)
    for s in p.slots:
        p._spawn(s)
    return p, store, made, lines


def step(p: WorkerPool) -> None:
    """One turn of the supervisor's loop (what _supervise does after each wait)."""
    for s in p.slots:
        p._check(s)
    p._assign()


def test_a_ready_worker_gets_the_oldest_queued_job(pool):
    p, store, made, _ = pool
    store.create("a", QueuedParams(), "a.mp4")
    time.sleep(0.01)
    store.create("b", QueuedParams(), "b.mp4")
    step(p)
    assert [j.id for j in made[0].inbox] == ["a"] and store.status("a") is JobStatus.RUNNING
    assert p.description == {"model": "fake"} and p.slots[0].state == "busy"


def test_a_finished_job_frees_the_worker_for_the_next(pool):
    p, store, made, _ = pool
    for job_id in ("a", "b"):
        store.create(job_id, QueuedParams(), f"{job_id}.mp4")
    step(p)
    store.finish("a")  # the worker records its outcome, then tells the supervisor
    made[0].outbox.append(Finished("a", JobOutcome(JobStatus.DONE, 1.5)))
    step(p)
    assert [j.id for j in made[0].inbox] == ["a", "b"]


def test_a_job_whose_worker_died_goes_behind_jobs_that_never_failed(pool):
    p, store, made, lines = pool
    store.create("a", QueuedParams(), "a.mp4")
    step(p)  # a runs
    store.create("b", QueuedParams(), "b.mp4")
    made[0].die()
    step(p)  # the death is seen: a re-queued with one attempt, a new worker started
    step(p)  # the new worker is ready: it takes b first
    assert len(made) == 2 and made[0].killed
    assert [j.id for j in made[1].inbox] == ["b"] and store.get("a").status is JobStatus.QUEUED
    assert any("killed by signal 9 (SIGKILL) while running job a; replaced" in line for line in lines)


def test_a_job_fails_once_its_worker_has_died_max_attempts_times(pool):
    p, store, made, _ = pool
    store.create("a", QueuedParams(), "a.mp4")
    step(p)  # a runs on the first worker
    made[0].die()
    step(p)  # re-queued, a second worker started
    step(p)  # a runs on it
    assert made[1].inbox[0].id == "a"
    made[1].die()
    step(p)
    job = store.get("a")
    assert job.status is JobStatus.FAILED and job.attempts == 2
    assert job.error == "the worker died 2 times on this video (last: killed by signal 9 (SIGKILL))"


def test_a_deadline_fails_the_job_by_replacing_its_worker(pool):
    p, store, made, _ = pool
    store.create("a", QueuedParams(duration_s=1.0), "a.mp4")
    step(p)
    p.slots[0].deadline = time.monotonic() - 1  # as if 140 s had gone by
    step(p)
    assert store.get("a").status is JobStatus.FAILED and "ran past its deadline" in store.get("a").error
    assert made[0].killed and len(made) == 2


def test_a_job_over_the_memory_limit_fails_with_the_figures(pool):
    p, store, made, _ = pool
    store.create("a", QueuedParams(), "a.mp4")
    step(p)
    made[0].memory = p.memory_limit + 1
    step(p)
    error = store.get("a").error
    assert store.get("a").status is JobStatus.FAILED and "of memory, over its limit of" in error
    assert made[0].killed


def test_an_idle_worker_over_the_memory_limit_is_restarted_without_a_job_lost(pool):
    p, store, made, _ = pool
    step(p)
    made[0].memory = p.memory_limit + 1
    step(p)
    assert made[0].killed and len(made) == 2 and store.count(*JobStatus) == 0


def test_a_cancelled_job_whose_worker_does_not_stop_is_killed_after_the_grace(pool):
    p, store, made, lines = pool
    store.create("a", QueuedParams(), "a.mp4")
    step(p)
    assert store.cancel("a") is JobStatus.RUNNING
    p.slots[0].cancel_checked = 0.0  # the next check asks the database
    step(p)  # seen as cancelled
    step(p)  # the grace (0 s here) has passed: killed
    assert made[0].killed and len(made) == 2 and store.status("a") is JobStatus.CANCELLED
    assert any("did not stop its cancelled job a" in line for line in lines)


def test_a_worker_that_cannot_load_the_model_is_retried_later_with_the_reason(pool):
    p, store, made, lines = pool
    made[0].outbox = [LoadFailed("model file is not a dfer checkpoint")]
    step(p)
    assert p.load_error == "model file is not a dfer checkpoint" and p.slots[0].state == "failed"
    made[0].die("exited with code 0")
    step(p)
    assert len(made) == 1 and p.slots[0].not_before > time.monotonic()  # not respawned at once (backoff)


def test_shutdown_puts_the_running_job_back_with_its_attempt_given_back(pool):
    p, store, made, _ = pool
    store.create("a", QueuedParams(), "a.mp4")
    step(p)
    p._shutdown(timeout=0.1)
    job = store.get("a")
    assert made[0].inbox[-1] is None and made[0].killed  # asked to stop, then made sure
    assert job.status is JobStatus.QUEUED and job.attempts == 0
