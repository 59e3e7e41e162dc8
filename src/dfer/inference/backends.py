"""Inference backends: one call, normalised clips (B, 3, T, S, S) float32 -> logits (B, K) float32.

- `torch`: the network in eager PyTorch (CPU or CUDA; bf16 autocast on CUDA);
- `onnx`: ONNX Runtime on an exported model (fp32 or static int8, see dfer.inference.export).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from dfer.errors import CheckpointError

BACKENDS = ("torch", "onnx")


class Backend(Protocol):
    name: str

    def __call__(self, clips: np.ndarray) -> np.ndarray: ...


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointError(f"device {device!r} asked for, but this machine has no CUDA GPU; use --device cpu")
    return torch.device(device)


class TorchBackend:
    name = "torch"

    def __init__(self, model: torch.nn.Module, device: str = "auto", channels_last: bool = False) -> None:
        self.device = resolve_device(device)
        self.channels_last = channels_last
        self.model = model.eval().to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d)

    @torch.inference_mode()
    def __call__(self, clips: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(clips, dtype=np.float32)).to(self.device)  # (B, 3, T, S, S)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            logits = self.model(x).logits
        return logits.float().cpu().numpy()  # (B, K)


class OnnxBackend:
    name = "onnx"

    def __init__(self, path: str | Path, threads: int = 0, device: str = "cpu") -> None:
        import onnxruntime as ort

        self.path = Path(path)
        so = ort.SessionOptions()
        if threads > 0:
            so.intra_op_num_threads = threads
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") or device == "auto":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            elif device.startswith("cuda"):
                raise CheckpointError("ONNX Runtime here has no CUDA provider (install onnxruntime-gpu); use --device cpu")
        try:
            self.session = ort.InferenceSession(str(self.path), so, providers=providers)
        except Exception as exc:
            raise CheckpointError(f"{self.path}: not a loadable ONNX model ({exc.__class__.__name__}: {str(exc)[:200]})") from None
        self.input = self.session.get_inputs()[0].name

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        out = self.session.run(["logits"], {self.input: np.ascontiguousarray(clips, dtype=np.float32)})
        return out[0]
