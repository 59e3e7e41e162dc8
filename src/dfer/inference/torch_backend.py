"""The PyTorch runtime: a dfer network in eager PyTorch (the only runtime that needs torch at inference)."""

from __future__ import annotations

import numpy as np
import torch

from dfer.errors import CheckpointError


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointError(f"device {device!r} asked for, but this machine has no CUDA GPU; run on the cpu device")
    return torch.device(device)


class TorchBackend:
    name = "torch"
    concurrency = 1

    def __init__(self, model: torch.nn.Module, device: str = "auto", channels_last: bool = False) -> None:
        self.device = resolve_device(device)
        self.channels_last = channels_last
        self.model = model.eval().to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d)
        precision = "bf16 autocast" if self.device.type == "cuda" else "fp32"
        self.precision = "bf16" if self.device.type == "cuda" else "fp32"
        self.detail = f"torch {torch.__version__} {self.device.type} {precision}" + (" channels_last_3d" if channels_last else "")

    @torch.inference_mode()
    def __call__(self, clips: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(clips, dtype=np.float32)).to(self.device)  # (B, 3, T, S, S)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            logits = self.model(x).logits
        return logits.float().cpu().numpy()  # (B, K)
