"""The records of a run on a video (`WindowPrediction`, `FrameEvent`, `VideoPrediction`) and the one place a
VideoPrediction is assembled from a pass's events (`ResultBuilder`). Tables and summaries of a result are
in dfer.inference.report; people in dfer.inference.people."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dfer.data.frame import Frame
from dfer.data.tracking import TrackedBox
from dfer.inference import report
from dfer.inference.episodes import Episode
from dfer.progress import stage

if TYPE_CHECKING:
    from dfer.inference.people import PeopleStage
    from dfer.inference.settings import ResolvedSettings


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
class FrameEvent:
    """A frame with its faces, once their boxes are final (a few frames after it was read), and the
    windows scored on it: for live display and causal annotation. `frame` is None on the last
    event, which only carries the windows that end the video."""

    index: int
    time: float
    frame: Frame | None  # as decoded: .rgb() for pixels
    boxes: dict[int, TrackedBox]
    new_windows: list[WindowPrediction]
    cut: bool = False  # this frame starts a new shot: every face track before it has ended
    ended: tuple[int, ...] = ()  # tracks that ended before this frame (absent from it)


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
    seconds: float = 0.0  # processing wall time, every stage of this video (the outputs included)
    started: float = 0.0  # time.perf_counter() when its processing began
    backend: str = ""
    settings: ResolvedSettings | None = None  # what the run used (summary.json's `settings`)
    cuts: list[int] = field(default_factory=list)  # frames that start a new shot (no track crosses one)
    identity_splits: list[tuple[int, int, int]] = field(default_factory=list)  # (frame, ended track, new track)
    identity_check: dict[str, Any] = field(default_factory=dict)  # descriptors and seconds it cost; empty: not run
    people: dict[int, str] = field(default_factory=dict)  # track id -> person (P1, P2, ...); empty: not computed
    people_note: str = ""  # why there are no people, when there are none
    describe_seconds: float = 0.0  # time spent on face descriptors
    notes: list[str] = field(default_factory=list)  # what a bound on the job's memory changed, said once each
    still: bool = False  # a still photo: one frame, each face's window its crop repeated (no temporal information)
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

    # The tables and summaries (dfer.inference.report), as methods for the Python API.
    def to_dataframe(self):
        """One row per (track, window): predictions.csv."""
        return report.windows_dataframe(self)

    def tracks_dataframe(self):
        """One row per frame and face: the face boxes (tracks.csv)."""
        return report.tracks_dataframe(self)

    def episodes(self) -> list[Episode]:
        return report.episodes(self)

    def episodes_dataframe(self):
        return report.episodes_dataframe(self)

    def people_summary(self) -> list[dict[str, Any]]:
        return report.people_summary(self)

    def people_dataframe(self):
        return report.people_dataframe(self)

    def track_summary(self, track_id: int) -> dict[str, Any]:
        return report.track_summary(self, track_id)

    def summary(self) -> dict[str, Any]:
        return report.summary(self)


class ResultBuilder:
    """The one place a VideoPrediction is assembled, from the events of one pass (files, live sources):
    boxes, cuts and windows as they come, then people (`people`: the stage, or None and why not)."""

    def __init__(self, result: VideoPrediction, people: PeopleStage | None, people_note: str = "") -> None:
        self.result = result
        self.result.people_note = people_note
        self.people = people
        self.result.started = time.perf_counter()

    def add(self, ev: FrameEvent) -> None:
        if self.people is not None:
            for tid in ev.ended:
                self.people.end(tid)
        if ev.frame is not None:
            self.result.num_frames = ev.index + 1
            if ev.cut:
                self.result.cuts.append(ev.index)
            for tid, tb in ev.boxes.items():
                self.result.boxes.setdefault(tid, {})[ev.index] = tb
                if self.people is not None and tb.detected:
                    self.people.offer(tid, ev.index, ev.frame, tuple(float(v) for v in tb.box.as_array()))
        self.result.windows.extend(ev.new_windows)

    def finish(self, notes: list[str] = (), *, progress: bool = False) -> VideoPrediction:
        r = self.result
        r.notes.extend(notes)
        if self.people is not None and r.boxes:
            with stage(f"describing the people of {Path(r.source).name}", enabled=progress):
                found = self.people.finish({t: (min(f), max(f)) for t, f in r.boxes.items()})
            r.people, r.faces, r.describe_seconds = found.people, found.faces, found.seconds
            r.descriptors = found.descriptors
            r.notes.extend(found.notes)
        r.seconds = time.perf_counter() - r.started
        r.windows.sort(key=lambda w: (w.track_id, w.end_frame))
        return r


__all__ = ["FrameEvent", "ResultBuilder", "VideoPrediction", "WindowPrediction"]
