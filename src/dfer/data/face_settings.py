"""`FaceSettings`: every setting of the face pipeline (detector, tracker, crop) in one object.

The same object drives `dfer prepare` (training crops) and `dfer predict` / `Recognizer`
(inference crops). It is written into the clip cache's `meta.json` and into every checkpoint's
`preprocess.face`, so inference uses the settings the model was trained with unless the user
overrides them.

Versions: 3 is this pipeline: frames as decoded (the detector's grey copy from the Y plane, crops
converted from their regions), detection rounds that look only around the faces being followed
between whole-frame scans, and the adaptive shot-cut rule on luma and chroma (dfer.data.shots).
Version 2 (one online tracker with bounded look-ahead, EMA smoothing of detections) scanned every
round's whole frame and cut on an HSV threshold (`cut_threshold`); version 1 (dfer 0.1, no `version`
key) had separate offline/online trackers. Stored values of earlier versions are read as they are
(keys they lacked take this version's defaults; a zero `cut_threshold` still means no cuts), and a
cache prepared by an earlier version is never extended with this version's crops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from dfer.errors import ConfigError
from dfer.options import flag

FACE_PIPELINE_VERSION = 3
DETECTORS = ("dlib", "none")


@dataclass(frozen=True)
class FaceSettings:
    """Each field made with `flag` is also a command-line flag of `dfer prepare` and `dfer predict`."""

    detector: str = flag("dlib", help="dlib (HOG frontal faces) or none (inputs are face crops already)",
                         choices=DETECTORS)
    detect_every: int = flag(3, help="run the face detector on every k-th frame, interpolate in between",
                             kind="positive_int")
    detect_size: int = flag(320, help="longest side of the frame copy the detector sees, in pixels", kind="detect_size")
    upsample: int = flag(0, help="extra dlib upsampling levels, for small faces (0..3)", kind="upsample")
    iou_threshold: float = 0.3  # a detection continues a track when their boxes overlap at least this much
    max_missed: int = flag(2, help="detection rounds a face may be missed before its track ends", kind="nonneg_int")
    smooth: float = flag(0.5, help="weight of a face's previous box size at each detection (0: no smoothing)",
                         kind="smooth")
    full_scan_every: int = flag(4, help="detection rounds between whole-frame scans for new faces; the rounds "
                                        "between look only around the faces being followed (1: always the whole frame)",
                                kind="positive_int")
    cut_ratio: float = flag(3.0, help="a frame whose change is this many times its neighbours' starts a new shot "
                                      "and ends every face track (0: no cuts)", kind="nonneg_float")
    cut_min: float = flag(5.0, help="smallest change (mean levels of Y+U+V) that can be a shot cut",
                          kind="nonneg_float")
    min_shot: int = flag(15, help="frames between two shot cuts at least", kind="positive_int")
    margin: float = flag(0.2, help="crop margin on each side, as a fraction of the face box", kind="fraction")
    size: int = flag(128, help="side of the square face crops, in pixels", kind="crop_size")
    max_frames: int = flag(48, help="frames kept per clip, spread uniformly (prepare)", kind="positive_int")
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
            (self.full_scan_every >= 1, f"full_scan_every must be >= 1, got {self.full_scan_every}"),
            (self.cut_ratio >= 0, f"cut_ratio must be >= 0 (0: no shot cuts), got {self.cut_ratio}"),
            (self.cut_min >= 0, f"cut_min must be >= 0, got {self.cut_min}"),
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
        if d.get("cut_threshold") == 0:  # versions 1-2: a zero HSV threshold turned cuts off
            d.setdefault("cut_ratio", 0.0)
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
