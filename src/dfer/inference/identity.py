"""A face track stays one person: the check the tracker runs at each detection that continues a track.

A shot cut ends every track, but a cut can go unseen (a dissolve between two speakers, a person who
walks off as another walks into the same place within a few detection rounds), and then the IoU
tracker has no reason to end the track. The rule:

- reference: a track's first detected face at least MIN_SIDE (40) px tall is described (dlib's 128-d
  descriptor, dfer.inference.people) and its appearance kept as a signature (the face's 24 x 24 grey
  copy, zero mean, unit norm);
- gate: at every later detection the face's signature is compared with the one of the last check
  (correlation; about 0.1 ms). The face is described again only when the correlation falls under
  GATE (0.6: the face looks different from when it was last checked), or PERIOD (10) seconds after
  the last check whatever it looks like, and never within MIN_GAP (1) second of the last check;
- verdict: a descriptor farther than `threshold` (dlib's 0.6, --same-person) from the reference splits
  the track at that detection: the old track ends there, the detection starts a new one (with this
  descriptor as its reference). A match makes this look the one the gate compares with next.

Cost: one descriptor per track (about 0.2 s on a 2-core CPU) plus one at each gate or period; a
still talking head costs about one descriptor per 10 s of video. Measured in benchmarks/bench_identity.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfer.data.faces import Box
from dfer.data.frame import Frame
from dfer.inference.people import FaceDescriber, describer
from dfer.options import SAME_PERSON

MIN_SIDE = 40  # px: smaller faces are not judged
GATE = 0.6  # signature correlation under which a face is described again
PERIOD = 10.0  # seconds between checks of a face that keeps looking alike
MIN_GAP = 1.0  # seconds between two checks of one track at least
SIGNATURE = 24  # px, the side of the grey copy a signature is made of


def signature(face: np.ndarray) -> np.ndarray:
    """RGB face crop -> (SIGNATURE**2,) float32, zero mean and unit norm."""
    grey = cv2.cvtColor(cv2.resize(face, (SIGNATURE, SIGNATURE), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    v = grey.astype(np.float32).ravel()
    v -= v.mean()
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 1e-6 else v


@dataclass
class _State:
    reference: np.ndarray  # (128,) descriptor of the track's first good face
    look: np.ndarray  # signature at the last check
    checked: int  # frame of the last check


class IdentityGate:
    """dfer.data.tracking.IdentityCheck: `same(track, frame index, frame, box)` is False where the track's
    face has become someone else. `fps` turns PERIOD and MIN_GAP into frames."""

    def __init__(self, fps: float, threshold: float = SAME_PERSON, face_describer: FaceDescriber | None = None) -> None:
        self.threshold = threshold
        self.period = max(1, int(round(PERIOD * (fps or 25.0))))
        self.min_gap = max(1, int(round(MIN_GAP * (fps or 25.0))))
        self._describer = face_describer
        self._tracks: dict[int, _State] = {}
        self._last: tuple[int, Box, np.ndarray] | None = None  # (frame, box, descriptor) of the last description
        self.descriptors = 0  # computed, for the cost
        self.seconds = 0.0

    def same(self, track_id: int, index: int, frame: Frame, box: Box) -> bool:
        side = max(box.width, box.height)
        if side < MIN_SIDE:
            return True
        state = self._tracks.get(track_id)
        face = frame.region(int(box.x0), int(box.y0), int(np.ceil(box.x1)), int(np.ceil(box.y1)))
        if face.size == 0:
            return True
        look = signature(face)
        if state is None:
            self._tracks[track_id] = _State(self._describe(index, frame, box), look, index)
            return True
        due = index - state.checked >= self.period or float(look @ state.look) < GATE
        if not due or index - state.checked < self.min_gap:
            return True
        now = self._describe(index, frame, box)
        if float(np.linalg.norm(now - state.reference)) > self.threshold:
            return False
        state.look, state.checked = look, index
        return True

    def end(self, track_id: int) -> None:
        self._tracks.pop(track_id, None)

    def _describe(self, index: int, frame: Frame, box: Box) -> np.ndarray:
        """The face's descriptor; a split's new track reuses the one that split it (same frame and box)."""
        if self._last is not None and self._last[0] == index and self._last[1] == box:
            return self._last[2]
        import time

        t0 = time.perf_counter()
        if self._describer is None:
            self._describer = describer()
        side = max(box.width, box.height)
        pad = side / 2
        x0, y0 = int(max(0, box.x0 - pad)), int(max(0, box.y0 - pad))
        around = frame.region(x0, y0, int(box.x1 + pad), int(box.y1 + pad))
        d = self._describer(around, (box.x0 - x0, box.y0 - y0, box.x1 - x0, box.y1 - y0))
        self._last = (index, box, d)
        self.descriptors += 1
        self.seconds += time.perf_counter() - t0
        return d


__all__ = ["GATE", "IdentityGate", "MIN_SIDE", "PERIOD", "signature"]
