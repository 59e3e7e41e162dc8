"""Face tracking between detections.

The detector runs on every k-th frame. Detections are associated with tracks by IoU
(greedy, highest overlap first). Between two detections of a track its box is linearly
interpolated; before the first and after the last detection it is held for up to k-1
frames; gaps longer than `max_gap` frames end the track. Boxes are then smoothed with a
centred moving average. The main face is the track with the largest sum of box areas
over frames (size x persistence).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dfer.data.faces import Box, FaceDetector, iou


@dataclass
class Track:
    track_id: int
    detections: dict[int, Box] = field(default_factory=dict)  # frame index -> detected box
    boxes: dict[int, Box] = field(default_factory=dict)  # frame index -> box for every covered frame

    @property
    def first(self) -> int:
        return min(self.boxes) if self.boxes else min(self.detections)

    @property
    def last(self) -> int:
        return max(self.boxes) if self.boxes else max(self.detections)

    @property
    def score(self) -> float:
        """Size x persistence: the sum of box areas over the frames the track covers."""
        return float(sum(b.area for b in self.boxes.values()))

    def box_at(self, frame_index: int) -> Box | None:
        return self.boxes.get(frame_index)


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


class FaceTracker:
    """Feed frames in order with `update`; `finish()` returns the tracks with a box per covered frame."""

    def __init__(
        self,
        detector: FaceDetector,
        *,
        detect_every: int = 3,
        iou_threshold: float = 0.3,
        max_gap: int | None = None,
        smooth: int = 5,
        min_detections: int = 1,
    ) -> None:
        if detect_every < 1:
            raise ValueError("detect_every must be >= 1")
        self.detector = detector
        self.detect_every = detect_every
        self.iou_threshold = iou_threshold
        # A face may be missed by a few detection rounds before its track is closed.
        self.max_gap = max_gap if max_gap is not None else 4 * detect_every
        self.smooth = smooth
        self.min_detections = min_detections
        self._tracks: list[Track] = []
        self._next_id = 0
        self.num_frames = 0
        self.frames_detected = 0

    def _active(self, frame_index: int) -> list[Track]:
        return [t for t in self._tracks if frame_index - max(t.detections) <= self.max_gap]

    def should_detect(self, frame_index: int) -> bool:
        return frame_index % self.detect_every == 0

    def update(self, frame_index: int, frame: np.ndarray, force: bool = False) -> list[Box] | None:
        """Process one frame; returns the raw detections when the detector ran on it."""
        self.num_frames = max(self.num_frames, frame_index + 1)
        if not (force or self.should_detect(frame_index)):
            return None
        dets = self.detector(frame)
        self.frames_detected += 1
        self.associate(frame_index, dets)
        return dets

    def associate(self, frame_index: int, dets: list[Box]) -> None:
        active = self._active(frame_index)
        matches = match_boxes([t.detections[max(t.detections)] for t in active], dets, self.iou_threshold)
        for ti, di in matches:
            active[ti].detections[frame_index] = dets[di]
        used_d = {di for _, di in matches}
        for di, d in enumerate(dets):
            if di not in used_d:
                self._tracks.append(Track(self._next_id, {frame_index: d}))
                self._next_id += 1

    def finish(self) -> list[Track]:
        tracks = [t for t in self._tracks if len(t.detections) >= self.min_detections]
        for t in tracks:
            t.boxes = self._fill(t)
        # Stable ids in order of appearance.
        tracks.sort(key=lambda t: (t.first, t.track_id))
        return tracks

    def _fill(self, track: Track) -> dict[int, Box]:
        keys = sorted(track.detections)
        arr = np.stack([track.detections[k].as_array() for k in keys])  # (D, 4)
        hold = self.detect_every - 1
        start = max(0, keys[0] - hold)
        end = min(self.num_frames - 1, keys[-1] + hold) if self.num_frames else keys[-1]
        frames = np.arange(start, end + 1)
        boxes = np.stack([np.interp(frames, keys, arr[:, j]) for j in range(4)], axis=1)  # (F, 4); holds at ends
        if self.smooth > 1 and len(frames) > 2:
            boxes = _moving_average(boxes, self.smooth)
        scores = np.interp(frames, keys, [track.detections[k].score for k in keys])
        return {int(f): Box.from_array(b, float(s)) for f, b, s in zip(frames, boxes, scores)}


def _moving_average(x: np.ndarray, k: int) -> np.ndarray:
    """Centred moving average along axis 0 with edge padding; shape kept."""
    k = min(k, len(x))
    pad_l, pad_r = k // 2, k - 1 - k // 2
    padded = np.pad(x, ((pad_l, pad_r), (0, 0)), mode="edge")
    kernel = np.ones(k) / k
    return np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(x.shape[1])], axis=1)


def main_track(tracks: list[Track]) -> Track | None:
    return max(tracks, key=lambda t: t.score) if tracks else None


class OnlineTracker:
    """Faces followed as frames arrive (videos of any length, live streams).

    The detector runs on every k-th frame; detections are matched to tracks greedily by IoU;
    a matched box is smoothed with an exponential moving average (`smooth` = weight of the old
    box); boxes are held between detections; a track missed by more than `max_missed`
    detection rounds ends. Track ids are never reused, so they stay stable over the video.
    """

    def __init__(
        self,
        detector: FaceDetector,
        *,
        detect_every: int = 3,
        iou_threshold: float = 0.25,
        max_missed: int = 2,
        smooth: float = 0.4,
        min_hits: int = 1,
    ) -> None:
        if detect_every < 1:
            raise ValueError("detect_every must be >= 1")
        self.detector = detector
        self.detect_every = detect_every
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.smooth = smooth
        self.min_hits = min_hits
        self._boxes: dict[int, Box] = {}
        self._hits: dict[int, int] = {}
        self._missed: dict[int, int] = {}
        self._next_id = 0
        self.frames_detected = 0

    def update(self, frame_index: int, frame: np.ndarray) -> dict[int, Box]:
        """Boxes of the confirmed tracks on this frame, by track id."""
        if frame_index % self.detect_every == 0:
            self._associate(self.detector(frame))
            self.frames_detected += 1
        # A track missed by a detection round keeps its last box until it is re-found or ends.
        return {k: b for k, b in self._boxes.items() if self._hits[k] >= self.min_hits}

    def _associate(self, dets: list[Box]) -> None:
        ids = list(self._boxes)
        matches = match_boxes([self._boxes[k] for k in ids], dets, self.iou_threshold)
        for ti, j in matches:
            k, a = ids[ti], self.smooth
            old, d = self._boxes[k], dets[j]
            self._boxes[k] = Box.from_array(a * old.as_array() + (1 - a) * d.as_array(), d.score)
            self._hits[k] += 1
            self._missed[k] = 0
        used_t, used_d = {ids[ti] for ti, _ in matches}, {j for _, j in matches}
        for k in ids:
            if k not in used_t:
                self._missed[k] += 1
                if self._missed[k] > self.max_missed:
                    del self._boxes[k], self._hits[k], self._missed[k]
        for j, d in enumerate(dets):
            if j not in used_d:
                self._boxes[self._next_id] = d
                self._hits[self._next_id] = 1
                self._missed[self._next_id] = 0
                self._next_id += 1
