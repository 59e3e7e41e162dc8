"""The worker pool of `dfer serve`: worker processes and the supervisor thread that feeds and watches them.

- `workers` processes (spawn start: no state inherited from the API process) each load the model
  once (dfer.serve.worker). The supervisor claims a queued job for an idle worker and sends it.
- A worker that dies (a signal, an exit, the OS out-of-memory killer) is replaced within a second.
  Its job is queued again, behind the jobs that never failed, until it has had `max_attempts` runs;
  then it ends `failed` with a reason a person can read ("the worker died 2 times on this video
  (last: killed by signal 9 (SIGKILL))").
- Each job has a deadline (`job_timeout`, default 120 s + 20 s per second of video, 3x that with
  explain=true) and each worker a memory limit (`worker_memory`, default 80% of RAM shared by the
  workers), checked by the supervisor with psutil several times a second: either ends the job
  `failed` with its reason, and the worker is killed and replaced.
- A job cancelled by a DELETE stops at the worker's next progress write (within a second; every pass
  over the video writes progress, explanations too); a worker that does not stop within
  `cancel_grace` seconds (stuck in native code) is killed. A job whose row a second DELETE removed
  counts as cancelled, whatever the sequence of DELETEs.
- Every process the pool starts is started by the supervisor thread and dies with it (Linux
  PR_SET_PDEATHSIG), so a killed server leaves no worker running a job that the next start reruns.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

import psutil

from dfer.errors import ConfigError
from dfer.formatting import human_bytes
from dfer.serve.disk import DataDir
from dfer.serve.jobs import Job, JobStatus, JobStore
from dfer.serve.messages import Finished, JobOutcome, LoadFailed, Ready, Worker, WorkerMessage, record_outcome
from dfer.serve.params import QueuedParams
from dfer.serve.spec import WorkerSetup


class WorkerState(str, Enum):
    """A worker slot's state, as /healthz and /metrics show it."""

    STARTING = "starting"  # its process is starting or loading the model
    IDLE = "idle"
    BUSY = "busy"  # running a job
    FAILED = "failed"  # could not load the model

    def __str__(self) -> str:
        return self.value

TIMEOUT_BASE, TIMEOUT_PER_VIDEO_SECOND, EXPLAIN_FACTOR = 120.0, 20.0, 3.0
RESPAWN_BACKOFF = 5.0  # seconds before a worker that could not load the model is tried again


@dataclass
class PoolLimits:
    workers: int = 1
    max_attempts: int = 2  # runs of a job whose worker died, before it fails
    job_timeout: float = 0.0  # seconds; 0: from the video's duration (see job_deadline)
    worker_memory: int = 0  # bytes of RSS per worker; 0: 80% of RAM / workers
    cancel_grace: float = 5.0  # seconds a cancelled job's worker has to stop before it is killed

    @classmethod
    def from_config(cls, config) -> PoolLimits:
        """The pool's limits from a ServeConfig, field by field name (a field only the pool has keeps its default)."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls) if hasattr(config, f.name)})

    def memory_limit(self) -> int:
        return self.worker_memory or int(psutil.virtual_memory().total * 0.8 / max(1, self.workers))


def job_deadline(params: QueuedParams, job_timeout: float) -> float:
    """Seconds a job may run: `job_timeout`, or 120 s + 20 s per second of video (x3 with explain)."""
    if job_timeout > 0:
        return job_timeout
    seconds = TIMEOUT_BASE + TIMEOUT_PER_VIDEO_SECOND * float(params.duration_s or 0.0)
    return seconds * (EXPLAIN_FACTOR if params.explain else 1.0)


def exit_reason(code: int | None) -> str:
    if code is None:
        return "stopped"
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class ProcessWorker:
    """A worker process and the pipe to it (a dfer.serve.messages.Worker)."""

    def __init__(self, ctx, setup: WorkerSetup, stop_event, name: str) -> None:
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_entry, args=(setup, child, stop_event), name=f"dfer-{name}", daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def waitables(self) -> list:
        return [self.conn, self.proc.sentinel]

    def alive(self) -> bool:
        return self.proc.is_alive()

    def exit_reason(self) -> str:
        return exit_reason(self.proc.exitcode)

    def rss(self) -> int:
        return _rss(self.proc.pid)

    def messages(self) -> list[WorkerMessage]:
        out = []
        try:
            while self.conn.poll():
                out.append(self.conn.recv())
        except (EOFError, OSError):
            pass
        return out

    def send(self, job: Job | None) -> None:
        try:
            self.conn.send(job)
        except OSError:
            pass  # it died meanwhile: the next check replaces it (and re-queues the job)

    def join(self, timeout: float) -> None:
        self.proc.join(timeout)

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(10)
        self.conn.close()


class _Slot:
    """One worker process and what it holds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.handle: Worker | None = None  # a ProcessWorker, or a Ray actor's handle (dfer.serve.ray_engine)
        self.state = WorkerState.STARTING
        self.job: Job | None = None
        self.started = 0.0  # when the job was sent (monotonic)
        self.deadline = 0.0
        self.cancelled_at: float | None = None
        self.cancel_checked = 0.0  # when the database was last asked whether the job was cancelled
        self.rss = 0
        self.not_before = 0.0  # respawn after this (monotonic)


