"""Hard cuts between shots, found frame by frame, so no face track (and no prediction window) crosses one.

The rule is PySceneDetect's content detector, stated here and computed on the frames the tracker
already has: each frame is shrunk to at most 128 px wide and converted to HSV (OpenCV's 8-bit scale:
hue 0-179, saturation and value 0-255); its change from the previous frame is the mean over pixels
of |dH|, |dS| and |dV|, averaged over the three channels. A frame whose change is at least
`threshold` (27, PySceneDetect's default) starts a new shot, unless the last cut is fewer than
`min_shot` frames (15) before it, so a shot is never cut into slivers. A one-frame flash counts as
one cut (the return a frame later does not make a second); a fast pan, a dissolve or a fade changes
too little per frame to be one (a track's IoU still ends it if the face jumps).

Cost: about 0.1 ms a frame (the shrunken frame only), beside 20-60 ms of face detection.
"""

from __future__ import annotations

import cv2
import numpy as np

WIDTH = 128  # frames are compared at this width: enough for whole-frame content, cheap at any resolution


class ShotCuts:
    """`is_cut(frame)` for each frame in order: True when this frame starts a new shot."""

    def __init__(self, threshold: float = 27.0, min_shot: int = 15) -> None:
        self.threshold = threshold
        self.min_shot = min_shot
        self._prev: np.ndarray | None = None
        self._since = 0  # frames since the last cut (or the start)
        self.last_change = 0.0

    def is_cut(self, frame: np.ndarray) -> bool:
        """`frame`: RGB uint8 (H, W, 3), the next frame of the video."""
        if self.threshold <= 0:
            return False
        h, w = frame.shape[:2]
        small = frame if w <= WIDTH else cv2.resize(frame, (WIDTH, max(1, round(h * WIDTH / w))),
                                                    interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV).astype(np.int16)  # (h, w, 3)
        prev, self._prev = self._prev, hsv
        self._since += 1
        if prev is None or prev.shape != hsv.shape:
            return False
        self.last_change = float(np.abs(hsv - prev).mean())  # mean over pixels and the 3 channels
        if self.last_change >= self.threshold and self._since >= self.min_shot:
            self._since = 0
            return True
        return False
