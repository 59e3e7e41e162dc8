"""Face-crop clips rendered directly at crop size: int8 calibration and quick checks without data."""

from __future__ import annotations

import numpy as np

from dfer.synth.face import NEUTRAL, Expression, Identity, draw_face


def random_expression(rng: np.random.Generator) -> Expression:
    return Expression(**{k: float(rng.uniform(-1, 1) if k in ("smile", "brow_raise", "brow_inner", "eye_open", "mouth_width")
                                  else rng.uniform(0, 1)) for k in NEUTRAL.__dataclass_fields__})


def face_clips(n: int, frames: int, size: int, seed: int = 0) -> np.ndarray:
    """(n, frames, size, size, 3) uint8: one face per clip, framed as the face pipeline crops it
    (box side x 1.4), moving an expression from neutral to a random apex, with small head motion."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, frames, size, size, 3), np.uint8)
    for i in range(n):
        ident = Identity.random(rng)
        apex = random_expression(rng)
        bg = rng.integers(30, 200, 3)
        scale = size / 190 * rng.uniform(0.95, 1.1)
        for t in range(frames):
            img = np.empty((size, size, 3), np.uint8)
            img[:] = bg
            k = t / max(1, frames - 1)
            center = (size / 2 + 2 * np.sin(3 * k + i), size / 2 + 2 * np.cos(2 * k + i))
            draw_face(img, center, scale, NEUTRAL.blend(apex, k), ident, roll_deg=6 * np.sin(2 * k + i))
            out[i, t] = img
    return out
