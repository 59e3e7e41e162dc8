"""Clip sampling: which source frames make a T-frame clip.

- `UniformSampler`: T frames evenly spread over the video (evaluation; deterministic).
- `SegmentSampler`: the video cut into T equal segments, one random frame from each
  (training; temporal jitter as in TSN).
Videos shorter than T are padded with their last frame, never wrapped around.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np

from dfer.errors import ConfigError


class ClipIndices(NamedTuple):
    indices: np.ndarray  # (T,) int64 frame indices into the source, non-decreasing
    num_source_frames: int
    padded: int  # how many trailing entries repeat the last frame


class ClipSampler(Protocol):
    num_frames: int

    def __call__(self, num_source_frames: int, rng: np.random.Generator | None = None) -> ClipIndices: ...


def _pad(idx: np.ndarray, n: int, t: int) -> ClipIndices:
    if n >= t:
        return ClipIndices(idx.astype(np.int64), n, 0)
    out = np.concatenate([np.arange(n), np.full(t - n, n - 1)]).astype(np.int64)
    return ClipIndices(out, n, t - n)


class UniformSampler:
    def __init__(self, num_frames: int = 16) -> None:
        self.num_frames = num_frames

    def __call__(self, num_source_frames: int, rng: np.random.Generator | None = None) -> ClipIndices:
        n, t = num_source_frames, self.num_frames
        if n <= 0:
            raise ValueError("cannot sample a clip from 0 frames")
        # Centre of each of T equal segments.
        idx = np.floor((np.arange(t) + 0.5) * n / t)
        return _pad(np.minimum(idx, n - 1), n, t)


class SegmentSampler:
    def __init__(self, num_frames: int = 16) -> None:
        self.num_frames = num_frames

    def __call__(self, num_source_frames: int, rng: np.random.Generator | None = None) -> ClipIndices:
        n, t = num_source_frames, self.num_frames
        if n <= 0:
            raise ValueError("cannot sample a clip from 0 frames")
        if n < t:
            return _pad(np.arange(n), n, t)
        rng = rng if rng is not None else np.random.default_rng()
        edges = np.linspace(0, n, t + 1)
        lo, hi = np.floor(edges[:-1]), np.maximum(np.floor(edges[1:]), np.floor(edges[:-1]) + 1)
        idx = lo + np.floor(rng.random(t) * (hi - lo))
        return _pad(np.minimum(idx, n - 1), n, t)


def make_sampler(kind: str, num_frames: int = 16) -> ClipSampler:
    kinds = {"uniform": UniformSampler, "segment": SegmentSampler}
    if kind not in kinds:
        raise ConfigError(f"unknown sampler {kind!r}; choose from {sorted(kinds)}")
    return kinds[kind](num_frames)
