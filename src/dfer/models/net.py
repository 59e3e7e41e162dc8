"""The paper's network: R(2+1)D-18 -> spatio-temporal attention -> CE head + sparse-center-loss head."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from dfer.models.attention import SpatioTemporalAttention
from dfer.models.backbone import VideoBackbone, WeightsSpec, load_backbone_weights, stage_channels
from dfer.models.config import ModelConfig
from dfer.models.heads import CenterLossHead, ClassifierHead
from dfer.models.registry import BASELINES, MODEL_NAMES, REGISTRY  # noqa: F401 - re-exported
from dfer.options import ATTENTION_STAGES  # noqa: F401 - re-exported

# Model registry: name -> constructor from a ModelConfig. Names are stable: checkpoints store them.
MODELS: dict[str, Any] = {}


class DferOutput(NamedTuple):
    logits: torch.Tensor  # (B, K)
    embedding: torch.Tensor | None  # (B, D); None for baselines without the center-loss head
    weights: torch.Tensor | None  # (B, D), center-loss attention weights in (0, 1); None likewise


class DferNet(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        width = REGISTRY[config.name].width
        self.backbone = VideoBackbone(REGISTRY[config.name].arch, width=width)
        stage = config.attention_stage
        self.attention = (
            SpatioTemporalAttention(stage_channels(stage, width), config.attention_reduction) if stage != "none" else None
        )
        c = self.backbone.out_channels
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.classifier = ClassifierHead(c, config.num_classes, config.dropout)
        self.center_head = CenterLossHead(c, config.embed_dim, config.attn_grid, config.attn_hidden)

    def _attend(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        return self.attention(x) if self.config.attention_stage == stage else x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> feature map (B, 512, T/8, H/16, W/16) after attention."""
        b = self.backbone
        x = b.layer2(b.layer1(b.stem(x)))
        x = self._attend(b.layer3(x), "layer3")
        return self._attend(b.layer4(x), "layer4")

    def forward_head(self, fmap: torch.Tensor) -> DferOutput:
        pooled = self.pool(fmap).flatten(1)  # (B, 512)
        logits = self.classifier(pooled)
        embedding, weights = self.center_head(fmap, pooled)
        return DferOutput(logits, embedding, weights)

    def forward(self, x: torch.Tensor) -> DferOutput:
        return self.forward_head(self.forward_features(x))


class VideoResNetClassifier(nn.Module):
    """A baseline: a torchvision video ResNet-18 (r2plus1d_18, r3d_18, mc3_18), average pooling and a
    linear classifier, trained with plain cross-entropy: no attention block, no center-loss head."""

    attention = None

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = VideoBackbone(config.name)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.classifier = ClassifierHead(self.backbone.out_channels, config.num_classes, config.dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)  # (B, 512, T', H/16, W/16)

    def forward_head(self, fmap: torch.Tensor) -> DferOutput:
        return DferOutput(self.classifier(self.pool(fmap).flatten(1)), None, None)

    def forward(self, x: torch.Tensor) -> DferOutput:
        return self.forward_head(self.forward_features(x))


for _name, _entry in REGISTRY.items():  # each registry name bound to the class of its family
    MODELS[_name] = DferNet if _entry.family == "dfer" else VideoResNetClassifier


def build_model(*, weights: WeightsSpec = None, **config: Any) -> nn.Module:
    """Build a registered network from ModelConfig fields (`name`, `num_classes`, `attention_stage`...).

    `weights`: backbone weights (torchvision enum, its name, or a state-dict file).
    """
    return build_from_config(ModelConfig(**config), weights=weights)


def build_from_config(config: ModelConfig, *, weights: WeightsSpec = None) -> nn.Module:
    """The one way models are made: the registry entry named by `config.name`."""
    model = MODELS[config.name](config)
    if config.zero_init_residual:
        # The last BN of each residual branch at 0: each block starts as its shortcut (Goyal et al., 2017).
        from torchvision.models.video.resnet import BasicBlock

        for m in model.backbone.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.conv2[1].weight)  # conv2 = Sequential(Conv2Plus1D, BatchNorm3d)
    load_backbone_weights(model.backbone, weights)
    return model


__all__ = ["ATTENTION_STAGES", "BASELINES", "MODELS", "DferNet", "DferOutput", "ModelConfig", "VideoResNetClassifier",
           "build_from_config", "build_model"]
