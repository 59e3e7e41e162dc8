"""`dfer serve --engine ray`: the service's jobs on Ray actors, so one API node feeds a cluster.

Each worker slot of the pool (dfer.serve.pool) is a Ray actor instead of a local process; the
supervisor's rules are the same (a dead actor's job re-queued, then failed after --max-attempts;
deadlines; memory limits from the RSS the actor reports; cancellation). The actor loads the model
once and runs one job at a time with the same code as a local worker (JobRunner.execute), so the
artifacts are the local engine's.

How the files travel:
- default: the upload goes to the actor through Ray's object store, the actor analyses it in a
  temporary folder of its node and returns the artifacts (a few MB: the annotated video is the
  largest), which the API node writes into DATA/jobs/<id>/;
- `--shared-dir DIR`: a folder every node sees at the same path; uploads and results live there
  and the actor reads and writes them in place (the job database stays on the API node's
  --data-dir: SQLite must not live on a network file system).
The model file is sent through the object store too when a node cannot see its path (one-file
models: .pt, .onnx).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from dfer.scale import RayOptions, ensure_ray
from dfer.serve.disk import DataDir, publish
from dfer.serve.jobs import Job, JobStatus, JobStore
from dfer.serve.messages import Finished, JobOutcome, LoadFailed, Ready, WorkerMessage, record_outcome
from dfer.serve.spec import WorkerSetup
from dfer.serve.worker import JobRunner, describe

PROGRESS_EVERY = 0.5  # seconds between progress questions to a busy actor


class ServeActor:
    """Runs on a Ray worker (as a threaded actor: `progress` and `cancel` answer while `run` works)."""

    def __init__(self, setup: WorkerSetup, shared: bool, model_bytes: bytes | None) -> None:
        os.umask(0o077)  # what this actor writes (results in a shared folder) is the service user's only
        self._tmp = Path(tempfile.mkdtemp(prefix="dfer-actor-"))
        if model_bytes is not None and not Path(setup.model.checkpoint).exists():  # this node cannot see it
            local = self._tmp / Path(setup.model.checkpoint).name
            local.write_bytes(model_bytes)
            setup = replace(setup, model=replace(setup.model, checkpoint=local),
                            explain_checkpoint=local if setup.explain_checkpoint else None)
        self.setup, self.shared = setup, shared
        self._stop = threading.Event()
        self.runner = JobRunner(setup.model.load(), setup, self._stop)
        self.value = 0.0
        self.cancelled: set[str] = set()

    def describe(self) -> tuple[dict[str, Any], int]:
        return describe(self.runner.rec), os.getpid()

    def progress(self) -> tuple[float, int]:
        return self.value, psutil.Process().memory_info().rss

    def cancel(self, job_id: str) -> None:
        self.cancelled.add(job_id)

    def stop(self) -> None:
        self._stop.set()

    def run(self, job: Job, video: bytes | None) -> JobOutcome:
        """The job's outcome, with the result files when they did not go to the shared folder."""
        self.value = 0.0

        def progress(value: float) -> bool:
            self.value = value
            return job.id not in self.cancelled

        if self.shared:
            disk = DataDir(self.setup.data_dir, self.setup.database)
            return self.runner.execute(job, disk.upload(job.id), disk.partial(job.id), disk.result(job.id), progress)
        folder = Path(tempfile.mkdtemp(prefix=f"job-{job.id}-", dir=self._tmp))
        try:
            upload = folder / "upload.video"
            upload.write_bytes(video or b"")
            outcome = self.runner.execute(job, upload, folder / "partial", folder / "result", progress)
            if outcome.status is JobStatus.DONE:
                return replace(outcome, files={p.name: p.read_bytes() for p in (folder / "result").iterdir() if p.is_file()})
            return outcome
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class RayWorker:
    """The API side of one actor (a dfer.serve.messages.Worker)."""

    def __init__(self, ray, actor_class, setup: WorkerSetup, store: JobStore, disk: DataDir, options: RayOptions,
                 shared: bool, model_ref) -> None:
        self.ray, self.store, self.disk, self.shared, self.setup = ray, store, disk, shared, setup
        self.actor = actor_class.options(num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker,
                                         max_restarts=0, max_concurrency=2).remote(setup, shared, model_ref)
        self.pid: int | None = None
        self._ready = self.actor.describe.remote()
        self._run = None
        self._progress = None
        self._asked = 0.0
        self._rss = 0
        self._dead: str | None = None
        self.job: Job | None = None

    def waitables(self) -> list:
        return []

    def alive(self) -> bool:
        return self._dead is None

    def exit_reason(self) -> str:
        return self._dead or "stopped"

    def rss(self) -> int:
        return self._rss

    def _done(self, ref) -> bool:
        return ref is not None and bool(self.ray.wait([ref], timeout=0)[0])

    def _get(self, ref):
        """The value of a finished call; None after noting the actor's death."""
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            self._dead = f"its Ray actor died ({_last_line(exc)})"
            return None

    def messages(self) -> list[WorkerMessage]:
        out: list[WorkerMessage] = []
        if self._done(self._ready):
            ref, self._ready = self._ready, None
            try:
                desc, self.pid = self.ray.get(ref)
            except self.ray.exceptions.RayError as exc:  # the actor could not start: the model did not load there
                self._dead = "could not load the model"
                return [LoadFailed(_last_line(exc))]
            out.append(Ready(desc))
        if self._done(self._progress):
            ref, self._progress = self._progress, None
            got = self._get(ref)
            if got is not None and self.job is not None:
                value, self._rss = got
                if self._run is not None and not self.store.progress(self.job.id, value):
                    self.actor.cancel.remote(self.job.id)  # a DELETE cancelled it
        if self._done(self._run):
            ref, self._run = self._run, None
            got = self._get(ref)
            if got is not None:
                out.append(Finished(self.job.id, self._record(got)))
                self.job = None
        elif self._run is not None and self._progress is None and time.monotonic() - self._asked >= PROGRESS_EVERY:
            self._asked = time.monotonic()
            self._progress = self.actor.progress.remote()
        return out

    def _record(self, outcome: JobOutcome) -> JobOutcome:
        job = self.job
        if outcome.files is not None:  # the artifacts came back through the object store: written as a local job's are
            partial = self.disk.partial(job.id)
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            for name, data in outcome.files.items():
                (partial / Path(name).name).write_bytes(data)
            publish(partial, self.disk.result(job.id))
        return record_outcome(self.store, self.disk, job.id, outcome, self.setup.keep_uploads)

    def send(self, job: Job | None) -> None:
        if job is None:  # the server is stopping: a running job is re-queued by the actor's runner
            self.actor.stop.remote()
            return
        self.job = job
        video = None if self.shared else self.ray.put(self.disk.upload(job.id).read_bytes())
        self._run = self.actor.run.remote(job, video)

    def join(self, timeout: float) -> None:
        if self._run is not None:
            self.ray.wait([self._run], timeout=timeout)
            self.messages()

    def kill(self) -> None:
        self.ray.kill(self.actor, no_restart=True)


def _last_line(exc: BaseException) -> str:
    """The line of a Ray error that says what happened (its message ends with the cause)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[-1] if lines else exc.__class__.__name__)[:300]


def ray_workers(setup: WorkerSetup, store: JobStore, disk: DataDir, options: RayOptions, shared: bool):
    """The pool's `make_worker` for Ray: connects to (or starts) Ray once, then one actor per call."""
    ray = ensure_ray(options)
    actor_class = ray.remote(ServeActor)
    path = Path(setup.model.checkpoint)
    model_ref = ray.put(path.read_bytes()) if not shared and path.is_file() and path.suffix != ".xml" else None

    def make(name: str) -> RayWorker:
        return RayWorker(ray, actor_class, setup, store, disk, options, shared, model_ref)

    return make