class WorkerPool:
    def __init__(self, store: JobStore, setup: WorkerSetup, limits: PoolLimits, *, metrics,
                 log: Callable[[str], None] = print, on_tick: Callable[[], None] | None = None,
                 tick_every: float = 600.0, make_worker: Callable[[str], Worker] | None = None) -> None:
        self.store = store
        self.setup = setup
        self.limits = limits
        self.memory_limit = limits.memory_limit()
        self.disk = DataDir(setup.data_dir)
        self.metrics = metrics
        self.log = log
        self.on_tick, self.tick_every = on_tick, tick_every
        self.description: dict[str, Any] | None = None  # the first ready worker's model description
        self.slots = [_Slot(f"worker-{k}") for k in range(max(1, limits.workers))]
        self.load_error: str | None = None
        self._ctx = mp.get_context("spawn")
        self._stop_event = self._ctx.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # name -> a started worker (ProcessWorker here; dfer.serve.ray_engine makes Ray actors)
        self.make_worker = make_worker or (lambda name: ProcessWorker(self._ctx, setup, self._stop_event, name))

    # lifecycle ----------------------------------------------------------------------------
    def start(self, wait: float = 300.0) -> None:
        """Start the workers (from the supervisor thread) and wait until one has loaded the model;
        ConfigError when none can."""
        self._thread = threading.Thread(target=self._supervise, name="dfer-supervisor", daemon=True)
        self._thread.start()
        end = time.monotonic() + wait
        while self.description is None and time.monotonic() < end:
            if self.load_error is not None:
                self.stop()
                raise ConfigError(f"the workers could not load the model: {self.load_error}")
            time.sleep(0.05)
        if self.description is None:
            self.stop()
            raise ConfigError(f"no worker loaded the model within {wait:g} s")

    def stop(self, timeout: float = 30.0) -> None:
        """Running jobs go back to the queue (they are redone on the next start); workers exit."""
        self._stopping.set()
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout + 10)
        if self._thread is None or not self._thread.is_alive():
            # Its last reference dropped, the event's semaphores are released now: uvicorn ends the process
            # by its signal, after which the resource tracker would report them leaked on the user's terminal.
            self._stop_event = None

    def states(self) -> list[dict[str, Any]]:
        """Each worker: name, pid, alive, state, the job it runs, its memory."""
        out = []
        for s in self.slots:
            w = s.handle
            out.append({"name": s.name, "pid": w.pid if w else None, "alive": bool(w and w.alive()), "state": s.state.value,
                        "job": s.job.id if s.job else None, "rss_mb": round(s.rss / 2**20, 1)})
        return out

    # supervisor ---------------------------------------------------------------------------
    def _supervise(self) -> None:
        for s in self.slots:
            self._spawn(s)
        last_tick = time.monotonic()
        while not self._stopping.is_set():
            waitables = [x for s in self.slots if s.handle for x in s.handle.waitables()]
            if waitables:
                mp.connection.wait(waitables, timeout=0.1)  # wakes on a message or a death
            else:
                time.sleep(0.1)
            try:
                for s in self.slots:
                    self._check(s)
                self._assign()
                if self.on_tick is not None and time.monotonic() - last_tick >= self.tick_every:
                    last_tick = time.monotonic()
                    self.on_tick()
            except Exception as exc:  # noqa: BLE001 - the supervisor must outlive a locked database or full disk
                self.log(f"supervisor: {exc.__class__.__name__}: {exc}")
                time.sleep(0.5)
        self._shutdown()

    def _spawn(self, s: _Slot) -> None:
        s.handle = self.make_worker(s.name)
        s.state, s.job, s.cancelled_at, s.rss = WorkerState.STARTING, None, None, 0

    def _drain(self, s: _Slot) -> None:
        for msg in s.handle.messages() if s.handle else ():
            match msg:
                case Ready(description):
                    s.state = WorkerState.IDLE
                    if self.description is None:
                        self.description = description
                case LoadFailed(reason):
                    s.state, self.load_error = WorkerState.FAILED, reason
                    self.log(f"{s.name} could not load the model: {reason}")
                case Finished(job_id, outcome):
                    self.metrics.job(job_id, outcome.status, outcome.seconds, outcome.error)
                    s.job, s.state = None, WorkerState.IDLE

    def _check(self, s: _Slot) -> None:
        now = time.monotonic()
        if s.handle is None:
            if now >= s.not_before:
                self._spawn(s)
            return
        self._drain(s)
        if not s.handle.alive():
            self._replace(s, s.handle.exit_reason())
            return
        s.rss = s.handle.rss()
        if s.job is None:
            if s.rss > self.memory_limit:  # grew while idle: start it afresh
                self.log(f"{s.name} holds {human_bytes(s.rss)}, over {human_bytes(self.memory_limit)}; restarted")
                self._kill(s)
                self._spawn(s)
            return
        if now > s.deadline:
            self._end_job(s, f"ran past its deadline of {s.deadline - s.started:.0f} s (--job-timeout)")
        elif s.rss > self.memory_limit:
            self._end_job(s, f"the worker used {human_bytes(s.rss)} of memory, over its limit of "
                             f"{human_bytes(self.memory_limit)} (--worker-memory)")
        elif s.cancelled_at is None and now - s.cancel_checked >= 1.0:
            s.cancel_checked = now
            if self.store.status(s.job.id) in (JobStatus.CANCELLED, None):  # None: a second DELETE removed the row
                s.cancelled_at = now
        elif s.cancelled_at is not None and now - s.cancelled_at > self.limits.cancel_grace:
            self.log(f"{s.name} did not stop its cancelled job {s.job.id} within {self.limits.cancel_grace:g} s; killed")
            job = s.job
            self._kill(s)
            self.disk.remove_all(job.id)
            self.metrics.job(job.id, JobStatus.CANCELLED)
            self._restarted(s)

    def _assign(self) -> None:
        for s in self.slots:
            if s.state != WorkerState.IDLE or s.job is not None or self._stopping.is_set():
                continue
            job = self.store.claim()
            if job is None:
                return
            now = time.monotonic()
            s.job, s.state, s.started, s.cancelled_at, s.cancel_checked = job, WorkerState.BUSY, now, None, now
            s.deadline = now + job_deadline(job.params, self.limits.job_timeout)
            self.metrics.job(job.id, JobStatus.RUNNING)
            s.handle.send(job)

    # endings ------------------------------------------------------------------------------
    def _kill(self, s: _Slot) -> None:
        if s.handle is not None:
            s.handle.kill()
        s.handle = None

    def _fail(self, job: Job, reason: str, seconds: float | None = None) -> None:
        """The supervisor ends a job itself (deadline, memory, a worker that died too often): recorded as a
        worker records its own outcome (a job cancelled meanwhile ends cancelled, its files gone)."""
        outcome = record_outcome(self.store, self.disk, job.id, JobOutcome(JobStatus.FAILED, seconds or 0.0, reason),
                                 self.setup.keep_uploads)
        if outcome.status is JobStatus.FAILED:
            self.metrics.job(job.id, JobStatus.FAILED, seconds, reason)

    def _end_job(self, s: _Slot, reason: str) -> None:
        """Deadline or memory: the job fails with `reason`; the worker is killed and replaced."""
        job, seconds = s.job, time.monotonic() - s.started
        self._kill(s)
        self._fail(job, reason, seconds)
        self.log(f"{s.name}: job {job.id} {reason}; worker replaced")
        self._restarted(s)

    def _replace(self, s: _Slot, reason: str) -> None:
        """A worker process that ended: its job re-queued or failed; a new process in its place."""
        job, loading_failed = s.job, s.state == WorkerState.FAILED
        self._kill(s)
        if job is not None:
            status = self.store.status(job.id)
            if status is JobStatus.RUNNING and job.attempts >= self.limits.max_attempts:
                self._fail(job, f"the worker died {job.attempts} times on this video (last: {reason})",
                           time.monotonic() - s.started)
            elif status is JobStatus.RUNNING:
                self.store.requeue(job.id)
                self.metrics.job(job.id, JobStatus.QUEUED, error=f"its worker {reason}; queued again (attempt "
                                                         f"{job.attempts} of {self.limits.max_attempts})")
            elif status is JobStatus.CANCELLED:
                self.disk.remove_all(job.id)
        self.log(f"{s.name} {reason}" + (f" while running job {job.id}" if job else "") + "; replaced")
        self._restarted(s, delay=RESPAWN_BACKOFF if loading_failed else 0.0)

    def _restarted(self, s: _Slot, delay: float = 0.0) -> None:
        self.metrics.worker_restarts.inc()
        s.job, s.state = None, WorkerState.STARTING
        if delay:
            s.not_before = time.monotonic() + delay
        else:
            self._spawn(s)

    def _shutdown(self, timeout: float = 30.0) -> None:
        """Ask every worker to stop (a running job is re-queued by its worker), then make sure."""
        for s in self.slots:
            if s.handle is not None:
                s.handle.send(None)
        end = time.monotonic() + timeout
        for s in self.slots:
            if s.handle is not None:
                s.handle.join(max(0.0, end - time.monotonic()))
            job = s.job
            self._kill(s)
            if job is not None:
                self.store.requeue(job.id, count_attempt=False)  # only if the worker did not already


def _worker_entry(setup: WorkerSetup, conn, stop) -> None:
    """A spawned worker's first call: the heavy imports (torch, the runtimes) happen here, in the worker,
    never in the API process (its size: api_peak_rss_mb in benchmarks/bench_serve.py)."""
    from dfer.serve.worker import worker_main

    worker_main(setup, conn, stop)


def _rss(pid: int) -> int:
    try:
        return psutil.Process(pid).memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


__all__ = ["PoolLimits", "WorkerPool", "exit_reason", "job_deadline"]
