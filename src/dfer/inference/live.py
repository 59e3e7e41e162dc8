"""Live: the streaming recogniser on frames as they arrive, the newest frame winning, and what each frame
shows (faces, people, their latest expression) as soon as it is known.

- `Mailbox`: frames handed in by a producer (a WebSocket, a camera reader) and taken by the recogniser,
  one slot: a frame that arrives while the last one is still waiting replaces it (counted as dropped),
  so a model slower than the camera never queues frames or grows memory; it only skips.
- `LivePeople`: person ids while the video runs (the offline clustering needs the whole video): a new
  face track is described once, on its first face at least 40 px tall, and takes the id of the nearest
  known person under the same-person distance (dlib's 0.6), else a new one. Without the `people` extra,
  faces are "#<track>".
- `run_live`: Recognizer.iter_source over the mailbox, with the settings live use needs (detection on
  every frame: the tracker's look-ahead is then one frame, the shot-cut rule's), and for every frame a
  `LiveFrame` record: its sequence number and capture time (echoed, so the client measures the
  latency), the faces with their person and latest window, the cut flag, and the counts.

The first label of a face comes once its first window is full: the model's clip length in seconds
(the training clip's median; 1.0 s for dfer's demo model) after the face appears.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from dfer.data.frame import Frame
from dfer.data.video import FrameSource
from dfer.inference import people
from dfer.inference.prediction import FrameEvent, WindowPrediction
from dfer.inference.recognizer import Recognizer
from dfer.inference.settings import InferenceSettings
from dfer.options import SAME_PERSON

MIN_SIDE = 40  # px: a face is described for its person id once it is this tall


@dataclass
class Stamped:
    """A frame as the producer gave it: its sequence number and capture time (the producer's clock)."""

    seq: int
    t_capture: float
    frame: Frame


class Mailbox:
    """One slot of frames between a producer and the recogniser: the newest wins."""

    def __init__(self) -> None:
        self._slot: Stamped | None = None
        self._cond = threading.Condition()
        self._closed = False
        self.received = 0
        self.dropped = 0  # frames replaced before the recogniser took them

    def put(self, item: Stamped) -> None:
        with self._cond:
            if self._closed:
                return
            self.received += 1
            if self._slot is not None:
                self.dropped += 1
            self._slot = item
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take(self, timeout: float | None = None) -> Stamped | None:
        """The newest frame, waiting for one; None once closed (or after `timeout` seconds without a frame)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._slot is not None or self._closed, timeout):
                return None
            item, self._slot = self._slot, None
            return item


class LivePeople:
    """Person ids for face tracks while the video runs: nearest known person (mean descriptor) under
    `threshold`, else a new one, P1, P2, ... in order of appearance."""

    def __init__(self, threshold: float = SAME_PERSON) -> None:
        self.threshold = threshold
        self.enabled = people.available()
        self._of_track: dict[int, str] = {}
        self._known: dict[str, list[np.ndarray]] = {}
        self.seconds = 0.0

    def person(self, track_id: int, frame: Frame, box, detected: bool) -> str:
        if track_id in self._of_track:
            return self._of_track[track_id]
        side = max(box.x1 - box.x0, box.y1 - box.y0)
        if not self.enabled or not detected or side < MIN_SIDE:
            return f"#{track_id}"
        t0 = time.perf_counter()
        pad = side / 2
        x0, y0 = int(max(0, box.x0 - pad)), int(max(0, box.y0 - pad))
        around = frame.region(x0, y0, int(box.x1 + pad), int(box.y1 + pad))
        d = people.describer()(around, (box.x0 - x0, box.y0 - y0, box.x1 - x0, box.y1 - y0))
        best, dist = None, self.threshold
        for name, descs in self._known.items():
            m = float(np.linalg.norm(np.mean(descs, axis=0) - d))
            if m < dist:
                best, dist = name, m
        name = best or f"P{len(self._known) + 1}"
        self._known.setdefault(name, []).append(d)
        self._of_track[track_id] = name
        self.seconds += time.perf_counter() - t0
        return name


@dataclass
class LiveFace:
    track: int
    person: str
    box: tuple[float, float, float, float]
    label: str | None  # the latest window's label (None: its first window is not full yet)
    probs: dict[str, float] | None

    def to_dict(self) -> dict[str, Any]:
        return {"track": self.track, "person": self.person, "box": [round(v, 1) for v in self.box],
                "label": self.label, "probs": self.probs}


@dataclass
class LiveFrame:
    """What one processed frame shows, sent to the page as it is known."""

    seq: int
    t_capture: float
    index: int  # its place among the frames the recogniser took
    width: int
    height: int
    faces: list[LiveFace]
    cut: bool
    received: int
    processed: int
    dropped: int
    people: list[str] = field(default_factory=list)  # every person seen so far, in order

    def to_dict(self) -> dict[str, Any]:
        return {"type": "frame", "seq": self.seq, "t": self.t_capture, "index": self.index, "width": self.width,
                "height": self.height, "faces": [f.to_dict() for f in self.faces], "cut": self.cut,
                "received": self.received, "processed": self.processed, "dropped": self.dropped, "people": self.people}


def live_settings(settings: InferenceSettings) -> InferenceSettings:
    """Live use: detection on every frame (the tracker then holds back no frame for interpolation) and no
    in-track identity check (LivePeople names tracks as they start)."""
    return replace(settings, identity_check=False, face={**settings.face, "detect_every": 1})


def run_live(rec: Recognizer, mailbox: Mailbox, fps: float, emit: Callable[[LiveFrame, Frame], None], *,
             settings: InferenceSettings | None = None, on_frame: Callable[[Frame], None] | None = None,
             on_event: Callable[[FrameEvent], None] | None = None, should_stop: Callable[[], bool] = lambda: False,
             idle: float = 10.0) -> None:
    """Run the recogniser on the mailbox's frames until it closes (or no frame for `idle` seconds), calling
    `emit(live_frame, frame)` for every processed frame, in order; `on_frame` sees each frame as the
    recogniser takes it (to save it), `on_event` each of the recogniser's events (to keep a result)."""
    stamps: deque[Stamped] = deque()

    def frames() -> Iterator[Frame]:
        while not should_stop():
            item = mailbox.take(timeout=idle)
            if item is None:
                return
            stamps.append(item)
            if on_frame is not None:
                on_frame(item.frame)
            yield item.frame

    source = FrameSource("live", "stream", fps, 0, 0, None, frames)
    live_people = LivePeople((settings or rec.settings).same_person)
    latest: dict[int, WindowPrediction] = {}
    order: list[str] = []
    processed = 0
    # live: a frame that would wait behind the model waits in the mailbox, where a newer one replaces it
    gone: set[int] = set()
    for ev in rec.iter_source(source, settings=live_settings(settings or rec.settings), live=True):
        if on_event is not None:
            on_event(ev)
        gone.update(ev.ended)
        for t in ev.ended:
            latest.pop(t, None)
        for w in ev.new_windows:
            if w.track_id not in gone:  # a window of a track already gone arrives late: shown nowhere
                latest[w.track_id] = w
        if ev.frame is None:
            continue
        stamp = stamps.popleft()
        processed += 1
        faces = []
        for tid, tb in sorted(ev.boxes.items()):
            who = live_people.person(tid, ev.frame, tb.box, tb.detected)
            if f"#{tid}" in order and who != f"#{tid}":  # the track got its person: in its place
                order[order.index(f"#{tid}")] = who
                order[:] = list(dict.fromkeys(order))
            elif who not in order:
                order.append(who)
            w = latest.get(tid)
            probs = None if w is None else {c: round(float(p), 4) for c, p in zip(rec.class_names, w.probs)}
            faces.append(LiveFace(tid, who, (tb.box.x0, tb.box.y0, tb.box.x1, tb.box.y1),
                                  None if w is None else w.label, probs))
        emit(LiveFrame(stamp.seq, stamp.t_capture, ev.index, ev.frame.width, ev.frame.height, faces, ev.cut,
                       mailbox.received, processed, mailbox.dropped, list(order)), ev.frame)


__all__ = ["LiveFace", "LiveFrame", "LivePeople", "Mailbox", "Stamped", "live_settings", "run_live"]
