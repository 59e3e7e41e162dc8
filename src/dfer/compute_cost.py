"""Compute cost of the model as built: parameters and GMACs per clip.

Counter: `torch.utils.flop_counter.FlopCounterMode` (PyTorch's own). It counts the
matrix-multiply family (convolution, mm/addmm/bmm, attention) as 2 FLOPs per
multiply-accumulate; GMACs = FLOPs / 2. Element-wise ops (BN, ReLU, softmax, adds,
pooling) are not counted, as in the usual MAC conventions (fvcore, thop, ptflops).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dfer.models import build_model
from dfer.models.registry import STUDENTS
from dfer.models.students import student_clip

PAPER_GMACS = 38.66
COUNTER = "torch.utils.flop_counter.FlopCounterMode (conv, matmul, bmm; MAC = FLOP/2)"


@dataclass
class CostProfile:
    name: str
    clip: tuple[int, int, int]  # (T, H, W)
    gmacs: float
    params: int
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)  # part -> {gmacs, params}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["clip"] = list(self.clip)
        return d


def count_macs(model: nn.Module, clip: tuple[int, int, int], batch: int = 1) -> tuple[float, dict[str, float]]:
    """Total GMACs for one clip and GMACs per top-level child module."""
    t, h, w = clip
    x = torch.zeros(batch, 3, t, h, w)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    total = sum(counts.get("Global", {}).values()) / 2 / batch / 1e9
    per_child = {
        child: _subtree_flops(counts, f"{root}.{child}", module) / 2 / batch / 1e9
        for child, module in model.named_children()
    }
    return total, per_child


def _subtree_flops(counts: dict, name: str, module: nn.Module) -> float:
    """FLOPs of a module; if its own forward never ran (a parent called its children directly),
    the sum over its children, so nothing is counted twice."""
    if name in counts:
        return float(sum(counts[name].values()))
    return sum(_subtree_flops(counts, f"{name}.{n}", m) for n, m in module.named_children())


def n_params(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def profile_model(model: nn.Module, clip: tuple[int, int, int] = (16, 112, 112), name: str = "dfer") -> CostProfile:
    """Profile a dfer network with a backbone / attention / heads breakdown."""
    total, per_child = count_macs(model, clip)
    parts = {
        "backbone": ["backbone"],
        "attention": ["attention"],
        "heads": ["pool", "classifier", "center_head"],
    }
    breakdown = {}
    for part, children in parts.items():
        breakdown[part] = {
            "gmacs": sum(per_child.get(c, 0.0) for c in children),
            "params": sum(n_params(getattr(model, c, None)) for c in children),
        }
    return CostProfile(name=name, clip=tuple(clip), gmacs=total, params=n_params(model), breakdown=breakdown)


def torchvision_references(clip: tuple[int, int, int]) -> list[CostProfile]:
    """torchvision's video ResNets (random init, with their Kinetics 400-way fc) at the same clip size."""
    from torchvision.models import video as tvv

    builders: dict[str, Callable[[], nn.Module]] = {
        "torchvision r3d_18": tvv.r3d_18,
        "torchvision mc3_18": tvv.mc3_18,
        "torchvision r2plus1d_18": tvv.r2plus1d_18,
    }
    out = []
    for name, build in builders.items():
        m = build(weights=None)
        gmacs, _ = count_macs(m, clip)
        out.append(CostProfile(name=name, clip=tuple(clip), gmacs=gmacs, params=n_params(m)))
    return out


def format_table(main: CostProfile, refs: list[CostProfile]) -> str:
    t, h, w = main.clip
    lines = [
        f"Compute cost per clip of {t}x{h}x{w} (counter: {COUNTER})",
        "",
        f"{'model':<34}{'GMACs':>10}{'params (M)':>13}",
        "-" * 57,
        f"{main.name:<34}{main.gmacs:>10.2f}{main.params / 1e6:>13.2f}",
    ]
    for part, v in main.breakdown.items():
        lines.append(f"{'  ' + part:<34}{v['gmacs']:>10.3f}{v['params'] / 1e6:>13.2f}")
    for r in refs:
        lines.append(f"{r.name:<34}{r.gmacs:>10.2f}{r.params / 1e6:>13.2f}")
    lines.append(f"{'paper (Singh et al.), as reported':<34}{PAPER_GMACS:>10.2f}{'n/a':>13}")
    lines.append("")
    lines.append(f"ratio to the paper's figure: {main.gmacs / PAPER_GMACS:.3f}")
    return "\n".join(lines)


def student_costs(clip: tuple[int, int, int] = (16, 112, 112), num_classes: int = 7) -> list[dict[str, Any]]:
    """The teacher (the paper's network at `clip`) and every distillation student: network, clip, GMACs,
    parameters and how many times fewer MACs than the teacher."""
    t, h, _ = clip
    teacher = profile_model(build_model(name="dfer_r2plus1d_18", num_classes=num_classes), clip, name="teacher")
    rows = [{"student": "(teacher)", "model": "dfer_r2plus1d_18", "clip": list(clip), "gmacs": teacher.gmacs,
             "params": teacher.params, "fewer_macs": 1.0}]
    for name in STUDENTS:
        s = student_clip(name, t, h)
        cost = profile_model(build_model(name=s.model, num_classes=num_classes), (s.num_frames, s.size, s.size), name=name)
        rows.append({"student": name, "model": s.model, "clip": [s.num_frames, s.size, s.size], "gmacs": cost.gmacs,
                     "params": cost.params, "fewer_macs": teacher.gmacs / cost.gmacs})
    return rows
