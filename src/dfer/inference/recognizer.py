"""`Recognizer`: expressions of every face in a video or stream, over time.

One pass over the frames through the same face pipeline as `dfer prepare` (the one frame
source, `FaceTracker`, `crop_face`) with the face settings stored in the checkpoint, unless
overridden. The pass runs as stages side by side on the machine's cores: decoding (FFmpeg's
threads), face detection and tracking (dlib, which releases the GIL), then crops, windows and
the network, whose calls run on worker threads while the next frames are read (OpenVINO streams).
Which frames make which window is dfer.inference.windows; the records are in
dfer.inference.prediction, their tables and summaries in dfer.inference.report, people in
dfer.inference.people and the in-track identity check in dfer.inference.identity.

    rec = Recognizer.from_checkpoint("best.pt")   # or backend="onnx" / "openvino", or a .onnx / .xml file
    result = rec.predict_video("talk.mp4")
    result.to_dataframe()                                  # one row per (track, window)
    result.tracks_dataframe()                              # one row per (frame, track): the face boxes
    result.summary()                                       # one entry per track
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from dfer.calibration import softmax
from dfer.data.face_settings import FaceSettings
from dfer.data.faces import make_detector
from dfer.data.tracking import MAX_FACES, FaceTracker
from dfer.data.video import FrameSource, open_source, read_ahead
from dfer.errors import ConfigError
from dfer.inference import people
from dfer.inference.backends import Backend, conform
from dfer.inference.episodes import UNCERTAIN
from dfer.inference.identity import DescriptorCheck
from dfer.inference.prediction import FrameEvent, ResultBuilder, VideoPrediction, WindowPrediction
from dfer.inference.runtime_choice import RuntimeRequest, open_backend
from dfer.inference.scoring import ScoringQueue
from dfer.inference.settings import InferenceSettings, ResolvedSettings
from dfer.inference.windows import TrackBuffer, WindowScheduler, WindowTag
from dfer.preprocess import Preprocess
from dfer.progress import progress_bar, realtime

STILL_DETECT_MAX = 2000  # px: the longest side a still photo is searched at (dlib's HOG: faces of 80 px and up)


@dataclass
class PassStats:
    """What one pass's tracker and scheduler did that the result reports: identity splits and what the
    job's memory bounds changed."""

    splits: list[tuple[int, int, int]] = field(default_factory=list)  # (frame, ended track, new track)
    faces_dropped: int = 0  # detections of faces beyond MAX_FACES at once, not followed
    keep_every: int = 1  # window buffers keep every k-th frame's crop (high frame rates)
    identity_descriptors: int = 0
    identity_seconds: float = 0.0

    def notes(self) -> list[str]:
        out = []
        if self.faces_dropped:
            out.append(f"more than {MAX_FACES} faces at once: {self.faces_dropped} detection(s) of the smallest faces "
                       "were not followed (memory bound)")
        if self.keep_every > 1:
            out.append(f"windows keep every {self.keep_every}th frame's face crop (memory bound at this frame rate); "
                       "the model's frames are sampled from those")
        return out


