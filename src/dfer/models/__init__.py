"""Models: the paper's R(2+1)D-18 + spatio-temporal attention network, behind one registry."""

from dfer.models.attention import SpatioTemporalAttention
from dfer.models.backbone import R2Plus1DBackbone, clean_state_dict, load_backbone_weights
from dfer.models.heads import CenterLossHead, ClassifierHead
from dfer.models.net import ATTENTION_STAGES, MODELS, DferNet, DferOutput, ModelConfig, build_from_config, build_model

__all__ = [
    "ATTENTION_STAGES", "MODELS", "CenterLossHead", "ClassifierHead", "DferNet", "DferOutput", "ModelConfig",
    "R2Plus1DBackbone", "SpatioTemporalAttention", "build_from_config", "build_model", "clean_state_dict",
    "load_backbone_weights",
]
