"""From a video to the face frames of its main track (the training path)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dfer.data.crop import DEFAULT_MARGIN, crop_face
from dfer.data.faces import FaceDetector
from dfer.data.tracking import FaceTracker, Track, main_track
from dfer.data.video import VideoInfo, iter_frames, probe
from dfer.errors import NoFaceError


@dataclass
class FaceSettings:
    """Face pipeline settings; stored in the cache meta and in checkpoints."""

    detector: str = "dlib"
    detect_size: int = 320  # longest side of the frame the detector sees
    upsample: int = 0  # extra dlib pyramid levels for very small faces
    detect_every: int = 3  # run the detector on every k-th frame, track in between
    margin: float = DEFAULT_MARGIN
    size: int = 128  # side of the stored square crops (training crops 112 out of it)
    max_frames: int = 48  # at most this many frames per clip are kept, spread uniformly


@dataclass
class FaceClip:
    frames: np.ndarray  # (N, S, S, 3) uint8 RGB crops of the main face
    frame_indices: list[int]  # source frame index of each crop
    info: VideoInfo
    decoded_frames: int
    face_frames: int  # frames the main track covers
    num_tracks: int
    tracks: list[Track] = field(default_factory=list, repr=False)


def keep_indices(num_frames: int, max_frames: int) -> set[int]:
    if num_frames <= max_frames:
        return set(range(num_frames))
    return {int(v) for v in np.floor((np.arange(max_frames) + 0.5) * num_frames / max_frames)}


def extract_face_clip(path: str | Path, detector: FaceDetector, settings: FaceSettings) -> FaceClip:
    """Decode once, detect + track, keep up to `max_frames` crops of the main face.

    Only the frames to keep are held in memory, so long 1080p videos stay cheap.
    """
    info = probe(path)
    keep = keep_indices(info.num_frames, settings.max_frames)
    tracker = FaceTracker(detector, detect_every=settings.detect_every)
    held: dict[int, np.ndarray] = {}
    n = 0
    for i, frame in enumerate(iter_frames(path)):
        tracker.update(i, frame)
        if i in keep:
            held[i] = frame
        n = i + 1
    if tracker.num_frames and not tracker.should_detect(n - 1):
        tracker.update(n - 1, frame, force=True)  # detect on the last frame too, so holds end at the video's end
    tracks = tracker.finish()
    main = main_track(tracks)
    if main is None:
        raise NoFaceError(f"{path}: no face found in {n} frames (detector {detector.name})")
    idx = sorted(i for i in held if main.box_at(i) is not None)
    if not idx:
        raise NoFaceError(f"{path}: the main face is not visible in any kept frame")
    crops = np.stack([crop_face(held[i], main.box_at(i), settings.size, settings.margin) for i in idx])
    return FaceClip(crops, idx, info, n, len(main.boxes), len(tracks), tracks)
