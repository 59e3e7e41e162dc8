"""`ModelConfig`: everything needed to rebuild a network, stored in every checkpoint (light: no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from dfer.errors import ConfigError
from dfer.models.registry import BASELINES, MODEL_NAMES
from dfer.options import ATTENTION_STAGES, flag


@dataclass
class ModelConfig:
    """Everything needed to rebuild the network; stored in every checkpoint."""

    name: str = flag("dfer_r2plus1d_18", name="model", choices=MODEL_NAMES,  # the registry's keys
                     help="the paper's network; baselines: r2plus1d_18, r3d_18, mc3_18 (plain CE)")
    num_classes: int = 7
    attention_stage: str = "layer4"  # one of ATTENTION_STAGES
    attention_reduction: int = 8  # Q/K channels = C / reduction
    embed_dim: int = 256
    attn_grid: tuple[int, int, int] = (1, 2, 2)  # pooled grid fed to the weight network
    attn_hidden: tuple[int, int, int] = (512, 256, 64)  # FC1..FC3
    dropout: float = 0.0
    zero_init_residual: bool = False  # start every residual block as the identity (helps training from scratch)

    def __post_init__(self) -> None:
        if self.name not in MODEL_NAMES:
            raise ConfigError(f"model must be one of {', '.join(MODEL_NAMES)}, got {self.name!r}")
        if self.name in BASELINES:
            self.attention_stage = "none"  # baselines have no attention block (and no center-loss head)
        if self.attention_stage not in ATTENTION_STAGES:
            raise ConfigError(f"attention_stage must be one of {', '.join(ATTENTION_STAGES)}, got {self.attention_stage!r}")
        if self.num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2, got {self.num_classes}")
        self.attn_grid = tuple(int(v) for v in self.attn_grid)
        self.attn_hidden = tuple(int(v) for v in self.attn_hidden)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)
