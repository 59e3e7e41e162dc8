"""Face detectors behind one small interface: `detector(frame_rgb) -> list[Box]`.

- `dlib`: dlib's HOG frontal face detector (compiled into `dlib-bin`, no model file).
  Detection runs on a grey copy whose longest side is `detect_size` pixels (downscaled for
  speed, upscaled for small frames such as 176x144), plus `upsample` extra pyramid levels.
  Boxes are mapped back to frame coordinates.
- `none`: the input is already a face crop; the box is the whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from dfer.data.face_settings import FaceSettings


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def as_array(self) -> np.ndarray:
        return np.array([self.x0, self.y0, self.x1, self.y1], dtype=np.float64)

    @classmethod
    def from_array(cls, a, score: float = 1.0) -> Box:
        return cls(float(a[0]), float(a[1]), float(a[2]), float(a[3]), score)


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


class FaceDetector(Protocol):
    name: str

    def __call__(self, frame: np.ndarray) -> list[Box]: ...


class DlibDetector:
    name = "dlib"

    def __init__(self, detect_size: int = 320, upsample: int = 0, min_score: float = -0.2) -> None:
        import dlib

        self.detect_size = detect_size
        self.upsample = upsample
        self.min_score = min_score
        self._det = dlib.get_frontal_face_detector()

    def __call__(self, frame: np.ndarray) -> list[Box]:
        import cv2

        h, w = frame.shape[:2]
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        scale = self.detect_size / max(h, w) if self.detect_size else 1.0
        if abs(scale - 1.0) > 1e-3:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
        rects, scores, _ = self._det.run(np.ascontiguousarray(gray), self.upsample, self.min_score)
        boxes = []
        for r, s in zip(rects, scores):
            boxes.append(Box(r.left() / scale, r.top() / scale, (r.right() + 1) / scale, (r.bottom() + 1) / scale, float(s)))
        return boxes


class WholeFrameDetector:
    """For inputs that are already face crops (e.g. DFEW's clip_224x224 frames)."""

    name = "none"

    def __call__(self, frame: np.ndarray) -> list[Box]:
        h, w = frame.shape[:2]
        return [Box(0.0, 0.0, float(w), float(h))]


def make_detector(settings: FaceSettings) -> FaceDetector:
    """The detector the settings name, at their detect size and upsampling."""
    if settings.detector == "dlib":
        return DlibDetector(detect_size=settings.detect_size, upsample=settings.upsample)
    return WholeFrameDetector()  # FaceSettings admits only the names in DETECTORS
