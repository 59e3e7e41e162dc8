"""A job's parameters, as records: what a client may set (`JobParams`, the upload's form fields besides the
video, with their bounds written once here) and what a queued job carries (`QueuedParams`: those and what
the probe counted). The upload's checks, the OpenAPI document and the worker all read them from here.

The bounds keep a worker's memory flat for every accepted combination: a face's crop buffer holds one
window (bounded by dfer.inference.windows whatever the frame rate), the tracker at most
(max_missed + 1) x detect_every frames (<= 90); the stride changes how often windows are scored, not
what is held.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dfer.inference.settings import InferenceSettings


class JobParams(BaseModel):
    """What a client may set for a job. Every field is optional: left out, the model's own setting holds."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    stride: int | None = Field(None, ge=1, le=100_000, description="frames between windows")
    window: float | None = Field(None, ge=0.1, le=10.0, description="window span, seconds")
    detect_every: int | None = Field(None, ge=1, le=30, description="run the face detector on every k-th frame")
    min_confidence: float | None = Field(None, ge=0.0, le=1.0,
                                         description="label windows under this top probability 'uncertain'")
    explain: bool | None = Field(None, description="also make explain.mp4 (PyTorch: slower)")

    @classmethod
    def bounds(cls) -> dict[str, tuple[type, float, float]]:
        """Each numeric field's (type, lowest, highest), as the form parser checks them."""
        out = {}
        for name, f in cls.model_fields.items():
            lo = next((m.ge for m in f.metadata if hasattr(m, "ge")), None)
            hi = next((m.le for m in f.metadata if hasattr(m, "le")), None)
            if lo is not None and hi is not None:
                kind = int if "int" in str(f.annotation) else float
                out[name] = (kind, lo, hi)
        return out

    def settings(self) -> InferenceSettings:
        """This job's inference settings (what it leaves out, the model's own)."""
        face = {"detect_every": int(self.detect_every)} if self.detect_every else {}
        return InferenceSettings(window_seconds=float(self.window or 0.0), stride=int(self.stride or 0),
                                 min_confidence=float(self.min_confidence or 0.0), face=face)


class QueuedParams(JobParams):
    """A queued job's parameters: the client's, and what the probe counted (the worker's frame guard and the
    job's deadline read these)."""

    model_config = ConfigDict(extra="ignore")

    num_frames: int = Field(0, ge=0, description="frames counted when the upload was checked")
    duration_s: float = Field(0.0, ge=0.0, description="seconds of video counted when the upload was checked")

    def to_dict(self) -> dict[str, Any]:
        """The JSON the job database keeps and the API shows: only what was set."""
        return self.model_dump(exclude_unset=True)


__all__ = ["JobParams", "QueuedParams"]
