"""Data: video in and out, faces, clip sampling, dataset adapters, the clip cache, splits and loaders.

Names are imported when first used (PEP 562): `from dfer.data.video import open_source` (or
`dfer.data.open_source`) does not import torch, which the loaders need; a small process such as the
service's upload probe starts in a fraction of a second.
"""

from __future__ import annotations

from dfer.lazy import lazy_names

_WHERE = {
    "ADAPTERS": "dfer.data.adapters",
    "ClipRecord": "dfer.data.adapters",
    "DatasetSpec": "dfer.data.adapters",
    "load_spec": "dfer.data.adapters",
    "ClipCache": "dfer.data.cache",
    "ClipRow": "dfer.data.cache",
    "crop_face": "dfer.data.crop",
    "ClipDataset": "dfer.data.dataset",
    "class_balanced_sampler": "dfer.data.dataset",
    "make_loader": "dfer.data.dataset",
    "FaceClip": "dfer.data.extract",
    "extract_face_clip": "dfer.data.extract",
    "DETECTORS": "dfer.data.face_settings",
    "FACE_PIPELINE_VERSION": "dfer.data.face_settings",
    "FaceSettings": "dfer.data.face_settings",
    "Box": "dfer.data.faces",
    "DlibDetector": "dfer.data.faces",
    "WholeFrameDetector": "dfer.data.faces",
    "make_detector": "dfer.data.faces",
    "PrepareSummary": "dfer.data.prepare",
    "prepare_dataset": "dfer.data.prepare",
    "ClipIndices": "dfer.data.sampling",
    "SegmentSampler": "dfer.data.sampling",
    "UniformSampler": "dfer.data.sampling",
    "make_sampler": "dfer.data.sampling",
    "Fold": "dfer.data.splits",
    "Splits": "dfer.data.splits",
    "make_splits": "dfer.data.splits",
    "FaceTracker": "dfer.data.tracking",
    "TrackedBox": "dfer.data.tracking",
    "TrackedFrame": "dfer.data.tracking",
    "KINETICS_MEAN": "dfer.data.transforms",
    "KINETICS_STD": "dfer.data.transforms",
    "ClipTransformConfig": "dfer.data.transforms",
    "EvalTransform": "dfer.data.transforms",
    "TrainTransform": "dfer.data.transforms",
    "FrameSource": "dfer.data.video",
    "VideoInfo": "dfer.data.video",
    "VideoWriter": "dfer.data.video",
    "open_source": "dfer.data.video",
    "probe": "dfer.data.video",
    "read_video": "dfer.data.video",
    "write_video": "dfer.data.video",
}
__all__ = sorted(_WHERE)
__getattr__ = lazy_names(__name__, _WHERE)
