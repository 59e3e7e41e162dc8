"""Devices, precision and processes: a Lightning Fabric made from the runtime config."""

from __future__ import annotations

import torch

from dfer.engine.config import TrainConfig


def use_cuda(cfg: TrainConfig) -> bool:
    return torch.cuda.is_available() and cfg.runtime.accelerator in ("auto", "cuda", "gpu")


def resolve_precision(cfg: TrainConfig) -> str:
    """`auto`: bf16 autocast on a GPU that has it (fp16 otherwise), full fp32 on CPU.

    CPU stays fp32: oneDNN's bf16 conv3d weight gradient goes NaN/inf at temporal size 2.
    """
    if cfg.runtime.precision != "auto":
        return cfg.runtime.precision
    if use_cuda(cfg):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)


def make_fabric(cfg: TrainConfig):
    """A launched Lightning Fabric for the runtime settings (one process per device)."""
    from lightning_fabric import Fabric

    rt = cfg.runtime
    strategy = rt.strategy
    if strategy == "auto":
        strategy = "ddp" if rt.devices * rt.num_nodes > 1 else "auto"
    fabric = Fabric(accelerator="cuda" if use_cuda(cfg) else "cpu", devices=rt.devices, num_nodes=rt.num_nodes,
                    strategy=strategy, precision=resolve_precision(cfg))
    fabric.launch()
    return fabric
