"""Face detectors behind one small interface: `detector(frame, regions=None) -> list[Box]`.

`frame` is a `dfer.data.frame.Frame` (or an RGB / grey array). `regions`, when given, limits the
search to those parts of the frame (the tracker's cheap rounds); None scans the whole frame.

- `dlib`: dlib's HOG frontal face detector (compiled into `dlib-bin`, no model file).
  Detection runs on a grey copy whose longest side is `detect_size` pixels (downscaled for
  speed, upscaled for small frames such as 176x144; for decoded video, the Y plane scaled once),
  plus `upsample` extra pyramid levels. Boxes are mapped back to frame coordinates.
- `none`: the input is already a face crop; the box is the whole frame.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from dfer.data.frame import as_frame

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

    def __call__(self, frame, regions: list[Box] | None = None) -> list[Box]: ...


ALIGN = 48  # px of the detector's grey copy: where a region's corner may fall
_FREE: list = []  # dlib detectors built and not in use: building one reads its HOG model (0.3 s)
_FREE_LOCK = threading.Lock()


@contextmanager
def _frontal_detector():
    """One of the process's dlib frontal face detectors, for one call: a detector must not be used by two
    threads at once (dlib's rule), so each call borrows one and gives it back; as many are built as run at once."""
    with _FREE_LOCK:
        det = _FREE.pop() if _FREE else None
    if det is None:
        import dlib

        det = dlib.get_frontal_face_detector()
    try:
        yield det
    finally:
        with _FREE_LOCK:
            _FREE.append(det)



class DlibDetector:
    """dlib's HOG detector on the frame's grey copy whose longest side is `detect_size` pixels.

    `regions` (frame pixels): look only there, each region cut from that same grey copy, so a face is
    seen at the scale a whole-frame scan sees it, with its top-left corner on a multiple of ALIGN (48)
    pixels: dlib's pyramid shrinks by 5/6 a level and its HOG cells are 8 px, so the cells of the first
    two levels (48 and 40 px) fall where the whole frame's do and a face found there gets the box a
    whole-frame scan gives it (measured on single_face.mp4: IoU 1.00 on every round; unaligned regions
    gave 0.86). Boxes found in overlapping regions are kept once. The tracker scans a region of 1.5x
    each followed face's side (dfer.data.tracking): measured 2.4 ms against 4.5 ms for the whole
    320x180 frame, 1.9 ms against 6.8 ms on carphone_pristine.mp4 (320x262).
    """

    name = "dlib"

    def __init__(self, detect_size: int = 320, upsample: int = 0, min_score: float = -0.2) -> None:
        self.detect_size = detect_size
        self.upsample = upsample
        self.min_score = min_score

    def __call__(self, frame, regions: list[Box] | None = None) -> list[Box]:
        grey, scale = as_frame(frame).grey(self.detect_size)
        if regions is None:
            return self._run(grey, scale, 0, 0)
        h, w = grey.shape
        boxes: list[Box] = []
        for r in regions:
            x0, y0 = max(0, int(r.x0 * scale)), max(0, int(r.y0 * scale))
            x0, y0 = x0 - x0 % ALIGN, y0 - y0 % ALIGN  # the whole frame's HOG cells on dlib's first two levels
            x1, y1 = min(w, int(np.ceil(r.x1 * scale))), min(h, int(np.ceil(r.y1 * scale)))
            if x1 - x0 < 16 or y1 - y0 < 16:
                continue
            for b in self._run(np.ascontiguousarray(grey[y0:y1, x0:x1]), scale, x0, y0):
                if all(iou(b, k) < 0.5 for k in boxes):  # overlapping regions find one face twice
                    boxes.append(b)
        return boxes

    def _run(self, grey: np.ndarray, scale: float, dx: int, dy: int) -> list[Box]:
        """dlib on a grey image whose (0, 0) is (dx, dy) of the detector's copy; boxes in frame pixels."""
        with _frontal_detector() as det:
            rects, scores, _ = det.run(grey, self.upsample, self.min_score)
        return [Box((r.left() + dx) / scale, (r.top() + dy) / scale, (r.right() + 1 + dx) / scale,
                    (r.bottom() + 1 + dy) / scale, float(s)) for r, s in zip(rects, scores)]


class WholeFrameDetector:
    """For inputs that are already face crops (e.g. DFEW's clip_224x224 frames)."""

    name = "none"

    def __call__(self, frame, regions: list[Box] | None = None) -> list[Box]:
        h, w = frame.shape[:2]
        return [Box(0.0, 0.0, float(w), float(h))]


def make_detector(settings: FaceSettings) -> FaceDetector:
    """The detector the settings name, at their detect size and upsampling."""
    if settings.detector == "dlib":
        return DlibDetector(detect_size=settings.detect_size, upsample=settings.upsample)
    return WholeFrameDetector()  # FaceSettings admits only the names in DETECTORS
