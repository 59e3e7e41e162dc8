"""A worker process of `dfer serve`: loads the model once, then runs the jobs its supervisor sends.

The API process never runs the model: a crash in native code (FFmpeg, dlib, a runtime), running
out of memory or a hung decoder ends only this process, which the supervisor (dfer.serve.pool)
replaces. Each job's settings are passed per call; the loaded model is never copied or changed.

A job's outputs are written into `jobs/.<id>.partial/` and renamed to `jobs/<id>/` only when
complete, then the job is marked done: a job is never reported done without its files. Progress is
written to the job database a few times a second; when that write finds the job no longer running
(a DELETE cancelled it) the worker stops, removes what it wrote and takes the next job.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dfer.data.video import FrameGuard, FrameSource, open_source
from dfer.errors import DferError
from dfer.inference.colours import PERSON_COLOURS, class_colours, hex_of
from dfer.inference.explain_render import write_explanation
from dfer.inference.predict import analyse
from dfer.inference.recognizer import InferenceSettings, Recognizer
from dfer.serve.disk import DataDir, publish
from dfer.serve.jobs import Job, JobStatus, JobStore
from dfer.serve.messages import Finished, JobOutcome, LoadFailed, Ready, record_outcome
from dfer.serve.probe import SECRET_ENV
from dfer.serve.spec import WorkerSetup


class Stopped(Exception):
    """The server is shutting down: the running job goes back to the queue."""


class Cancelled(Exception):
    """A DELETE cancelled the running job."""


def describe(rec: Recognizer) -> dict[str, Any]:
    """What GET /v1/model answers: the runtime and the model, no server paths."""
    backend = rec.backend
    choice = {**rec.backend_choice, "model": Path(rec.backend_choice.get("model") or "").name}
    return {"class_names": rec.class_names, "clip": {"frames": rec.preprocess.num_frames, "size": rec.preprocess.size},
            "class_colours": class_colours(rec.class_names), "person_colours": [hex_of(c) for c in PERSON_COLOURS],
            "backend": backend.name, "backend_detail": backend.detail,
            "precision": backend.precision, "backend_choice": choice,
            "face": rec.face_settings()[0].to_dict(), "model_info": rec.model_info}


def _die_with_parent(parent_pid: int) -> None:
    """Linux: the kernel kills this process when the server dies (even by SIGKILL), so no orphan
    keeps running a job the next server start will run again."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if parent_pid and os.getppid() != parent_pid:  # the server died before the line above
        os._exit(1)


