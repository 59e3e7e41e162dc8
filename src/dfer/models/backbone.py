"""R(2+1)D-18 backbone from torchvision, module names unchanged.

`R2Plus1DBackbone.state_dict()` has exactly the keys of
`torchvision.models.video.r2plus1d_18().state_dict()` minus `fc.*`, so
torchvision's Kinetics-400 weights load with strict key matching.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18

from dfer.errors import WeightsError

WeightsSpec = None | str | Path | R2Plus1D_18_Weights

STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")
STAGE_CHANNELS = {"stem": 64, "layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}


class R2Plus1DBackbone(nn.Module):
    """torchvision's r2plus1d_18 without avgpool/fc: (B,3,T,H,W) -> (B,512,T/8,H/16,W/16)."""

    def __init__(self) -> None:
        super().__init__()
        tv = r2plus1d_18(weights=None)
        # Same attribute names as torchvision so state-dict keys match.
        self.stem = tv.stem
        self.layer1 = tv.layer1
        self.layer2 = tv.layer2
        self.layer3 = tv.layer3
        self.layer4 = tv.layer4
        self.out_channels = 512


def clean_state_dict(state: dict) -> dict:
    """Strip wrappers added by DDP / torch.compile / checkpoints and drop the Kinetics classifier."""
    for key in ("state_dict", "model"):
        if key in state and isinstance(state[key], dict):
            state = state[key]
    out = {}
    for k, v in state.items():
        for prefix in ("module.", "_orig_mod.", "backbone."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        if k.startswith("fc."):
            continue
        out[k] = v
    return out


def resolve_weights(weights: WeightsSpec) -> dict | None:
    """Turn a weights spec into a backbone state dict (None: random init).

    Accepts torchvision's `R2Plus1D_18_Weights` enum (or its name, e.g. "KINETICS400_V1"),
    which torchvision downloads and caches when online, or a path to a saved state dict.
    """
    if weights is None or weights == "" or weights == "none":
        return None
    if isinstance(weights, str) and not Path(weights).suffix and weights in R2Plus1D_18_Weights.__members__:
        weights = R2Plus1D_18_Weights[weights]
    if isinstance(weights, R2Plus1D_18_Weights):
        try:
            state = weights.get_state_dict(progress=True)
        except Exception as exc:  # offline machines end here
            raise WeightsError(
                f"could not fetch torchvision weights {weights} ({exc.__class__.__name__}: {exc}); "
                "on an offline machine save them elsewhere with "
                "torch.save(r2plus1d_18(weights='KINETICS400_V1').state_dict(), 'r2p1d_k400.pt') "
                "and pass the file path instead"
            ) from exc
        return clean_state_dict(state)
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"backbone weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"cannot read backbone weights {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"backbone weights {path} hold a {type(state).__name__}, not a state dict")
    return clean_state_dict(state)


def load_backbone_weights(backbone: R2Plus1DBackbone, weights: WeightsSpec) -> None:
    state = resolve_weights(weights)
    if state is None:
        return
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or bad_shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        if bad_shape:
            parts.append(f"{len(bad_shape)} shape mismatches (e.g. {bad_shape[:3]})")
        raise WeightsError(f"weights {weights} do not match the R(2+1)D-18 backbone: " + "; ".join(parts))
    backbone.load_state_dict(state, strict=True)
