"""Video ResNet-18 backbones from torchvision (R(2+1)D-18, R3D-18, MC3-18), module names unchanged.

`R2Plus1DBackbone.state_dict()` has exactly the keys of
`torchvision.models.video.r2plus1d_18().state_dict()` minus `fc.*`, so
torchvision's Kinetics-400 weights load with strict key matching.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dfer.errors import WeightsError
from dfer.models import registry

if TYPE_CHECKING:
    from torchvision.models.video import MC3_18_Weights, R2Plus1D_18_Weights, R3D_18_Weights

    WeightsSpec = None | str | Path | R2Plus1D_18_Weights | R3D_18_Weights | MC3_18_Weights
else:
    WeightsSpec = Any

# torchvision's video ResNet-18 family (the registry's backbones). torchvision is imported when a network
# is built, not when dfer is imported: it pulls in torch._dynamo (about 2 s), which every CLI start would pay.
ARCHS = registry.ARCHS


def torchvision_arch(arch: str):
    """(builder, Kinetics-400 weights enum) of a torchvision video ResNet-18."""
    from torchvision.models import video

    return {"r2plus1d_18": (video.r2plus1d_18, video.R2Plus1D_18_Weights), "r3d_18": (video.r3d_18, video.R3D_18_Weights),
            "mc3_18": (video.mc3_18, video.MC3_18_Weights)}[arch]


STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")
STAGE_CHANNELS = {"stem": 64, "layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}


class VideoBackbone(nn.Module):
    """A torchvision video ResNet-18 without avgpool/fc: (B,3,T,H,W) -> (B,512,T',H/16,W/16).

    `state_dict()` has exactly torchvision's keys minus `fc.*`, so its Kinetics-400 weights load
    with strict key matching. `width` < 1 (R(2+1)D only) scales every stage's channels, built from
    torchvision's own blocks (a distillation student; no pretrained weights exist for it).
    """

    def __init__(self, arch: str = "r2plus1d_18", width: float = 1.0) -> None:
        super().__init__()
        self.arch = arch
        self.width = width
        if width == 1.0:
            tv = torchvision_arch(arch)[0](weights=None)
        elif arch == "r2plus1d_18":
            tv = _narrow_r2plus1d(width)
        else:
            raise ValueError(f"only r2plus1d_18 comes at other widths, not {arch}")
        # Same attribute names as torchvision so state-dict keys match.
        self.stem = tv.stem
        self.layer1 = tv.layer1
        self.layer2 = tv.layer2
        self.layer3 = tv.layer3
        self.layer4 = tv.layer4
        self.out_channels = stage_channels("layer4", width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


R2Plus1DBackbone = VideoBackbone  # the paper's backbone: VideoBackbone("r2plus1d_18")


def stage_channels(stage: str, width: float = 1.0) -> int:
    return max(8, int(round(STAGE_CHANNELS[stage] * width)))


def _narrow_r2plus1d(width: float) -> nn.Module:
    """R(2+1)D-18 with every stage's channels scaled by `width`: torchvision's BasicBlock and Conv2Plus1D
    (their mid-channel rule keeps each (2+1)D pair's parameters at a full 3D conv's), torchvision's init."""
    from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D

    def bn_relu(c: int) -> list[nn.Module]:
        return [nn.BatchNorm3d(c), nn.ReLU(inplace=True)]

    mid, c0 = max(8, int(round(45 * width))), stage_channels("stem", width)
    net = nn.Module()
    net.stem = nn.Sequential(nn.Conv3d(3, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False), *bn_relu(mid),
                             nn.Conv3d(mid, c0, (3, 1, 1), (1, 1, 1), (1, 0, 0), bias=False), *bn_relu(c0))
    inplanes = c0
    for i, stage in enumerate(("layer1", "layer2", "layer3", "layer4")):
        planes, stride = stage_channels(stage, width), 1 if i == 0 else 2
        down = None
        if stride != 1 or inplanes != planes:
            down = nn.Sequential(nn.Conv3d(inplanes, planes, 1, stride=Conv2Plus1D.get_downsample_stride(stride),
                                           bias=False), nn.BatchNorm3d(planes))
        blocks = [BasicBlock(inplanes, planes, Conv2Plus1D, stride, down), BasicBlock(planes, planes, Conv2Plus1D)]
        setattr(net, stage, nn.Sequential(*blocks))
        inplanes = planes
    for m in net.modules():  # as torchvision's VideoResNet
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    return net


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


def resolve_weights(weights: WeightsSpec, arch: str = "r2plus1d_18") -> dict | None:
    """Turn a weights spec into a backbone state dict (None: random init).

    Accepts torchvision's `R2Plus1D_18_Weights` enum (or its name, e.g. "KINETICS400_V1"),
    which torchvision downloads and caches when online, or a path to a saved state dict.
    """
    if weights is None or weights == "" or weights == "none":
        return None
    enum = torchvision_arch(arch)[1]
    if isinstance(weights, str) and not Path(weights).suffix and weights in enum.__members__:
        weights = enum[weights]
    from torchvision.models.video import MC3_18_Weights, R2Plus1D_18_Weights, R3D_18_Weights

    if isinstance(weights, (R2Plus1D_18_Weights, R3D_18_Weights, MC3_18_Weights)):
        try:
            state = weights.get_state_dict(progress=True)
        except Exception as exc:  # offline machines end here
            raise WeightsError(
                f"could not fetch torchvision weights {weights} ({exc.__class__.__name__}: {exc}); "
                "on an offline machine save them elsewhere with "
                f"torch.save({arch}(weights='KINETICS400_V1').state_dict(), '{arch}_k400.pt') "
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


def load_backbone_weights(backbone: VideoBackbone, weights: WeightsSpec) -> None:
    state = resolve_weights(weights, backbone.arch)
    if state is None:
        return
    if backbone.width != 1.0:
        raise WeightsError(f"weights {weights} are for the full-width backbone; a network at width "
                           f"{backbone.width:g} (a distillation student) trains from its teacher instead")
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
