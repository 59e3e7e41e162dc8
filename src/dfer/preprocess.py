"""What a model needs of its input (`Preprocess`) and what it was trained on (`model_info`): read from a
checkpoint or an exported model's metadata, without torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dfer.data.transforms import ClipTransformConfig, EvalTransform, normalize, resize_frames


@dataclass
class Preprocess:
    """How a clip must be made for this model: the face pipeline, then T frames of size x size."""

    num_frames: int = 16
    size: int = 112
    mean: tuple[float, float, float] = (0.43216, 0.394666, 0.37645)
    std: tuple[float, float, float] = (0.22803, 0.22145, 0.216989)
    face: dict[str, Any] = field(default_factory=dict)  # FaceSettings of the cache the model was trained on
    clip_seconds: float = 0.0  # median duration of the training clips (inference window); 0: unknown

    def transform_config(self) -> ClipTransformConfig:
        """The evaluation transform's settings (resize to size x size, normalise): what training's
        validation, `dfer evaluate`, export's check clips and the recogniser all apply."""
        return ClipTransformConfig(size=self.size, mean=tuple(self.mean), std=tuple(self.std))

    def eval_transform(self) -> EvalTransform:
        return EvalTransform(self.transform_config())

    def clip(self, frames: np.ndarray) -> np.ndarray:
        """(T, h, w, 3) uint8 face crops -> (3, T, size, size) float32, normalised: the evaluation transform
        (`eval_transform()` gives the same numbers as a tensor, bit for bit), without torch."""
        return normalize(resize_frames(frames, self.size), self.mean, self.std)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocess:
        return cls(
            num_frames=int(d["num_frames"]), size=int(d["size"]), mean=tuple(d["mean"]), std=tuple(d["std"]),
            face=dict(d.get("face") or {}), clip_seconds=float(d.get("clip_seconds", 0.0)),
        )


SYNTHETIC_WARNING = ("SYNTHETIC-ONLY MODEL: trained only on dfer synth's cartoon faces, never on people; "
                     "its labels on real faces mean nothing")
SYNTHETIC_SHORT = "SYNTHETIC-ONLY MODEL: labels on real faces mean nothing"  # where one short line must do


def model_info(ckpt) -> dict[str, Any]:
    """What the model was trained on and its calibration, shown beside its labels (predict, the
    service, exported models), from a dfer.checkpoint.Checkpoint. A checkpoint without a temperature
    (trained before dfer fitted one) gets 1.0, and says so."""
    split = ckpt.split
    synthetic = bool(split.get("synthetic", False))
    cal = ckpt.calibration or {}
    return {"dataset": str(split.get("dataset", "")), "synthetic": synthetic,
            "temperature": float(cal.get("temperature", 1.0)), "calibrated": "temperature" in cal,
            **({"warning": SYNTHETIC_WARNING} if synthetic else {})}
