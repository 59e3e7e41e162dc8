"""Clip transforms on uint8 (T, H, W, 3) arrays -> normalised float (3, T, size, size) tensors.

The same spatial crop, flip and colour change apply to every frame of a clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


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


def _normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype).view(3, 1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(3, 1, 1, 1)
    return (x - m) / s


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """(T, 3, h, w) float -> (T, 3, size, size)."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)


class EvalTransform:
    """Resize the (square) face crop to size x size, normalise. Deterministic."""

    def __init__(self, cfg: ClipTransformConfig | None = None) -> None:
        self.cfg = cfg or ClipTransformConfig()

    def __call__(self, frames: np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255)  # (T, 3, H, W)
        x = _resize(x, self.cfg.size)
        return _normalize(x.permute(1, 0, 2, 3), self.cfg.mean, self.cfg.std)  # (3, T, S, S)


class TrainTransform:
    """Random resized crop, horizontal flip and colour jitter, identical across frames."""

    def __init__(self, cfg: ClipTransformConfig | None = None) -> None:
        self.cfg = cfg or ClipTransformConfig()

    def __call__(self, frames: np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        c = self.cfg
        g = generator

        def rand(lo: float, hi: float) -> float:
            return lo + (hi - lo) * float(torch.rand((), generator=g))

        t, h, w, _ = frames.shape
        area = rand(*c.scale) * h * w
        ratio = float(np.exp(rand(np.log(c.ratio[0]), np.log(c.ratio[1]))))
        cw = int(round(min(w, np.sqrt(area * ratio))))
        ch = int(round(min(h, np.sqrt(area / ratio))))
        x0 = int(torch.randint(0, w - cw + 1, (), generator=g))
        y0 = int(torch.randint(0, h - ch + 1, (), generator=g))
        crop = np.ascontiguousarray(frames[:, y0 : y0 + ch, x0 : x0 + cw])
        x = torch.from_numpy(crop).permute(0, 3, 1, 2).float().div_(255)  # (T, 3, ch, cw)
        x = _resize(x, c.size)
        if float(torch.rand((), generator=g)) < c.flip:
            x = x.flip(-1)
        if c.brightness:
            x = x * rand(1 - c.brightness, 1 + c.brightness)
        if c.contrast:
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * rand(1 - c.contrast, 1 + c.contrast) + mean
        if c.saturation:
            gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
            x = (x - gray) * rand(1 - c.saturation, 1 + c.saturation) + gray
        x = x.clamp_(0, 1)
        return _normalize(x.permute(1, 0, 2, 3), c.mean, c.std)  # (3, T, S, S)
