"""`FaceSettings`: every setting of the face pipeline (detector, tracker, crop) in one object.

The same object drives `dfer prepare` (training crops) and `dfer predict` / `Recognizer`
(inference crops). It is written into the clip cache's `meta.json` and into every checkpoint's
`preprocess.face`, so inference uses the settings the model was trained with unless the user
overrides them.

Versions: 2 is this pipeline (one online tracker with bounded look-ahead, EMA smoothing of
detections). Version 1 (dfer 0.1, no `version` key) had separate offline/online trackers; its
stored values are read as they are (keys it lacked take this version's defaults), and a cache
prepared by it is never extended with version-2 crops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from dfer.errors import ConfigError

FACE_PIPELINE_VERSION = 2
DETECTORS = ("dlib", "none")


@dataclass(frozen=True)
class FaceSettings:
    detector: str = "dlib"  # dlib (HOG frontal faces) | none (inputs are face crops already)
    detect_every: int = 3  # run the detector on every k-th frame; boxes in between are interpolated
    detect_size: int = 320  # longest side of the copy of the frame the detector sees
    upsample: int = 0  # extra dlib pyramid levels, for very small faces
    iou_threshold: float = 0.3  # a detection continues a track when their boxes overlap at least this much
    max_missed: int = 2  # detection rounds a track may miss before it ends
    smooth: float = 0.5  # weight of a track's previous box size when a new detection arrives (0: none)
    cut_threshold: float = 27.0  # a frame whose HSV change is at least this starts a new shot (0: no cuts)
    min_shot: int = 15  # frames between two cuts at least (dfer.data.shots)
    margin: float = 0.2  # crop side = (1 + 2 * margin) * the box's longer side
    size: int = 128  # side of the square face crops
    max_frames: int = 48  # prepare: at most this many frames kept per clip, spread uniformly
    version: int = FACE_PIPELINE_VERSION

    def __post_init__(self) -> None:
        checks = [
            (self.detector in DETECTORS, f"detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}"),
            (self.detect_every >= 1, f"detect_every must be >= 1, got {self.detect_every}"),
            (self.detect_size >= 32, f"detect_size must be >= 32 pixels, got {self.detect_size}"),
            (0 <= self.upsample <= 3, f"upsample must be 0..3, got {self.upsample}"),
            (0 < self.iou_threshold < 1, f"iou_threshold must be in (0, 1), got {self.iou_threshold}"),
            (self.max_missed >= 0, f"max_missed must be >= 0, got {self.max_missed}"),
            (0 <= self.smooth < 1, f"smooth must be in [0, 1), got {self.smooth}"),
            (self.cut_threshold >= 0, f"cut_threshold must be >= 0 (0: no shot cuts), got {self.cut_threshold}"),
            (self.min_shot >= 1, f"min_shot must be >= 1 frame, got {self.min_shot}"),
            (0 <= self.margin <= 1, f"margin must be in [0, 1], got {self.margin}"),
            (8 <= self.size <= 1024, f"size (face crop side) must be 8..1024 pixels, got {self.size}"),
            (self.max_frames >= 1, f"max_frames must be >= 1, got {self.max_frames}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"face settings: {msg}")

    @property
    def legacy(self) -> bool:
        return self.version < FACE_PIPELINE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> FaceSettings:
        """Stored settings as they are; no `version` key means version 1 (dfer 0.1)."""
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw.setdefault("version", 1)
        if int(kw["version"]) > FACE_PIPELINE_VERSION:
            raise ConfigError(f"face settings of pipeline version {kw['version']}: newer than this dfer reads "
                              f"({FACE_PIPELINE_VERSION}); upgrade dfer")
        return cls(**kw)

    def with_overrides(self, overrides: dict[str, Any]) -> FaceSettings:
        unknown = sorted(set(overrides) - {f.name for f in fields(self)} - {"version"})
        if unknown:
            raise ConfigError(f"unknown face setting(s): {', '.join(unknown)}")
        return replace(self, **overrides)
