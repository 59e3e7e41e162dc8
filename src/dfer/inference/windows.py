"""Which frames of a face track make which prediction window: the recogniser's scheduling, on its own.

Every frame's face crop goes into its track's buffer, which covers one window (`span` frames). A
track's first window is due once its buffer is full; then one every `stride` frames. A track that
ends owes a window for the frames since its last one (at least half a stride of them), and so does
every track still buffered when the video ends. A track seen on fewer than `min_frames` frames
never gets one. A window's clip is T of its buffered crops, sampled uniformly as in evaluation.

Bounded: a buffer keeps at most `max_buffer` crops (4 T, at least 64). A longer window (a high frame
rate: 2 s at 240 fps is 480 frames) keeps every k-th frame's crop, k = ceil(span / max_buffer), and
its T frames are sampled from those: the same spread in time, crops of 128 px x `max_buffer` per
face (6 MB), whatever the rate.
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

import numpy as np

from dfer.data.crop import crop_face
from dfer.data.sampling import UniformSampler
from dfer.data.tracking import TrackedBox
from dfer.preprocess import Preprocess


class WindowTag(NamedTuple):
    """What a scored window needs once its logits come back (its buffer has moved on by then)."""

    track_id: int
    start_frame: int
    end_frame: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 on the window's last frame
    frames: tuple[int, ...]  # the T source frames sampled for the model


class TrackBuffer:
    """The crops of one track's current window."""

    def __init__(self, track_id: int, span: int, max_buffer: int) -> None:
        self.track_id = track_id
        self.every = max(1, math.ceil(span / max_buffer))  # keep every k-th frame's crop
        self.crops: deque[tuple[int, np.ndarray]] = deque(maxlen=math.ceil(span / self.every))
        self.last_emit = -1  # frame index of the last window's end
        self.box: TrackedBox | None = None
        self.seen = 0

    @property
    def full(self) -> bool:
        return len(self.crops) == self.crops.maxlen


class WindowScheduler:
    """Crops each frame's faces into their tracks' buffers and says which windows are due."""

    def __init__(self, span: int, stride: int, min_frames: int, crop_size: int, margin: float,
                 max_buffer: int = 0, num_frames: int = 16) -> None:
        self.span, self.stride, self.min_frames = span, stride, max(1, min_frames)
        self.crop_size, self.margin = crop_size, margin
        self.max_buffer = max_buffer or max(64, 4 * num_frames)
        self.keep_every = max(1, math.ceil(span / self.max_buffer))  # > 1: buffers keep every k-th crop
        self.buffers: dict[int, TrackBuffer] = {}

    def add(self, index: int, frame, faces: dict[int, TrackedBox]) -> tuple[list[TrackBuffer], list[int]]:
        """One frame's faces: (buffers whose window is due, in face order, then those of tracks that ended
        and owe one; the ids of the tracks that ended: absent on this frame)."""
        due = []
        for tid, tb in faces.items():
            b = self.buffers.get(tid)
            if b is None:
                b = self.buffers[tid] = TrackBuffer(tid, self.span, self.max_buffer)
            if b.seen % b.every == 0:
                b.crops.append((index, crop_face(frame, tb.box, self.crop_size, self.margin)))
            b.box, b.seen = tb, b.seen + 1
            # First window once the buffer is full; then every `stride` frames.
            first = b.last_emit < 0 and b.full and b.crops[-1][0] == index
            later = b.last_emit >= 0 and index - b.last_emit >= self.stride
            # A track earns windows once it has lasted min_frames frames (frames seen, not crops held: a
            # window shorter than min_frames, at a low frame rate, would otherwise never be full enough).
            if (first or later) and b.seen >= self.min_frames:
                due.append(b)
        ended = [t for t in self.buffers if t not in faces]
        for tid in ended:  # a track that ended: what it has not scored
            b = self.buffers.pop(tid)
            if self.owes(b):
                due.append(b)
        return due, ended

    def finish(self) -> list[TrackBuffer]:
        """End of the video: every track still buffered gets its last (or only) window."""
        out = [b for b in self.buffers.values() if self.owes(b)]
        self.buffers.clear()
        return out

    def owes(self, b: TrackBuffer) -> bool:
        """A track that stops: are the frames since its last window worth one more?"""
        return bool(b.crops) and b.crops[-1][0] - b.last_emit >= max(1, self.stride // 2) and b.seen >= self.min_frames

    @staticmethod
    def clip(b: TrackBuffer, preprocess: Preprocess) -> tuple[np.ndarray, WindowTag]:
        """(3, T, S, S) normalised clip from the buffer's crops, sampled as in evaluation, and its tag;
        the buffer is marked as scored up to its last crop."""
        crops = list(b.crops)
        idx = UniformSampler(preprocess.num_frames)(len(crops)).indices
        frames = np.stack([crops[i][1] for i in idx])  # (T, S0, S0, 3)
        box = b.box.box
        tag = WindowTag(b.track_id, crops[0][0], crops[-1][0], (box.x0, box.y0, box.x1, box.y1),
                        tuple(int(crops[i][0]) for i in idx))
        b.last_emit = crops[-1][0]
        return preprocess.clip(frames), tag


__all__ = ["TrackBuffer", "WindowScheduler", "WindowTag"]
