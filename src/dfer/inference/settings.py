"""How a video is analysed: what the caller asks (`InferenceSettings`) and what a run uses once every
default is decided (`ResolvedSettings`, written into summary.json)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dfer.data.face_settings import FaceSettings
from dfer.inference.episodes import EpisodeRule
from dfer.options import SAME_PERSON


@dataclass
class InferenceSettings:
    """How a video is cut into windows; face settings come from the checkpoint unless overridden."""

    window_seconds: float = 0.0  # span of a window; 0: the checkpoint's training clip length (else 2 s)
    stride: int = 0  # frames between windows of a track; 0: one window per second of video
    batch_size: int = 8  # windows per backend call
    min_track_frames: int = 8  # a face seen on fewer frames gets no prediction
    min_confidence: float = 0.0  # a window whose top probability is lower is labelled UNCERTAIN (probabilities kept)
    episodes: EpisodeRule = field(default_factory=EpisodeRule)  # how windows become expression episodes
    face: dict[str, Any] = field(default_factory=dict)  # FaceSettings overrides, e.g. {"detect_every": 5}
    people: bool = True  # join tracks into people (the `people` extra)
    identity_check: bool = True  # with people: split a track whose face becomes someone else (dfer.inference.identity)
    same_person: float = SAME_PERSON  # descriptor distance under which two tracks are one person
    gallery: str = ""  # a folder of known people (dfer.inference.people.Gallery): matching people get their name
    save_descriptors: bool = False  # keep the face descriptors for descriptors.npz (never written otherwise)


@dataclass
class ResolvedSettings:
    """What one run on a video uses once every default is decided (its frame rate known): summary.json's
    `settings`, with the same keys in the same order (to_dict)."""

    backend: str  # the runtime and precision, e.g. "openvino bf16"
    backend_choice: dict[str, Any]  # why (dfer.inference.runtime_choice)
    window_frames: int  # frames one prediction covers
    window_seconds: float
    stride: int  # frames between predictions
    num_frames: int  # T of the model's clip
    size: int  # H = W of the model's clip
    face: FaceSettings  # the face pipeline, with this run's overrides applied
    face_overrides: dict[str, Any]  # what differs from the checkpoint's face settings
    model: dict[str, Any]
    temperature: float
    min_confidence: float
    episodes: EpisodeRule

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "backend_choice": self.backend_choice, "window_frames": self.window_frames,
                "window_seconds": self.window_seconds, "stride": self.stride, "num_frames": self.num_frames,
                "size": self.size, "face": self.face.to_dict(), "face_overrides": self.face_overrides,
                "model": self.model, "temperature": self.temperature, "min_confidence": self.min_confidence,
                "episodes": {"min_seconds": self.episodes.min_seconds, "margin": self.episodes.margin}}


__all__ = ["InferenceSettings", "ResolvedSettings"]
