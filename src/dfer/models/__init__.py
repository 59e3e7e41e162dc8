"""Models: the paper's R(2+1)D-18 + spatio-temporal attention network and torchvision baselines, behind one registry.

Names are imported when first used (PEP 562): `ModelConfig` (dfer.models.config) and the choices in
dfer.options are read without torch; the networks import it.
"""

from __future__ import annotations

from dfer.lazy import lazy_names

_WHERE = {
    "SpatioTemporalAttention": "dfer.models.attention",
    **{n: "dfer.models.backbone" for n in ("ARCHS", "R2Plus1DBackbone", "VideoBackbone", "clean_state_dict",
                                            "load_backbone_weights")},
    "CenterLossHead": "dfer.models.heads", "ClassifierHead": "dfer.models.heads",
    "ModelConfig": "dfer.models.config",
    "ATTENTION_STAGES": "dfer.options",
    **{n: "dfer.models.registry" for n in ("BASELINES", "MODEL_NAMES", "REGISTRY", "STUDENTS", "ModelEntry")},
    **{n: "dfer.models.net" for n in ("MODELS", "DferNet", "DferOutput", "VideoResNetClassifier", "build_from_config",
                                       "build_model")},
}
__all__ = sorted(_WHERE)
__getattr__ = lazy_names(__name__, _WHERE)
