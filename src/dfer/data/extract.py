"""From a video to the face crops of its main face (the training path).

The video is read once through the one frame source, faces are followed by the one tracker
and cropped by the one crop function, exactly as `Recognizer` does at inference; only the
choice differs: the main face (largest sum of box areas over frames: size x persistence),
on at most `max_frames` frames spread uniformly over the video.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from dfer.data.crop import crop_face
from dfer.data.face_settings import FaceSettings
from dfer.data.faces import FaceDetector
from dfer.data.tracking import FaceTracker, TrackedBox
from dfer.data.video import open_source
from dfer.errors import NoFaceError


@dataclass
class FaceClip:
    frames: np.ndarray  # (N, S, S, 3) uint8 RGB crops of the main face
    frame_indices: list[int]  # source frame index of each crop
    boxes: np.ndarray  # (N, 4) float64 x0, y0, x1, y1 of each crop's face box, in source pixels
    detected: list[bool]  # per crop: the box was found by the detector (else interpolated or held)
    fps: float
    decoded_frames: int
    face_frames: int  # frames the main face is on
    num_tracks: int

    def trace(self) -> dict[str, list]:
        """Per kept frame: source frame index, face box, detected or filled in (stored in the cache)."""
        return {"frame": list(self.frame_indices), "box": [[round(float(v), 2) for v in b] for b in self.boxes],
                "detected": list(self.detected)}


def keep_indices(num_frames: int, max_frames: int) -> set[int]:
    if num_frames <= max_frames:
        return set(range(num_frames))
    return {int(v) for v in np.floor((np.arange(max_frames) + 0.5) * num_frames / max_frames)}


def extract_face_clip(path: str | Path, detector: FaceDetector, settings: FaceSettings,
                      stop: int | None = None) -> FaceClip:
    """Decode once, detect + track, keep up to `max_frames` crops of the main face.

    `stop`: read only the first `stop` frames (a posed sequence cut at its apex frame).
    Only crops of the frames to keep are held in memory, so long 1080p videos stay cheap.
    """
    src = open_source(Path(path))
    total = src.num_frames or 0
    if stop is not None:
        total = min(total, stop) if total else stop
    keep = keep_indices(total, settings.max_frames)
    tracker = FaceTracker(detector, settings)
    frames = src.decoded() if stop is None else islice(src.decoded(), stop)
    area: dict[int, float] = defaultdict(float)
    covered: dict[int, int] = defaultdict(int)
    kept: dict[int, list[tuple[int, np.ndarray, TrackedBox]]] = defaultdict(list)
    n = 0
    for tf in tracker.run(frames):
        n = tf.index + 1
        for tid, tb in tf.faces.items():
            area[tid] += tb.box.area
            covered[tid] += 1
            if tf.index in keep:
                kept[tid].append((tf.index, crop_face(tf.frame, tb.box, settings.size, settings.margin), tb))
    if not area:
        raise NoFaceError(f"{path}: no face found in {n} frames (detector {detector.name})")
    main = max(area, key=lambda t: (area[t], -t))
    items = kept.get(main, [])
    if not items:
        raise NoFaceError(f"{path}: the main face is not visible in any kept frame")
    return FaceClip(
        frames=np.stack([c for _, c, _ in items]),
        frame_indices=[i for i, _, _ in items],
        boxes=np.stack([tb.box.as_array() for _, _, tb in items]),
        detected=[tb.detected for _, _, tb in items],
        fps=src.fps, decoded_frames=n, face_frames=covered[main], num_tracks=len(area),
    )
