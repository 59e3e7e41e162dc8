"""`Recognizer`: expressions of every face in a video or stream, over time.

One pass over the frames through the same face pipeline as `dfer prepare` (the one frame
source, `FaceTracker`, `crop_face`) with the face settings stored in the checkpoint, unless
overridden: faces are detected on every k-th frame and interpolated in between, with stable
track ids; every frame's face crop is kept in a per-track buffer covering one window; every
`stride` frames each track's window is sampled to T frames as in evaluation (uniformly over the
window), resized, normalised and scored, all tracks in one batch; with a runtime that serves
several calls at once (OpenVINO streams), on worker threads while the next frames are read.

    rec = Recognizer.from_checkpoint("best.pt")   # or backend="onnx" / "openvino", or a .onnx / .xml file
    result = rec.predict_video("talk.mp4")
    result.to_dataframe()                                  # one row per (track, window)
    result.tracks_dataframe()                              # one row per (frame, track): the face boxes
    result.summary()                                       # one entry per track
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from dfer.calibration import softmax
from dfer.data.crop import crop_face
from dfer.data.face_settings import FaceSettings
from dfer.data.faces import make_detector
from dfer.data.sampling import UniformSampler
from dfer.data.tracking import FaceTracker, TrackedBox
from dfer.data.video import FrameSource, open_source, read_ahead
from dfer.errors import ConfigError
from dfer.inference import people
from dfer.inference.backends import Backend, conform
from dfer.inference.episodes import UNCERTAIN, Episode, EpisodeRule, track_episodes
from dfer.inference.runtime_choice import RuntimeRequest, open_backend
from dfer.inference.scoring import ScoringQueue
from dfer.options import SAME_PERSON
from dfer.preprocess import Preprocess
from dfer.progress import progress_bar


@dataclass
class InferenceSettings:
    """How a video is cut into windows; face settings come from the checkpoint unless overridden."""

    window_seconds: float = 0.0  # span of a window; 0: the checkpoint's training clip length (else 2 s)
    stride: int = 0  # frames between windows of a track; 0: one window per second of video
    batch_size: int = 8  # windows per backend call
    min_track_frames: int = 8  # a face seen on fewer frames gets no prediction
    min_confidence: float = 0.0  # a window whose top probability is lower is labelled UNCERTAIN (probabilities kept)
    episodes: EpisodeRule = field(default_factory=EpisodeRule)  # how windows become expression episodes
    face: dict[str, Any] = field(default_factory=dict)  # FaceSettings overrides, e.g. {"detect_every": 5}
    people: bool = True  # join tracks into people (dfer.inference.people; needs the `people` extra)
    same_person: float = SAME_PERSON  # descriptor distance under which two tracks are one person
    gallery: str = ""  # a folder of known people (dfer.inference.people.Gallery): matching people get their name
    save_descriptors: bool = False  # keep the face descriptors for descriptors.npz (never written otherwise)


@dataclass
class ResolvedSettings:
    """What one run on a video uses once every default is decided (its frame rate known): summary.json's
    `settings`, with the same keys in the same order (to_dict)."""

    backend: str  # the runtime and precision, e.g. "openvino bf16"
    backend_choice: dict[str, Any]  # why (dfer.inference.runtime_choice)
    window_frames: int  # frames one prediction covers
    window_seconds: float
    stride: int  # frames between predictions
    num_frames: int  # T of the model's clip
    size: int  # H = W of the model's clip
    face: FaceSettings  # the face pipeline, with this run's overrides applied
    face_overrides: dict[str, Any]  # what differs from the checkpoint's face settings
    model: dict[str, Any]
    temperature: float
    min_confidence: float
    episodes: EpisodeRule

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "backend_choice": self.backend_choice, "window_frames": self.window_frames,
                "window_seconds": self.window_seconds, "stride": self.stride, "num_frames": self.num_frames,
                "size": self.size, "face": self.face.to_dict(), "face_overrides": self.face_overrides,
                "model": self.model, "temperature": self.temperature, "min_confidence": self.min_confidence,
                "episodes": {"min_seconds": self.episodes.min_seconds, "margin": self.episodes.margin}}


@dataclass
class WindowPrediction:
    track_id: int
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 on the window's last frame
    probs: np.ndarray  # (K,)
    label: str
    frames: tuple[int, ...] = ()  # the T source frames sampled for the model

    @property
    def confidence(self) -> float:
        return float(self.probs.max())


@dataclass
class VideoPrediction:
    source: str
    fps: float
    num_frames: int
    width: int
    height: int
    class_names: list[str]
    windows: list[WindowPrediction] = field(default_factory=list)
    boxes: dict[int, dict[int, TrackedBox]] = field(default_factory=dict)  # track id -> frame -> face box
    seconds: float = 0.0  # processing wall time
    backend: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    cuts: list[int] = field(default_factory=list)  # frames that start a new shot (no track crosses one)
    people: dict[int, str] = field(default_factory=dict)  # track id -> person (P1, P2, ...); empty: not computed
    people_note: str = ""  # why there are no people, when there are none
    describe_seconds: float = 0.0  # time spent on face descriptors
    faces: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # person -> (96, 96, 3) RGB thumbnail
    descriptors: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # track -> (n, 128); --save-descriptors

    def person(self, track_id: int) -> str:
        return self.people.get(track_id, "")

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps else 0.0

    @property
    def realtime_factor(self) -> float:
        """Seconds of video processed per second of wall time (>= 1: faster than real time)."""
        return self.duration / self.seconds if self.seconds > 0 else float("inf")

    @property
    def track_ids(self) -> list[int]:
        return sorted({w.track_id for w in self.windows})

    def to_dataframe(self):
        import pandas as pd

        cols = ["track_id", "person_id", "start_frame", "end_frame", "start_s", "end_s", "x0", "y0", "x1", "y1", "label",
                "confidence"]
        cols += [f"p_{c}" for c in self.class_names]
        rows = [[w.track_id, self.person(w.track_id), w.start_frame, w.end_frame, round(w.start_time, 4), round(w.end_time, 4),
                 *[round(v, 1) for v in w.box], w.label, round(w.confidence, 4), *[round(float(p), 4) for p in w.probs]]
                for w in self.windows]
        return pd.DataFrame(rows, columns=cols)

    def tracks_dataframe(self):
        """One row per frame and face: frame, time_s, track_id, x0, y0, x1, y1, source (detected | tracked)."""
        import pandas as pd

        rows = [(f, round(f / self.fps, 4) if self.fps else 0.0, tid, self.person(tid),
                 *(round(v, 1) for v in tb.box.as_array()), tb.source)
                for tid, frames in self.boxes.items() for f, tb in frames.items()]
        rows.sort(key=lambda r: (r[0], r[2]))
        return pd.DataFrame(rows, columns=["frame", "time_s", "track_id", "person_id", "x0", "y0", "x1", "y1", "source"])

    def episodes(self) -> list[Episode]:
        """Expression episodes of every track (see dfer.inference.episodes for the rule)."""
        rule = EpisodeRule(**self.settings.get("episodes", {}))
        return [e for t in self.track_ids
                for e in track_episodes(t, [w for w in self.windows if w.track_id == t], self.class_names, rule)]

    def episodes_dataframe(self):
        """One row per episode: track_id, start_s, end_s, label, mean_probability, windows."""
        import pandas as pd

        cols = ["track_id", "start_s", "end_s", "label", "mean_probability", "windows"]
        rows = [[e.track_id, self.person(e.track_id), *[getattr(e, c) for c in cols[1:]]] for e in self.episodes()]
        return pd.DataFrame(rows, columns=["track_id", "person_id", *cols[1:]])

    def people_summary(self) -> list[dict[str, Any]]:
        """One entry per person: when on screen, how long, tracks, share of time per expression (from the
        expression episodes), the dominant expression and the number of episodes."""
        out = []
        episodes = self.episodes()
        first = {}
        for t, p in self.people.items():
            first[p] = min(first.get(p, 1 << 62), min(self.boxes.get(t, {0: None})))
        for person in sorted(first, key=first.get):
            tracks = sorted(t for t, p in self.people.items() if p == person)
            frames = sorted({f for t in tracks for f in self.boxes.get(t, {})})
            eps = [e for e in episodes if e.track_id in tracks]
            time_by_label = {c: 0.0 for c in self.class_names}
            for e in eps:
                time_by_label[e.label] = time_by_label.get(e.label, 0.0) + (e.end_s - e.start_s)
            total = sum(time_by_label.values())
            shares = {c: round(v / total, 4) if total else 0.0 for c, v in time_by_label.items()}
            fps = self.fps or 1.0
            out.append({"person_id": person, "first_s": round(frames[0] / fps, 3) if frames else None,
                        "last_s": round(frames[-1] / fps, 3) if frames else None,
                        "seconds_on_screen": round(len(frames) / fps, 3), "tracks": len(tracks), "track_ids": tracks,
                        "dominant": max(shares, key=shares.get) if total else None, "shares": shares,
                        "episodes": len(eps)})
        return out

    def people_dataframe(self):
        """One row per person: person_id, first_s, last_s, seconds_on_screen, tracks, share_<class> for every
        class (of the person's expression-episode time), dominant, episodes."""
        import pandas as pd

        rows = [{**{k: v for k, v in p.items() if k not in ("shares", "track_ids")},
                 **{f"share_{c}": v for c, v in p["shares"].items()}} for p in self.people_summary()]
        cols = ["person_id", "first_s", "last_s", "seconds_on_screen", "tracks",
                *[f"share_{c}" for c in self.class_names], "dominant", "episodes"]
        return pd.DataFrame(rows, columns=cols)

    def track_summary(self, track_id: int) -> dict[str, Any]:
        ws = [w for w in self.windows if w.track_id == track_id]
        probs = np.stack([w.probs for w in ws])  # (W, K)
        mean = probs.mean(0)
        counts = np.bincount(probs.argmax(1), minlength=len(self.class_names))
        frames = sorted(self.boxes.get(track_id, {}))
        first, last = (frames[0], frames[-1]) if frames else (ws[0].start_frame, ws[-1].end_frame)
        return {
            "track_id": track_id, "person_id": self.person(track_id), "first_frame": first, "last_frame": last,
            "first_s": round(first / self.fps, 3), "last_s": round(last / self.fps, 3), "windows": len(ws),
            "label": self.class_names[int(mean.argmax())],
            "mean_probs": {c: round(float(p), 4) for c, p in zip(self.class_names, mean)},
            "window_labels": {c: int(n) for c, n in zip(self.class_names, counts) if n},
            "uncertain_windows": sum(1 for w in ws if w.label == UNCERTAIN),
        }

    def summary(self) -> dict[str, Any]:
        out = {
            "source": self.source, "fps": self.fps, "frames": self.num_frames, "duration_s": round(self.duration, 3),
            "width": self.width, "height": self.height, "class_names": self.class_names, "backend": self.backend,
            "processing_s": round(self.seconds, 3), "realtime_factor": round(self.realtime_factor, 3),
            "settings": self.settings,
            "shot_cuts": [{"frame": f, "time_s": round(f / self.fps, 3) if self.fps else 0.0} for f in self.cuts],
            "tracks": [self.track_summary(t) for t in self.track_ids],
            "people": self.people_summary(),
            "episodes": [{**vars(e), "person_id": self.person(e.track_id)} for e in self.episodes()],
        }
        model = self.settings.get("model", {})
        out["temperature"] = self.settings.get("temperature", 1.0)
        if not model.get("calibrated", False):
            out["temperature_note"] = "the checkpoint has no fitted temperature (trained before dfer fitted one): 1.0"
        out["uncertain_windows"] = sum(1 for w in self.windows if w.label == UNCERTAIN)
        if model.get("warning"):
            out["warning"] = model["warning"]
        if self.people_note:
            out["people_note"] = self.people_note
        else:
            out["describe_s"] = round(self.describe_seconds, 3)
        if not self.windows:
            out["message"] = ("no face found" if not self.boxes else
                              "faces were seen too briefly for a prediction (fewer frames than min_track_frames)")
        return out


@dataclass
class FrameEvent:
    """A frame with its faces, once their boxes are final (a few frames after it was read), and the
    windows scored on it: for live display and causal annotation. `frame` is None on the last
    event, which only carries the windows that end the video."""

    index: int
    time: float
    frame: np.ndarray | None
    boxes: dict[int, TrackedBox]
    new_windows: list[WindowPrediction]
    cut: bool = False  # this frame starts a new shot: every face track before it has ended


class ResultBuilder:
    """The one place a VideoPrediction is assembled, from the events of one pass (files, live sources)."""

    def __init__(self, rec: Recognizer, src: FrameSource, settings: InferenceSettings | None = None) -> None:
        self.result = VideoPrediction(src.name, src.fps, 0, src.width, src.height, rec.class_names,
                                      backend=rec.backend.name, settings=rec.resolved_settings(src.fps, settings).to_dict())
        self.rec = rec
        s = settings or rec.settings
        self.same_person, self.gallery, self.keep_descriptors = s.same_person, s.gallery, s.save_descriptors
        self.candidates: people.Candidates | None = None
        if not s.people:
            self.result.people_note = "people not asked for (--no-people)"
        elif not people.available():
            self.result.people_note = f"people need dlib's face recognition models: {people.INSTALL}"
        else:
            self.candidates = people.Candidates()
        self._t0 = time.perf_counter()

    def add(self, ev: FrameEvent) -> None:
        if ev.frame is not None:
            self.result.num_frames = ev.index + 1
            if ev.cut:
                self.result.cuts.append(ev.index)
            for tid, tb in ev.boxes.items():
                self.result.boxes.setdefault(tid, {})[ev.index] = tb
                if self.candidates is not None and tb.detected:
                    self.candidates.offer(tid, ev.index, ev.frame, tuple(float(v) for v in tb.box.as_array()))
        self.result.windows.extend(ev.new_windows)

    def finish(self) -> VideoPrediction:
        if self.candidates is not None and self.result.boxes:
            t0 = time.perf_counter()
            spans = {t: (min(f), max(f)) for t, f in self.result.boxes.items()}
            self.result.people, descriptors = people.people_of(self.candidates, self.rec.describer(), spans,
                                                               self.same_person)
            if self.gallery:
                self.result.people = self.rec.gallery(self.gallery, self.same_person).name(
                    self.result.people, descriptors, self.same_person)
            self.result.faces = people.thumbnails(self.candidates, self.result.people)
            if self.keep_descriptors:
                self.result.descriptors = descriptors
            self.result.describe_seconds = time.perf_counter() - t0
        self.result.seconds = time.perf_counter() - self._t0
        self.result.windows.sort(key=lambda w: (w.track_id, w.end_frame))
        return self.result


class _TrackBuffer:
    def __init__(self, span: int) -> None:
        self.crops: deque[tuple[int, np.ndarray]] = deque(maxlen=span)  # (frame index, crop (S0, S0, 3) uint8)
        self.last_emit = -1  # frame index of the last window's end
        self.box: TrackedBox | None = None
        self.seen = 0


class Recognizer:
    def __init__(self, backend: Backend, class_names: list[str], preprocess: Preprocess,
                 settings: InferenceSettings | None = None, model_info: dict[str, Any] | None = None) -> None:
        self.backend = conform(backend)
        # What the model was trained on (dataset, synthetic) and its temperature (1.0: uncalibrated).
        self.model_info = {"temperature": 1.0, "calibrated": False, **(model_info or {})}
        self.class_names = list(class_names)
        self._describer: people.FaceDescriber | None = None
        self._galleries: dict[str, people.Gallery] = {}
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

    # helpers -----------------------------------------------------------------------------
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

    def _clip(self, buf: _TrackBuffer) -> tuple[np.ndarray, tuple[int, ...]]:
        """(3, T, S, S) normalised clip from the track's buffered crops, sampled as in evaluation,
        and the source frame index of each of its T frames."""
        crops = list(buf.crops)
        idx = UniformSampler(self.preprocess.num_frames)(len(crops)).indices
        frames = np.stack([crops[i][1] for i in idx])  # (T, S0, S0, 3)
        return self.preprocess.clip(frames), tuple(int(crops[i][0]) for i in idx)

    def _submit(self, scoring: ScoringQueue, pending: list[tuple[int, _TrackBuffer]], batch_size: int) -> None:
        """Clips of the due windows, in batches of `batch_size`, handed to the scoring queue with what
        each window needs once scored (the buffers move on meanwhile)."""
        bs = max(1, batch_size)
        for k in range(0, len(pending), bs):
            tags = []
            clips = []
            for tid, b in pending[k : k + bs]:
                clip, sampled = self._clip(b)
                start, end = b.crops[0][0], b.crops[-1][0]
                box = b.box.box
                tags.append((tid, start, end, (box.x0, box.y0, box.x1, box.y1), sampled))
                clips.append(clip)
                b.last_emit = end
            scoring.submit(np.stack(clips), tags)  # (B, 3, T, S, S)

    def gallery(self, folder: str, threshold: float = SAME_PERSON) -> people.Gallery:
        """The known people of `folder`, read and described once per recogniser."""
        if folder not in self._galleries:
            self._galleries[folder] = people.Gallery.load(folder, self.describer(), threshold)
        return self._galleries[folder]

    def describer(self) -> people.FaceDescriber:
        """dlib's face descriptor network, loaded once per recogniser (the first video with faces)."""
        if self._describer is None:
            self._describer = people.FaceDescriber()
        return self._describer

    @property
    def temperature(self) -> float:
        return float(self.model_info["temperature"])

    def label_of(self, probs: np.ndarray, min_confidence: float | None = None) -> str:
        """The class of a window, or UNCERTAIN under `min_confidence` (default: the recogniser's setting)."""
        floor = self.settings.min_confidence if min_confidence is None else min_confidence
        return UNCERTAIN if probs.max() < floor else self.class_names[int(probs.argmax())]

    def _windows(self, scored: list[tuple[np.ndarray, list]], fps: float, min_confidence: float) -> list[WindowPrediction]:
        out = []
        for logits, tags in scored:
            probs = softmax(logits, self.temperature)  # (B, K), calibrated
            for (tid, start, end, box, sampled), p in zip(tags, probs):
                out.append(WindowPrediction(tid, start, end, start / fps, (end + 1) / fps, box, p.astype(np.float32),
                                            self.label_of(p, min_confidence), sampled))
        return out

    # main loop ---------------------------------------------------------------------------
    def iter_source(self, source: FrameSource, max_frames: int | None = None,
                    settings: InferenceSettings | None = None) -> Iterator[FrameEvent]:
        """Frame by frame: boxes of the visible faces and the windows scored since the last event
        (`settings`: this call's, else the recogniser's own).

        With a runtime that serves several calls at once (`backend.concurrency` > 1), windows are
        scored while the next frames are read and arrive a few frames after the one that made them,
        in order; a track that ends has all its windows in the event where it is gone.
        """
        s = settings or self.settings
        r = self.resolved_settings(source.fps, s)
        face = r.face
        tracker = FaceTracker(make_detector(face), face)
        buffers: dict[int, _TrackBuffer] = {}
        span, stride, min_frames = r.window_frames, r.stride, max(2, s.min_track_frames)
        fps = source.fps
        frames = source.frames() if max_frames is None else islice(source.frames(), max_frames)
        frames = read_ahead(frames)  # decoding overlaps the rest
        scoring: ScoringQueue[list] = ScoringQueue(self.backend, self.backend.concurrency)

        def owes_window(b: _TrackBuffer) -> bool:  # a track that stops: the frames since its last window
            return bool(b.crops) and b.crops[-1][0] - b.last_emit >= max(1, stride // 2) and len(b.crops) >= min_frames

        i = -1
        try:
            for tf in tracker.run(frames):
                i, frame, boxes = tf.index, tf.frame, tf.faces
                pending = []
                for tid, tb in boxes.items():
                    b = buffers.setdefault(tid, _TrackBuffer(span))
                    b.crops.append((i, crop_face(frame, tb.box, face.size, face.margin)))
                    b.box, b.seen = tb, b.seen + 1
                    # First window once the buffer is full; then every `stride` frames.
                    due = (b.last_emit < 0 and len(b.crops) == span) or (b.last_emit >= 0 and i - b.last_emit >= stride)
                    if due and len(b.crops) >= min_frames:
                        pending.append((tid, b))
                ended = [t for t in buffers if t not in boxes]
                for tid in ended:  # track ended: flush what it has not scored
                    b = buffers.pop(tid)
                    if owes_window(b):
                        pending.append((tid, b))
                if pending:
                    self._submit(scoring, pending, s.batch_size)
                # An ended track's windows all come with this event (its last ones may still be running).
                scored = scoring.drain() if ended else scoring.ready()
                yield FrameEvent(i, i / fps, frame, boxes, self._windows(scored, fps, s.min_confidence), cut=tf.cut)
            # End of the video: every face still buffered gets its last (or only) window.
            pending = [(tid, b) for tid, b in buffers.items() if owes_window(b)]
            if pending:
                self._submit(scoring, pending, s.batch_size)
            if scoring.in_flight:
                yield FrameEvent(i, i / fps, None, {}, self._windows(scoring.drain(), fps, s.min_confidence))
        finally:
            scoring.close()

    def predict_video(self, source: str | int | Path | FrameSource, *, settings: InferenceSettings | None = None,
                      max_frames: int | None = None, progress: bool = False,
                      on_event: Callable[[FrameEvent], None] | None = None) -> VideoPrediction:
        """All windows of every face of a video file, frame folder, webcam index or stream URL, with
        this call's `settings` (default: the recogniser's own; the recogniser itself never changes)."""
        src = source if isinstance(source, FrameSource) else open_source(source)
        builder = ResultBuilder(self, src, settings)
        total = min(src.num_frames, max_frames) if src.num_frames and max_frames else src.num_frames
        bar = progress_bar(total, f"predict {src.stem}", unit="frame", enabled=progress)
        t0, fps = time.perf_counter(), src.fps or 25.0
        for ev in self.iter_source(src, max_frames=max_frames, settings=settings):
            builder.add(ev)
            if ev.frame is not None and progress:  # the real-time factor: seconds of video per second of work
                bar.update(1, speed=f"{(ev.index + 1) / fps / max(time.perf_counter() - t0, 1e-6):.2f}x real time")
            if on_event is not None:
                on_event(ev)
        bar.close()
        return builder.finish()

    def explain(self, source: str | Path | FrameSource, *, target: str | None = None, stage: str = "layer3",
                every: int = 1, progress: bool = False, settings: InferenceSettings | None = None):
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
        emitted: list[WindowPrediction] = []
        explaining = Recognizer(backend, self.class_names, self.preprocess, self.settings, self.model_info)
        result = explaining.predict_video(source, settings=settings, progress=progress,
                                          on_event=lambda ev: emitted.extend(ev.new_windows))
        for item in backend.items:
            item.window = emitted[item.index]
        return Explanation(result, backend.items, stage, explainer.has_attention, self.class_names)


__all__ = ["FrameEvent", "InferenceSettings", "Recognizer", "ResultBuilder", "VideoPrediction", "WindowPrediction"]
