"""The face tracker: one implementation for training (`dfer prepare`) and inference (`dfer predict`).

Frames go in one at a time (`push`), in order; the tracker hands back frames whose face boxes
are final, in order, each with the faces on it by track id. So it works on streams of any
length, and a whole clip is just a stream that ends (`flush`).

- Detection: the detector runs on every k-th frame (`detect_every`), frame 0 included. A round
  scans the whole frame when it is the first, the first of a shot, `full_scan_every` (4) rounds after
  the last whole-frame scan, the round after one that missed a followed face, or when no face is
  followed; the rounds between look only in a square of 1.5x each followed face's side around where
  it should be (its box moved on at its last speed). A face that stays put costs a fraction of a
  frame; a new face is found within `full_scan_every` rounds (12 frames at the defaults).
- Association: detections continue the live track whose current box overlaps them most
  (greedy IoU, highest first, at least `iou_threshold`); an unmatched detection starts a new
  track. Track ids count up from 0 in order of appearance and are never reused.
- Smoothing: a matched detection sets the track's box centre; its width and height become
  `smooth * old + (1 - smooth) * new` (an exponential moving average over detection rounds).
  dlib's boxes jump between pyramid scales, which makes crops zoom in and out; smoothing the
  size steadies that, while the centre follows the face without lag. That box is the track's
  box on the detection frame (source "detected").
- Between two detection rounds a track's box is linearly interpolated between its boxes of
  those rounds (source "tracked"). A track missed by a round keeps its last box for matching;
  if a later round finds it again, the gap is interpolated; a track missed by more than
  `max_missed` consecutive rounds ends, and its box is held for at most k-1 frames after its
  last detection (also at the end of the video).
- Shot cuts (dfer.data.shots): a frame that starts a new shot ends every track at once, before
  it: no track id, held box or interpolation crosses a cut. The new shot's first frame is a
  detection frame with a whole-frame scan (the next rounds follow every k-th frame from it), and is
  marked `cut`. The cut rule needs the next frame's change, so frames are decided one frame late.
- Identity (optional, `identity`): a track whose face stops matching the face it started with is
  ended at that detection and the detection starts a new track (dfer.inference.identity states
  the rule); `splits` lists where.
- Look-ahead: interpolation needs the next round, so a frame is handed back once every live
  track's box on it is known: after at most k frames while faces are found, after at most
  (max_missed + 1) x k frames while a face is missed. Memory stays bounded by those frames.

Prepare and predict differ only in what they do with the boxes (prepare keeps the main face:
the largest sum of box areas over frames; predict keeps every face), never in the boxes.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dfer.data.face_settings import FaceSettings
from dfer.data.faces import Box, FaceDetector, iou
from dfer.data.frame import Frame, as_frame
from dfer.data.shots import ShotCuts

REGION = 1.5  # a followed face is looked for in a square of this many times its side (dfer.data.faces.DlibDetector)
MAX_FACES = 32  # faces followed at once; a crowd beyond it keeps its 32 largest faces (memory stays bounded)


@dataclass(frozen=True)
class TrackedBox:
    box: Box
    detected: bool  # True on a frame where the detector found this face; False: interpolated or held

    @property
    def source(self) -> str:
        return "detected" if self.detected else "tracked"


@dataclass
class TrackedFrame:
    index: int  # position of the frame in the input, from 0
    frame: Frame  # the frame as decoded (dfer.data.frame: .rgb(), .region(), ...)
    faces: dict[int, TrackedBox]  # track id -> box on this frame
    cut: bool = False  # this frame starts a new shot (every earlier track ended before it)


def match_boxes(tracks: list[Box], dets: list[Box], threshold: float) -> list[tuple[int, int]]:
    """Greedy IoU association, highest overlap first: (track index, detection index) pairs."""
    pairs = sorted(((iou(t, d), ti, di) for ti, t in enumerate(tracks) for di, d in enumerate(dets)), reverse=True)
    used_t, used_d, out = set(), set(), []
    for overlap, ti, di in pairs:
        if overlap < threshold or ti in used_t or di in used_d:
            continue
        out.append((ti, di))
        used_t.add(ti)
        used_d.add(di)
    return out


class _Track:
    def __init__(self, track_id: int, frame: int, box: Box) -> None:
        self.track_id = track_id
        self.frames: list[int] = [frame]  # detection frames (increasing), pruned as frames are handed back
        self.boxes: list[Box] = [box]  # smoothed box on each of those frames
        self.box = box  # current box, used for matching
        self.missed = 0
        self.closed = False
        self.stop: int | None = None  # first frame it may not reach (a shot cut), once known

    @property
    def last(self) -> int:
        return self.frames[-1]

    def add(self, frame: int, det: Box, smooth: float) -> None:
        old, new = self.box.as_array(), det.as_array()  # (4,) x0, y0, x1, y1
        centre = (new[:2] + new[2:]) / 2
        size = smooth * (old[2:] - old[:2]) + (1 - smooth) * (new[2:] - new[:2])
        self.box = Box.from_array(np.concatenate([centre - size / 2, centre + size / 2]), det.score)
        self.frames.append(frame)
        self.boxes.append(self.box)
        self.missed = 0

    def predict(self, f: int) -> tuple[float, float, float, float]:
        """The box expected on frame f: the current box moved on at the speed of its last two detections."""
        x0, y0, x1, y1 = self.box.x0, self.box.y0, self.box.x1, self.box.y1
        if len(self.frames) < 2:
            return x0, y0, x1, y1
        a, b = self.boxes[-2], self.boxes[-1]
        steps = (f - self.frames[-1]) / max(1, self.frames[-1] - self.frames[-2])
        dx, dy = steps * ((b.x0 + b.x1) - (a.x0 + a.x1)) / 2, steps * ((b.y0 + b.y1) - (a.y0 + a.y1)) / 2
        return x0 + dx, y0 + dy, x1 + dx, y1 + dy

    def box_at(self, f: int, hold: int) -> TrackedBox | None:
        j = bisect.bisect_right(self.frames, f) - 1  # last detection at or before f
        if j < 0 or (self.stop is not None and f >= self.stop):
            return None
        f0, b0 = self.frames[j], self.boxes[j]
        if f0 == f:
            return TrackedBox(b0, True)
        if j + 1 < len(self.frames):  # a later detection: interpolate across the gap
            f1, b1 = self.frames[j + 1], self.boxes[j + 1]
            a = (f - f0) / (f1 - f0)
            return TrackedBox(Box.from_array((1 - a) * b0.as_array() + a * b1.as_array(), b0.score), False)
        if self.closed and f - f0 <= hold:
            return TrackedBox(b0, False)
        return None

    def prune(self, first_pending: int) -> None:
        """Forget detections no pending frame needs (keep the last one at or before `first_pending`)."""
        j = bisect.bisect_right(self.frames, first_pending) - 1
        if j > 0:
            del self.frames[:j], self.boxes[:j]


class IdentityCheck(Protocol):
    """Whether a track's face is still the person it started with (dfer.inference.identity). The tracker
    asks at each detection that continues a track; a False splits the track there."""

    def same(self, track_id: int, index: int, frame: Frame, box: Box) -> bool: ...

    def end(self, track_id: int) -> None: ...


class FaceTracker:
    """Detect every k-th frame (around the followed faces between whole-frame scans), associate, smooth,
    interpolate; see the module docstring. `identity`: splits a track whose face stops matching (none:
    tracks end at cuts, exits and long misses only). `max_faces`: faces followed at once at most; beyond
    it the smallest new faces are not followed (counted in `faces_dropped`)."""

    def __init__(self, detector: FaceDetector, settings: FaceSettings, *, identity: IdentityCheck | None = None,
                 max_faces: int = MAX_FACES) -> None:
        self.detector = detector
        self.settings = settings
        self.identity = identity
        self.max_faces = max_faces
        self.k = settings.detect_every
        self._pending: deque[tuple[int, Frame]] = deque()
        self._tracks: list[_Track] = []  # live tracks and ended ones still needed by pending frames
        self._next_id = 0
        self._count = 0  # frames pushed
        self._seen = 0  # frames decided (past the shot-cut rule's one-frame look-ahead)
        self._phase = 0  # detection frames are _phase, _phase + k, ...: a cut restarts the rounds
        self._last_full = -(1 << 30)  # detection round of the last whole-frame scan
        self._round = 0
        self._shots = ShotCuts(settings.cut_ratio, settings.cut_min, settings.min_shot)
        self.cuts: list[int] = []  # frames that start a new shot
        self._cuts_pending: set[int] = set()  # cuts on frames not handed back yet
        self.splits: list[tuple[int, int, int]] = []  # (frame, ended track, new track) where a face stopped matching
        self.frames_detected = 0
        self.full_scans = 0
        self.faces_dropped = 0

    # -- input ----------------------------------------------------------------------------
    def push(self, frame) -> list[TrackedFrame]:
        """Add the next frame (a Frame, or an RGB array); returns the frames (earlier ones, or this one at
        the end) whose boxes are now final."""
        self._count += 1
        out = []
        for decided, cut in self._shots.push(as_frame(frame)):
            out += self._process(decided, cut)
        return out

    def flush(self) -> list[TrackedFrame]:
        """End of input: every track ends, every pending frame is handed back."""
        out = []
        for decided, cut in self._shots.flush():
            out += self._process(decided, cut)
        for t in self._tracks:
            if not t.closed:
                self._close(t)
        return out + self._emit()

    def run(self, frames: Iterable) -> Iterator[TrackedFrame]:
        """Every frame of `frames` with its faces, in order."""
        for frame in frames:
            yield from self.push(frame)
        yield from self.flush()

    # -- internals ----------------------------------------------------------------------
    def _process(self, frame: Frame, cut: bool) -> list[TrackedFrame]:
        i = self._seen
        self._seen += 1
        self._pending.append((i, frame))
        if cut:
            self._cut(i)
        if (i - self._phase) % self.k == 0:
            self._detect(i, frame, full=cut)
        return self._emit()

    def _close(self, t: _Track, stop: int | None = None) -> None:
        t.closed = True
        if stop is not None:
            t.stop = stop
        if self.identity is not None:
            self.identity.end(t.track_id)

    def _cut(self, i: int) -> None:
        """Frame i starts a new shot: every track ends before it, detection restarts on it."""
        for t in self._tracks:
            if not t.closed:
                self._close(t, stop=i)
        self.cuts.append(i)
        self._cuts_pending.add(i)
        self._phase = i

    def _regions(self, live: list[_Track], i: int) -> list[Box] | None:
        """Where this round looks: None (the whole frame) on a scan round, after a round that missed a
        face, or with no face followed; else a square of REGION times each face's side around where it should be."""
        if not live or self._round - self._last_full >= self.settings.full_scan_every or any(t.missed for t in live):
            return None
        out = []
        for t in live:
            x0, y0, x1, y1 = t.predict(i)
            side = REGION * max(x1 - x0, y1 - y0)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            out.append(Box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
        return out

    def _detect(self, i: int, frame: Frame, *, full: bool) -> None:
        s = self.settings
        live = [t for t in self._tracks if not t.closed]
        regions = None if full else self._regions(live, i)
        if regions is None:
            self._last_full = self._round
            self.full_scans += 1
        self._round += 1
        dets = self.detector(frame, regions)
        self.frames_detected += 1
        matches = match_boxes([t.box for t in live], dets, s.iou_threshold)
        used = set()
        for ti, di in matches:
            t, d = live[ti], dets[di]
            if self.identity is not None and not self.identity.same(t.track_id, i, frame, d):
                self._close(t, stop=i)  # the face stopped matching: this detection starts someone else's track
                self.splits.append((i, t.track_id, self._next_id))
                continue
            t.add(i, d, s.smooth)
            used.add(di)
        matched = {ti for ti, _ in matches}
        for ti, t in enumerate(live):
            if ti not in matched:
                t.missed += 1
                if t.missed > s.max_missed:
                    self._close(t)
        new = [d for di, d in enumerate(dets) if di not in used]
        room = max(0, self.max_faces - sum(1 for t in self._tracks if not t.closed))
        if len(new) > room:  # a crowd: the largest faces are followed, in the detector's order
            keep = {id(d) for d in sorted(new, key=lambda d: -d.area)[:room]}
            self.faces_dropped += len(new) - room
            new = [d for d in new if id(d) in keep]
        for d in new:
            self._tracks.append(_Track(self._next_id, i, d))
            if self.identity is not None:
                self.identity.same(self._next_id, i, frame, d)  # the new track's first face
            self._next_id += 1

    def _final(self, f: int) -> bool:
        # A live track whose last detection is before f may still be found again (then f is
        # interpolated) or end (then f is held or empty): wait for it.
        return all(t.closed or t.last >= f for t in self._tracks)

    def _emit(self) -> list[TrackedFrame]:
        out = []
        hold = self.k - 1
        while self._pending and self._final(self._pending[0][0]):
            f, frame = self._pending.popleft()
            faces = {}
            for t in self._tracks:
                tb = t.box_at(f, hold)
                if tb is not None:
                    faces[t.track_id] = tb
            out.append(TrackedFrame(f, frame, faces, cut=f in self._cuts_pending))
            self._cuts_pending.discard(f)
        if out:
            nxt = self._pending[0][0] if self._pending else self._seen
            self._tracks = [t for t in self._tracks if not (t.closed and t.last + hold < nxt)]
            for t in self._tracks:
                t.prune(nxt)
        return out


__all__ = ["FaceTracker", "IdentityCheck", "MAX_FACES", "TrackedBox", "TrackedFrame", "match_boxes"]
