"""A face track stays one person: the check the tracker runs at each detection that continues a track.

A shot cut ends every track, but a cut can go unseen (a dissolve between two speakers, a person who
walks off as another walks into the same place within a few detection rounds), and then the IoU
tracker has no reason to end the track. The rule:

- reference: a track's first detected face at least MIN_SIDE (40) px tall is described (dlib's 128-d
  descriptor, dfer.inference.people);
- check: every PERIOD (10) seconds of video, at the next detection of the track, its face is described
  again; a descriptor farther than `threshold` (dlib's 0.6, --same-person) from the reference splits
  the track at that detection: the old track ends there, the detection starts a new one (with this
  descriptor as its reference).
Why no cheaper appearance gate in front of it: measured on real faces (photos of 13 people; a talking
head over 72 frames), a face's 24 x 24 grey copy, even aligned on its landmarks, correlates with
another person's about as well as with itself after a smile or a change of box size (medians 0.43 vs
0.66; a smile drops a track's own to 0.72), while dlib's descriptor separates them cleanly (same
person 0.29-0.51, another 0.73-0.99, 5th to 95th percentile). A swap is found within PERIOD seconds.

Cost: one descriptor per track and one per face per 10 s of video: 0.09-0.2 s each on a 2-core CPU
(dlib holds the GIL while it describes): 1-2% of real time per face. Measured in
benchmarks/bench_identity.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfer.data.faces import Box
from dfer.data.frame import Frame
from dfer.inference.people import FaceDescriber, describer
from dfer.options import SAME_PERSON

MIN_SIDE = 40  # px: smaller faces are not judged
PERIOD = 10.0  # seconds of video between two checks of a face


@dataclass
class _State:
    reference: np.ndarray  # (128,) descriptor of the track's first good face
    checked: int  # frame of the last check


class DescriptorCheck:
    """dfer.data.tracking.IdentityCheck: `same(track, frame index, frame, box)` is False where the track's
    face has become someone else. `fps` turns PERIOD into frames."""

    def __init__(self, fps: float, threshold: float = SAME_PERSON, face_describer: FaceDescriber | None = None,
                 period: float = PERIOD) -> None:
        self.threshold = threshold
        self.period = max(1, int(round(period * (fps or 25.0))))
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
        if state is None:
            self._tracks[track_id] = _State(self._describe(index, frame, box), index)
            return True
        if index - state.checked < self.period:
            return True
        now = self._describe(index, frame, box)
        if float(np.linalg.norm(now - state.reference)) > self.threshold:
            return False
        state.checked = index
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


__all__ = ["DescriptorCheck", "MIN_SIDE", "PERIOD"]