class Recognizer:
    def __init__(self, backend: Backend, class_names: list[str], preprocess: Preprocess,
                 settings: InferenceSettings | None = None, model_info: dict[str, Any] | None = None) -> None:
        self.backend = conform(backend)
        # What the model was trained on (dataset, synthetic) and its temperature (1.0: uncalibrated).
        self.model_info = {"temperature": 1.0, "calibrated": False, **(model_info or {})}
        self.class_names = list(class_names)
        self.preprocess = preprocess
        self.settings = settings or InferenceSettings()
        self.backend_choice: dict[str, Any] = {"requested": backend.name, "used": backend.name, "why": "given"}

    # construction ------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", backend: str = "auto",
                        settings: InferenceSettings | None = None, threads: int = 0,
                        precision: str = "auto", streams: int = 0) -> Recognizer:
        """From a dfer checkpoint (.pt) or an exported model (.onnx, OpenVINO .xml).

        `backend="auto"` (the default) runs the fastest installed runtime whose agreement with
        PyTorch float32 passed when the checkpoint was converted (converted once, cached by the
        checkpoint's digest; see dfer.inference.runtime_choice); "torch", "onnx" and "openvino" force one.
        `precision` is OpenVINO's float precision (auto | f32 | bf16, see OpenVinoBackend);
        `threads` applies to ONNX Runtime and OpenVINO; `streams` is OpenVINO's requests at once
        (0: auto, see OpenVinoBackend), which is how many windows are scored while the next frames
        are read. `.backend_choice` records what ran and why.
        """
        request = RuntimeRequest(backend=backend, device=device, precision=precision, threads=threads, streams=streams)
        opened = open_backend(path, request)
        rec = cls(opened.runtime, opened.class_names, opened.preprocess, settings, model_info=opened.model_info)
        rec.backend_choice = opened.choice.to_dict()
        return rec

    # settings ----------------------------------------------------------------------------
    def face_settings(self, settings: InferenceSettings | None = None) -> tuple[FaceSettings, dict[str, Any]]:
        """The checkpoint's face settings with the user's overrides (of `settings`, else the recogniser's
        own), and what was overridden and why."""
        s = settings or self.settings
        trained = FaceSettings.from_dict(self.preprocess.face)
        overrides: dict[str, Any] = {}
        if trained.detector == "none" and "detector" not in s.face:
            # Trained on ready-made face crops (DFEW's frames): raw video still needs a detector.
            overrides["detector"] = {"trained": "none", "used": "dlib", "why": "model trained on ready-made face crops"}
        face = trained.with_overrides({"detector": "dlib"} if overrides else {})
        face = face.with_overrides(s.face)
        for key, value in s.face.items():
            if getattr(trained, key) != value:
                overrides[key] = {"trained": getattr(trained, key), "used": value, "why": "user override"}
        return face, overrides

    def resolved_settings(self, fps: float, settings: InferenceSettings | None = None) -> ResolvedSettings:
        """Everything a run on a `fps` video uses, as written into summary.json (`settings`: this call's,
        else the recogniser's own)."""
        s = settings or self.settings
        seconds = s.window_seconds or self.preprocess.clip_seconds or 2.0
        span = max(self.preprocess.num_frames, int(round(seconds * fps)))
        face, overrides = self.face_settings(s)
        return ResolvedSettings(
            backend=self.backend.detail, backend_choice=self.backend_choice, window_frames=span,
            window_seconds=round(span / fps, 3), stride=s.stride or max(1, int(round(fps))),
            num_frames=self.preprocess.num_frames, size=self.preprocess.size, face=face, face_overrides=overrides,
            model=self.model_info, temperature=self.temperature, min_confidence=s.min_confidence, episodes=s.episodes)

    @property
    def temperature(self) -> float:
        return float(self.model_info["temperature"])

    def label_of(self, probs: np.ndarray, min_confidence: float | None = None) -> str:
        """The class of a window, or UNCERTAIN under `min_confidence` (default: the recogniser's setting)."""
        floor = self.settings.min_confidence if min_confidence is None else min_confidence
        return UNCERTAIN if probs.max() < floor else self.class_names[int(probs.argmax())]

    def settings_for(self, src: FrameSource, settings: InferenceSettings | None = None) -> InferenceSettings:
        """This call's settings (else the recogniser's own) as they apply to `src`. A still photo is one frame:
        its faces are looked for at the photo's own size (between 640 and STILL_DETECT_MAX pixels on its
        longest side: a group photo's faces are small at the 320 px a video frame is searched at), and each
        face gets one window, its one crop repeated T times (no temporal information: the output says so)."""
        s = settings or self.settings
        if not src.still:
            return s
        size = s.face.get("detect_size") or min(max(src.width, src.height, 640), STILL_DETECT_MAX)
        return replace(s, min_track_frames=1, stride=1, identity_check=False, face={**s.face, "detect_size": size})

    # one pass ----------------------------------------------------------------------------
    def result_builder(self, src: FrameSource, settings: InferenceSettings | None = None) -> ResultBuilder:
        """An empty VideoPrediction of `src` and what assembles it from this recogniser's events."""
        s = self.settings_for(src, settings)
        result = VideoPrediction(src.name, src.fps, 0, src.width, src.height, self.class_names,
                                 backend=self.backend.name, settings=self.resolved_settings(src.fps, s),
                                 still=src.still)
        if not s.people:
            return ResultBuilder(result, None, "people not asked for (--no-people)")
        if not people.available():
            return ResultBuilder(result, None, f"people need dlib's face recognition models: {people.INSTALL}; without "
                                               "them a face track may span two people after a cut that was not seen")
        return ResultBuilder(result, people.PeopleStage(s.same_person, s.gallery, s.save_descriptors))

    def _submit(self, scoring: ScoringQueue, due: list[TrackBuffer], batch_size: int) -> None:
        """Clips of the due windows, in batches of `batch_size`, handed to the scoring queue with their
        tags (the buffers move on meanwhile)."""
        bs = max(1, batch_size)
        for k in range(0, len(due), bs):
            made = [WindowScheduler.clip(b, self.preprocess) for b in due[k : k + bs]]
            scoring.submit(np.stack([clip for clip, _ in made]), [tag for _, tag in made])  # (B, 3, T, S, S)

    def _windows(self, scored: list[tuple[np.ndarray, list[WindowTag]]], fps: float,
                 min_confidence: float) -> list[WindowPrediction]:
        out = []
        for logits, tags in scored:
            probs = softmax(logits, self.temperature)  # (B, K), calibrated
            for tag, p in zip(tags, probs):
                out.append(WindowPrediction(tag.track_id, tag.start_frame, tag.end_frame, tag.start_frame / fps,
                                            (tag.end_frame + 1) / fps, tag.box, p.astype(np.float32),
                                            self.label_of(p, min_confidence), tag.frames))
        return out

    def _scoring_queue(self) -> ScoringQueue:
        tagged = getattr(self.backend, "score_tagged", None)
        if tagged is not None:  # a runtime that needs to know which windows it scores (explanations)
            return ScoringQueue(tagged, self.backend.concurrency, tagged=True)
        return ScoringQueue(self.backend, self.backend.concurrency)

    def iter_source(self, source: FrameSource, max_frames: int | None = None,
                    settings: InferenceSettings | None = None, stats: PassStats | None = None,
                    live: bool = False) -> Iterator[FrameEvent]:
        """Frame by frame: boxes of the visible faces and the windows scored since the last event
        (`settings`: this call's, else the recogniser's own; `stats`: filled with the pass's identity
        splits and bounds as it goes).

        `live`: frames as they come from a camera. Each stage runs at most one frame ahead of the next
        (instead of 16 decoded and 8 tracked: a frame then waits in no queue while the model is busy),
        and an ended track's windows come when they are scored, not in the event where it is gone (that
        would wait for the model).

        Decoding, detection and the rest run side by side (each stage on a thread, a few frames of
        queue between them). With a runtime that serves several calls at once (`backend.concurrency`
        > 1), windows are scored while the next frames are read and arrive a few frames after the one
        that made them, in order; a track that ends has all its windows in the event where it is gone.
        """
        s = self.settings_for(source, settings)
        stats = stats if stats is not None else PassStats()
        r = self.resolved_settings(source.fps, s)
        face, fps = r.face, source.fps
        identity = None
        if s.people and s.identity_check and people.available():
            identity = DescriptorCheck(fps, s.same_person)
        tracker = FaceTracker(make_detector(face), face, identity=identity)
        windows = WindowScheduler(r.window_frames, r.stride, s.min_track_frames, face.size, face.margin,
                                  num_frames=self.preprocess.num_frames)
        frames = source.decoded() if max_frames is None else islice(source.decoded(), max_frames)
        # decode | detect and track | the rest
        tracked = read_ahead(tracker.run(read_ahead(frames, depth=1 if live else 16)), depth=1 if live else 8)
        scoring = self._scoring_queue()
        i = -1
        try:
            for tf in tracked:
                i = tf.index
                due, ended = windows.add(i, tf.frame, tf.faces)
                if due:
                    self._submit(scoring, due, s.batch_size)
                # An ended track's windows all come with this event (its last ones may still be running).
                scored = scoring.drain() if ended and not live else scoring.ready()
                yield FrameEvent(i, i / fps, tf.frame, tf.faces, self._windows(scored, fps, s.min_confidence),
                                 cut=tf.cut, ended=tuple(ended))
            # End of the video: every face still buffered gets its last (or only) window.
            due = windows.finish()
            if due:
                self._submit(scoring, due, s.batch_size)
            if scoring.in_flight or due:
                yield FrameEvent(i, i / fps, None, {}, self._windows(scoring.drain(), fps, s.min_confidence),
                                 ended=tuple(b.track_id for b in due))
        finally:
            tracked.close()
            scoring.close()
            stats.splits[:] = tracker.splits
            stats.faces_dropped = tracker.faces_dropped
            stats.keep_every = max(stats.keep_every, windows.keep_every)
            if identity is not None:
                stats.identity_descriptors, stats.identity_seconds = identity.descriptors, identity.seconds

    def predict_video(self, source: str | int | Path | FrameSource, *, settings: InferenceSettings | None = None,
                      max_frames: int | None = None, progress: bool = False,
                      on_event: Callable[[FrameEvent], None] | None = None) -> VideoPrediction:
        """All windows of every face of a video file, frame folder, webcam index or stream URL, with
        this call's `settings` (default: the recogniser's own; the recogniser itself never changes)."""
        src = source if isinstance(source, FrameSource) else open_source(source)
        builder = self.result_builder(src, settings)
        total = min(src.num_frames, max_frames) if src.num_frames and max_frames else src.num_frames
        bar = progress_bar(total, f"predict {src.stem}", unit="frame", enabled=progress and not src.still)
        fps = src.fps or 25.0
        stats = PassStats()
        for ev in self.iter_source(src, max_frames=max_frames, settings=settings, stats=stats):
            builder.add(ev)
            if ev.frame is not None and progress:  # seconds of video per second of work on it (so far)
                bar.update(1, speed=realtime((ev.index + 1) / fps, builder.result.started))
            if on_event is not None:
                on_event(ev)
        bar.close()
        result = builder.finish(stats.notes(), progress=progress)
        result.identity_splits = list(stats.splits)
        if stats.identity_descriptors:
            result.identity_check = {"descriptors": stats.identity_descriptors, "seconds": round(stats.identity_seconds, 3)}
        return result

    def explain(self, source: str | Path | FrameSource, *, target: str | None = None, stage: str = "layer3",
                every: int = 1, progress: bool = False, settings: InferenceSettings | None = None,
                on_event: Callable[[FrameEvent], None] | None = None):
        """Predictions of every face window plus, for every `every`-th window, Grad-CAM on `stage`, the
        attention block's maps and the temporal importance of the `target` class (default: the
        predicted one); see dfer.inference.explain. Needs the PyTorch runtime (gradients)."""
        from dfer.inference.explain import Explainer, ExplainingBackend, Explanation  # torch: explanations only

        model = getattr(self.backend, "model", None)
        if model is None:
            raise ConfigError(f"explanations need the PyTorch runtime (gradients); this recogniser runs "
                              f"{self.backend.name}: open it with backend='torch'")
        explainer = Explainer(model, self.class_names, mean=self.preprocess.mean, std=self.preprocess.std,
                              temperature=self.temperature, stage=stage)
        backend = ExplainingBackend(self.backend, explainer, explainer.target_index(target), every)
        explaining = Recognizer(backend, self.class_names, self.preprocess, self.settings, self.model_info)
        result = explaining.predict_video(source, settings=settings, progress=progress, on_event=on_event)
        by_tag = {(w.track_id, w.start_frame, w.end_frame): w for w in result.windows}
        for item in backend.items:
            item.window = by_tag[(item.tag.track_id, item.tag.start_frame, item.tag.end_frame)]
        return Explanation(result, backend.items, stage, explainer.has_attention, self.class_names)


__all__ = ["FrameEvent", "InferenceSettings", "PassStats", "Recognizer", "ResolvedSettings", "ResultBuilder",
           "VideoPrediction", "WindowPrediction"]
