"""Workers: threads that take queued jobs and run the Recognizer on them.

Threads, not processes: all of them share one loaded model (one copy in memory), and the heavy
work (FFmpeg decoding, dlib, the network, x264) runs in C code that releases the GIL, so the
API's event loop stays responsive while videos are processed.

A job's outputs are written into `jobs/.<id>.partial/` and renamed to `jobs/<id>/` only when
complete, then the job is marked done: a job is never reported done without its files, and a
job interrupted by a crash is simply run again.
"""

from __future__ import annotations

import shutil
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dfer.data.video import open_source
from dfer.errors import DferError
from dfer.inference.explain_render import write_explanation
from dfer.inference.predict import analyse, write_outputs
from dfer.inference.recognizer import InferenceSettings, Recognizer
from dfer.serve.jobs import Job, JobStore


class Stopped(Exception):
    """The server is shutting down: the running job goes back to the queue."""


class Workers:
    def __init__(self, store: JobStore, recognizer: Recognizer, data_dir: Path, count: int = 1,
                 log: Callable[[str], None] = print, explain_checkpoint: Path | None = None, metrics=None) -> None:
        self.store = store
        self.recognizer = recognizer
        self.explain_checkpoint = explain_checkpoint
        self._explainer: Recognizer | None = None  # PyTorch copy of the model, loaded on the first explain job
        self._explain_lock = threading.Lock()
        self.data_dir = data_dir
        self.count = count
        self.log = log
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._current: dict[str, str | None] = {}  # worker name -> the job it runs
        self.metrics = metrics
        self.restarts = 0

    def upload_path(self, job_id: str) -> Path:
        return self.data_dir / "uploads" / f"{job_id}.video"

    def result_dir(self, job_id: str) -> Path:
        return self.data_dir / "jobs" / job_id

    # lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        for k in range(self.count):
            self._threads.append(self._spawn(f"dfer-worker-{k}"))
        threading.Thread(target=self._supervise, name="dfer-supervisor", daemon=True).start()

    def _spawn(self, name: str) -> threading.Thread:
        t = threading.Thread(target=self._loop, name=name, daemon=True)
        self._current[name] = None
        t.start()
        return t

    def _supervise(self) -> None:
        """A worker that died (an error outside a job's own handling: the database, the disk) is
        replaced within a second, and the job it held goes back to the queue."""
        while not self._stop.wait(1.0):
            for k, t in enumerate(self._threads):
                if t.is_alive() or self._stop.is_set():
                    continue
                job = self._current.get(t.name)
                self.log(f"worker {t.name} died" + (f" running job {job}; it is queued again" if job else "")
                         + "; replaced")
                if job:
                    try:
                        self.store.requeue(job)
                    except Exception as exc:  # noqa: BLE001 - reported; the next start re-queues it anyway
                        self.log(f"could not re-queue job {job}: {exc}")
                self.restarts += 1
                if self.metrics is not None:
                    self.metrics.worker_restarts.inc()
                self._threads[k] = self._spawn(t.name)

    def states(self) -> list[dict[str, Any]]:
        """Each worker: its name, whether it is alive, the job it runs."""
        return [{"name": t.name, "alive": t.is_alive(), "job": self._current.get(t.name)} for t in self._threads]

    def notify(self) -> None:
        with self._wake:
            self._wake.notify()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for t in self._threads:
            t.join(timeout)

    # work ---------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.store.claim()
            if job is None:
                with self._wake:
                    self._wake.wait(timeout=1.0)
                continue
            name = threading.current_thread().name
            self._current[name] = job.id
            self._event(job.id, "running")
            self._run(job)
            self._current[name] = None

    def _run(self, job: Job) -> None:
        t0 = time.perf_counter()
        try:
            self._process(job)
        except Stopped:
            self.store.requeue(job.id)
            self._event(job.id, "queued", error="interrupted by shutdown")
            return
        except DferError as exc:
            error = str(exc).replace(str(self.upload_path(job.id)), job.filename)
            self.store.finish(job.id, error=error)
            self._event(job.id, "failed", time.perf_counter() - t0, error)
            return
        except Exception as exc:  # recorded, never fatal to the worker
            self.store.finish(job.id, error=f"unexpected {exc.__class__.__name__}: {exc}")
            self.log(f"job {job.id}: failed unexpectedly\n{traceback.format_exc()}")
            self._event(job.id, "failed", time.perf_counter() - t0, f"unexpected {exc.__class__.__name__}")
            return
        self.store.finish(job.id)
        self._event(job.id, "done", time.perf_counter() - t0)

    def _event(self, job_id: str, status: str, seconds: float | None = None, error: str | None = None) -> None:
        """One structured log line per job state change (and the job-seconds histogram)."""
        if self.metrics is not None:
            self.metrics.job(job_id, status, seconds, error)
        else:
            self.log(f"job {job_id}: {status}" + (f" in {seconds:.1f} s" if seconds is not None else "")
                     + (f": {error}" if error else ""))

    def _process(self, job: Job) -> None:
        final = self.result_dir(job.id)
        partial = final.with_name(f".{job.id}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        rec = self._recognizer(job.params)
        last = [0.0]

        def report(value: float) -> None:
            if self._stop.is_set():
                raise Stopped()
            now = time.monotonic()
            if now - last[0] >= 0.5:  # a few writes a second at most
                last[0] = now
                self.store.progress(job.id, value)

        video = self.upload_path(job.id)
        frames = max(1, int(job.params.get("num_frames") or 1))
        partial.mkdir(parents=True, exist_ok=True)
        result = analyse(rec, open_source(video), partial,
                         on_event=lambda ev: report(0.98 * min(1.0, (ev.index + 1) / frames)))
        result.source = job.filename  # reports name the user's file, never a server path
        write_outputs(result, partial)
        if job.params.get("explain"):
            self._explain(job.params, video, partial)
        shutil.rmtree(final, ignore_errors=True)  # a rerun after a crash replaces what the first run left
        partial.rename(final)

    def _explain(self, params: dict[str, Any], video: Path, folder: Path) -> None:
        """explain.mp4 (and the raw maps under explain/) by the PyTorch model, one job at a time."""
        with self._explain_lock:
            if self._explainer is None:
                self._explainer = Recognizer.from_checkpoint(self.explain_checkpoint, backend="torch", device="cpu")
            torch_rec = self._recognizer(params, base=self._explainer)
            ex = torch_rec.explain(video)
        write_explanation(ex, video, folder / "explain")
        if (folder / "explain" / "explain.mp4").is_file():
            (folder / "explain" / "explain.mp4").rename(folder / "explain.mp4")

    def _recognizer(self, params: dict[str, Any], base: Recognizer | None = None) -> Recognizer:
        """The shared model (or `base`) with this job's window settings."""
        base = base or self.recognizer
        settings = InferenceSettings(window_seconds=float(params.get("window") or 0.0),
                                     stride=int(params.get("stride") or 0), batch_size=base.settings.batch_size,
                                     min_track_frames=base.settings.min_track_frames,
                                     min_confidence=float(params.get("min_confidence") or 0.0),
                                     face={**base.settings.face, **({"detect_every": int(params["detect_every"])}
                                                                    if params.get("detect_every") else {})})
        rec = Recognizer(base.backend, base.class_names, base.preprocess, settings, model_info=base.model_info)
        rec.backend_choice = base.backend_choice
        return rec
