"""Distillation students: the network and clip of each student of the model registry, for a teacher's clip
(light: no torch; `dfer profile --students` and `dfer distill` both read it)."""

from __future__ import annotations

from dataclasses import dataclass

from dfer.errors import ConfigError
from dfer.models.registry import STUDENT_REGISTRY


@dataclass(frozen=True)
class StudentClip:
    model: str
    num_frames: int
    size: int


def student_clip(student: str, teacher_frames: int, teacher_size: int) -> StudentClip:
    """The student's network and clip for a teacher clip of `teacher_frames` x `teacher_size`^2."""
    if student not in STUDENT_REGISTRY:
        raise ConfigError(f"unknown student {student!r}; the students are {', '.join(STUDENT_REGISTRY)}")
    s = STUDENT_REGISTRY[student]
    frames = max(1, round(teacher_frames * s.frames_scale))
    size = max(16, 2 * round(teacher_size * s.size_scale / 2))
    return StudentClip(s.model, frames, size)