def worker_main(setup: WorkerSetup, conn, stop) -> None:
    """Entry point of a worker process (spawned): Ready or LoadFailed once, then Finished for every job
    received (dfer.serve.messages); None ends it."""
    _die_with_parent(setup.parent_pid)
    os.umask(0o077)  # results hold people's faces: readable by the service's user only
    for name in SECRET_ENV:  # a worker parses untrusted files: it has no use for the service's secrets
        os.environ.pop(name, None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server decides
    try:
        rec = setup.model.load()
    except Exception as exc:  # noqa: BLE001 - told to the supervisor, which reports it
        conn.send(LoadFailed(f"{exc.__class__.__name__}: {exc}" if not isinstance(exc, DferError) else str(exc)))
        return
    conn.send(Ready(describe(rec)))
    runner = JobRunner(rec, setup, stop)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(Finished(job.id, runner.run(job)))


class JobRunner:
    """Runs jobs on a loaded model: `execute` is the work itself, wherever the files and the progress go;
    `run` is the worker process's job, recorded in the job database."""

    def __init__(self, rec: Recognizer, setup: WorkerSetup, stop) -> None:
        self.rec = rec
        self.setup = setup
        self.stop = stop
        self._explainer: Recognizer | None = None  # PyTorch copy of the model, loaded on the first explain job
        self._files: tuple[DataDir, JobStore] | None = None  # opened by the first `run` (a Ray actor never does)

    def run(self, job: Job) -> JobOutcome:
        """One job, recorded in the database; never raises."""
        if self._files is None:
            disk = DataDir(self.setup.data_dir, self.setup.database)
            self._files = disk, JobStore(disk.database)
        disk, store = self._files
        outcome = self.execute(job, disk.upload(job.id), disk.partial(job.id), disk.result(job.id),
                               lambda value: store.progress(job.id, value))
        return record_outcome(store, disk, job.id, outcome, self.setup.keep_uploads)

    def execute(self, job: Job, video: Path, partial: Path, final: Path,
                progress: Callable[[float], bool]) -> JobOutcome:
        """Analyse `video` into `partial`, renamed to `final` when complete. `progress(value)` is called a
        few times a second and returns False once the job is cancelled. The outcome: done, failed (with the
        reason, naming the user's file), cancelled or queued (the server is stopping)."""
        t0 = time.perf_counter()
        took = lambda: time.perf_counter() - t0  # noqa: E731
        try:
            self._process(job, video, partial, final, progress)
        except Stopped:
            shutil.rmtree(partial, ignore_errors=True)
            return JobOutcome(JobStatus.QUEUED, took(), "interrupted by shutdown")
        except Cancelled:
            shutil.rmtree(partial, ignore_errors=True)
            return JobOutcome(JobStatus.CANCELLED, took())
        except DferError as exc:
            return JobOutcome(JobStatus.FAILED, took(), str(exc).replace(str(video), job.filename))
        except Exception as exc:  # noqa: BLE001 - recorded, never fatal to the worker
            print(f"job {job.id}: failed unexpectedly\n{traceback.format_exc()}", flush=True)
            return JobOutcome(JobStatus.FAILED, took(), f"unexpected {exc.__class__.__name__}: {exc}")
        return JobOutcome(JobStatus.DONE, took())

    def _process(self, job: Job, video: Path, partial: Path, final: Path, progress: Callable[[float], bool]) -> None:
        shutil.rmtree(partial, ignore_errors=True)
        last = [0.0]

        def report(value: float, force: bool = False) -> None:
            if self.stop.is_set():
                raise Stopped()
            now = time.monotonic()
            if force or now - last[0] >= 0.5:  # a few writes a second at most
                last[0] = now
                if not progress(value):
                    raise Cancelled()

        frames = max(1, job.params.num_frames)
        settings = job.params.settings()
        partial.mkdir(parents=True, exist_ok=True)
        # One guarded source for every pass over the upload (analysis, annotated video, explanations): each
        # decoded frame is checked against --max-frame and the frame count the probe made before it is used.
        source = open_source(video, guard=FrameGuard(max_frame=self.setup.max_frame, max_frames=frames))
        share = 0.5 if job.params.explain else 0.98  # of the progress bar, for the analysis pass
        analyse(self.rec, source, partial, settings=settings, name=job.filename,  # never a server path
                on_event=lambda ev: report(share * min(1.0, (ev.index + 1) / frames)))
        if job.params.explain:
            self._explain(settings, source, partial,
                          lambda ev: report(share + (0.98 - share) * min(1.0, (ev.index + 1) / frames)))
        report(0.99, force=True)
        publish(partial, final)

    def _explain(self, settings: InferenceSettings, source: FrameSource, folder: Path, on_event) -> None:
        """explain.mp4 (and the raw maps under explain/) by the PyTorch model; progress (and so a
        cancellation) at every frame, as in the analysis."""
        if self._explainer is None:
            self._explainer = Recognizer.from_checkpoint(self.setup.explain_checkpoint, backend="torch", device="cpu")
        ex = self._explainer.explain(source, settings=settings, on_event=on_event)
        write_explanation(ex, source, folder / "explain")
        if (folder / "explain" / "explain.mp4").is_file():
            (folder / "explain" / "explain.mp4").rename(folder / "explain.mp4")
