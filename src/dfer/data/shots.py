"""Hard cuts between shots, found frame by frame, so no face track (and no prediction window) crosses one.

The rule (adaptive, on luma and chroma alike, so grey footage is cut as colour footage is):
- a frame's change is the mean absolute difference from the previous frame of its Y, U and V planes,
  summed, on copies 128 px wide (Y) and 64 px wide (U, V) (dfer.data.frame.Frame.thumbnail; 0-255 levels). On grey footage U and
  V never change and a cut scores its luma change in full. (The rule this replaced averaged HSV's
  |dH|, |dS| and |dV|: hue and saturation are zero on grey frames, so a grey cut scored a third of a
  colour one and a fixed threshold of 27 missed every cut of a grey archive.)
- a frame starts a new shot when its change is at least `ratio` (3) times the larger of the mean change
  of the (up to 8) frames before it in the shot and the change of the frame after it, and at least
  `minimum` (5 levels): a cut is one frame that changes far more than its neighbours. A slow pan, a
  fade or a dissolve changes every frame alike and never stands out; a one-frame flash changes as much
  on its way back and is not a cut either (nor is the frame after it, which differs from the flash but
  not from the frame two back: a cut must also stand out from the frame two before it); motion (a
  head turning) spans several frames. A dim video
  keeps its cuts: the rule compares a frame with its own video, not with a fixed level.
- never fewer than `min_shot` frames (15) after the last cut; a change of frame size (a video that
  switches resolution) is always a cut.
The decision for a frame needs the next frame's change: the tracker sees each frame one frame late.

Measured on built videos (benchmarks/bench_identity.py): colour, grey and darkened (x0.25) versions of
../shared/media's faces cut together, every cut found with the change at a cut 13 to 40 times the
largest ratio elsewhere; slow pan and fade: none.

Cost: about 0.15 ms a frame at 640x360 (the small copies and OpenCV's absdiff), beside milliseconds of
face detection.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from dfer.data.frame import Frame

WINDOW = 8  # changes before a frame that make its baseline
FLOOR = 1.0  # a baseline is never below one level (a perfectly still video's compression noise)


class ShotCuts:
    """`push(frame)` for each frame in order; returns the frames decided so far (the one before this one)
    as (frame, starts a new shot); `flush()` at the end gives the last. `ratio` 0: no cuts."""

    def __init__(self, ratio: float = 3.0, minimum: float = 5.0, min_shot: int = 15) -> None:
        self.ratio = ratio
        self.minimum = minimum
        self.min_shot = min_shot
        # the last three frames' small copies and sizes
        self._thumbs: deque[tuple[tuple[np.ndarray, np.ndarray], tuple[int, int]]] = deque(maxlen=3)
        self._held: tuple[Frame, float, float, bool] | None = None  # (frame, change, change over two, resized)
        self._before: deque[float] = deque(maxlen=WINDOW)  # changes of the frames before the held one, this shot
        self._since = 0  # frames since the last cut (or the start)
        self.changes: list[float] = []  # every frame's change, when `keep_changes` (for measurement)
        self.keep_changes = False

    def push(self, frame: Frame) -> list[tuple[Frame, bool]]:
        change, over_two, resized = self._change(frame)
        out = self._decide(after=change) if self._held is not None else []
        self._held = (frame, change, over_two, resized)
        return out

    def flush(self) -> list[tuple[Frame, bool]]:
        return self._decide(after=None) if self._held is not None else []

    def _change(self, frame: Frame) -> tuple[float, float, bool]:
        """The frame's change from the last frame and from the one before it, and whether its size changed."""
        if self.ratio <= 0:
            return 0.0, 0.0, False
        thumb, size = frame.thumbnail(), (frame.width, frame.height)
        self._thumbs.append((thumb, size))
        if len(self._thumbs) < 2:
            return 0.0, 0.0, False
        prev = self._thumbs[-2]
        if prev[1] != size or prev[0][0].shape != thumb[0].shape:
            self._thumbs.clear()
            self._thumbs.append((thumb, size))
            return float("inf"), float("inf"), True
        change = _difference(thumb, prev[0])
        over_two = _difference(thumb, self._thumbs[0][0]) if len(self._thumbs) == 3 else change
        if self.keep_changes:
            self.changes.append(change)
        return change, over_two, False

    def _decide(self, after: float | None) -> list[tuple[Frame, bool]]:
        frame, change, over_two, resized = self._held
        self._held = None
        self._since += 1
        cut = resized
        if not cut and self.ratio > 0 and self._since >= self.min_shot and change >= self.minimum:
            before = float(np.mean(self._before)) if self._before else FLOOR
            # A cut stands out from the frames before and after it, and from the frame two back (the
            # return from a one-frame flash differs from the flash, not from the frame before it).
            cut = min(change, over_two) >= self.ratio * max(before, after if after is not None else 0.0, FLOOR)
        if cut:
            self._since = 0
            self._before.clear()
        else:
            self._before.append(change)
        return [(frame, cut)]


def _difference(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """|dY| + |dU| + |dV|, each the mean over its plane's pixels, of two thumbnails (Frame.thumbnail)."""
    dy = cv2.mean(cv2.absdiff(a[0], b[0]))[0]
    du, dv = cv2.mean(cv2.absdiff(a[1], b[1]))[:2]
    return float(dy + du + dv)


__all__ = ["ShotCuts"]
