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
                 log: Callable[[str], None] = print, explain_checkpoint: Path | None = None) -> None:
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

    def upload_path(self, job_id: str) -> Path:
        return self.data_dir / "uploads" / f"{job_id}.video"

    def result_dir(self, job_id: str) -> Path:
        return self.data_dir / "jobs" / job_id

    # lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        for k in range(self.count):
            t = threading.Thread(target=self._loop, name=f"dfer-worker-{k}", daemon=True)
            t.start()
            self._threads.append(t)

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
            self._run(job)

    def _run(self, job: Job) -> None:
        t0 = time.perf_counter()
        try:
            self._process(job)
        except Stopped:
            self.store.requeue(job.id)
            self.log(f"job {job.id}: interrupted by shutdown, queued again")
            return
        except DferError as exc:
            self.store.finish(job.id, error=str(exc).replace(str(self.upload_path(job.id)), job.filename))
            self.log(f"job {job.id}: failed: {exc}")
            return
        except Exception as exc:  # recorded, never fatal to the worker
            self.store.finish(job.id, error=f"unexpected {exc.__class__.__name__}: {exc}")
            self.log(f"job {job.id}: failed unexpectedly\n{traceback.format_exc()}")
            return
        self.store.finish(job.id)
        self.log(f"job {job.id}: done in {time.perf_counter() - t0:.1f} s")

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
