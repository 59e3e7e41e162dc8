"""Clip transforms on uint8 (T, H, W, 3) arrays -> normalised float (3, T, size, size) tensors.

The same spatial crop, flip and colour change apply to every frame of a clip. Geometry runs
on uint8 with OpenCV; brightness, contrast and saturation are folded into one per-frame 3x3
colour matrix plus offset, so a clip is touched in float only twice (colour, normalise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class ClipTransformConfig:
    size: int = 112
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    scale: tuple[float, float] = (0.7, 1.0)  # random resized crop: area fraction
    ratio: tuple[float, float] = (0.85, 1.18)  # and aspect ratio
    flip: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, h, w, 3) uint8 -> (T, size, size, 3) uint8."""
    if frames.shape[1:3] == (size, size):
        return np.ascontiguousarray(frames)
    interp = cv2.INTER_AREA if frames.shape[1] > 2 * size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


def normalize(frames: np.ndarray, mean, std) -> np.ndarray:
    """(T, S, S, 3) uint8 -> (3, T, S, S) float32: (x / 255 - mean) / std, without torch (inference).

    Computed as x * (1 / (255 std)) + (-mean / std) with one rounding to float32 (the sum is exact in
    float64 for 8-bit x), which is what `to_tensor`'s fused multiply-add gives: the two agree bit for
    bit (tested), so a clip is the same whether the loader or the recogniser made it."""
    std32, mean32 = np.asarray(std, np.float32).reshape(3, 1, 1, 1), np.asarray(mean, np.float32).reshape(3, 1, 1, 1)
    scale = (np.float32(1.0) / (std32 * np.float32(255))).astype(np.float64)
    bias = (-mean32 / std32).astype(np.float64)
    x = np.ascontiguousarray(frames).transpose(3, 0, 1, 2)  # (3, T, S, S) uint8 view
    return (x * scale + bias).astype(np.float32)


def to_tensor(frames: np.ndarray, mean, std, out: torch.Tensor | None = None) -> torch.Tensor:
    """(T, S, S, 3) uint8 -> (3, T, S, S) float32, normalised; written into `out` when given (the data
    loader's batches). Torch's fused kernel, for the loader's throughput; equal to `normalize`."""
    import torch  # training and evaluation loaders only: inference on an exported model runs without torch

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)  # (3, T, S, S) uint8 view
    scale = 1.0 / (torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1) * 255)
    bias = -torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1) / torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1)
    if out is None:
        return torch.addcmul(bias, x, scale)  # one pass: uint8 -> (x/255 - mean) / std
    return torch.addcmul(bias, x, scale, out=out)


class EvalTransform:
    """Resize the (square) face crop to size x size, normalise. Deterministic.

    `raw=True` returns the uint8 (T, S, S, 3) frames instead (for `to_tensor(..., out=)`).
    """

    def __init__(self, cfg: ClipTransformConfig | None = None, raw: bool = False) -> None:
        self.cfg = cfg or ClipTransformConfig()
        self.raw = raw

    def __call__(self, frames: np.ndarray, generator: torch.Generator | None = None):
        out = resize_frames(frames, self.cfg.size)
        return out if self.raw else to_tensor(out, self.cfg.mean, self.cfg.std)


class TrainTransform:
    """Random resized crop, horizontal flip and colour jitter, identical across frames.

    `raw=True`: uint8 (T, S, S, 3) out, as for `EvalTransform`.
    """

    def __init__(self, cfg: ClipTransformConfig | None = None, raw: bool = False) -> None:
        self.cfg = cfg or ClipTransformConfig()
        self.raw = raw

    def __call__(self, frames: np.ndarray, generator: torch.Generator | None = None):
        c = self.cfg
        import torch

        u = torch.rand(8, generator=generator).numpy().astype(np.float64)  # all random draws of this clip

        def rand(k: int, lo: float, hi: float) -> float:
            return lo + (hi - lo) * float(u[k])

        t, h, w, _ = frames.shape
        area = rand(0, *c.scale) * h * w
        ratio = float(np.exp(rand(1, np.log(c.ratio[0]), np.log(c.ratio[1]))))
        cw = max(1, int(round(min(w, np.sqrt(area * ratio)))))
        ch = max(1, int(round(min(h, np.sqrt(area / ratio)))))
        x0 = min(w - cw, int(u[2] * (w - cw + 1)))
        y0 = min(h - ch, int(u[3] * (h - ch + 1)))
        flip = u[4] < c.flip
        # Colour: v' = M v + o per frame, M and o from brightness b, contrast k, saturation s.
        b = rand(5, 1 - c.brightness, 1 + c.brightness) if c.brightness else 1.0
        k = rand(6, 1 - c.contrast, 1 + c.contrast) if c.contrast else 1.0
        s = rand(7, 1 - c.saturation, 1 + c.saturation) if c.saturation else 1.0
        sat = s * np.eye(3, dtype=np.float32) + (1 - s) * np.outer(np.ones(3), _LUMA).astype(np.float32)
        mat = (k * b) * sat  # (3, 3)
        crop = frames[:, y0 : y0 + ch, x0 : x0 + cw]
        out = np.empty((t, c.size, c.size, 3), np.uint8)
        interp = cv2.INTER_AREA if ch > 2 * c.size else cv2.INTER_LINEAR
        for i in range(t):
            f = cv2.resize(crop[i], (c.size, c.size), interpolation=interp)
            if flip:
                f = cv2.flip(f, 1)
            grey = float(f[::4, ::4].mean()) * b  # contrast pivots on the frame's mean level
            affine = np.hstack([mat, np.full((3, 1), (1 - k) * grey, np.float32)])  # (3, 4)
            out[i] = cv2.transform(f, affine)  # uint8 in, saturated uint8 out (the clamp)
        return out if self.raw else to_tensor(out, c.mean, c.std)

