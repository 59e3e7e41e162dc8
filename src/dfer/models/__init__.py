"""Models: the paper's R(2+1)D-18 + spatio-temporal attention network and torchvision baselines, behind one registry."""

from dfer.models.attention import SpatioTemporalAttention
from dfer.models.backbone import ARCHS, R2Plus1DBackbone, VideoBackbone, clean_state_dict, load_backbone_weights
from dfer.models.heads import CenterLossHead, ClassifierHead
from dfer.models.net import (
    ATTENTION_STAGES,
    BASELINES,
    MODELS,
    DferNet,
    DferOutput,
    ModelConfig,
    VideoResNetClassifier,
    build_from_config,
    build_model,
)

__all__ = [
    "ARCHS", "ATTENTION_STAGES", "BASELINES", "MODELS", "CenterLossHead", "ClassifierHead", "DferNet", "DferOutput",
    "ModelConfig", "R2Plus1DBackbone", "SpatioTemporalAttention", "VideoBackbone", "VideoResNetClassifier",
    "build_from_config", "build_model", "clean_state_dict", "load_backbone_weights",
]
