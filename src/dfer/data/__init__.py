"""Data: video in and out, faces, clip sampling, dataset adapters, the clip cache, splits and loaders."""

from dfer.data.adapters import ADAPTERS, ClipRecord, DatasetSpec, load_spec
from dfer.data.cache import ClipCache, ClipRow
from dfer.data.crop import crop_face
from dfer.data.dataset import ClipDataset, class_balanced_sampler, make_loader
from dfer.data.extract import FaceClip, extract_face_clip
from dfer.data.face_settings import DETECTORS, FACE_PIPELINE_VERSION, FaceSettings
from dfer.data.faces import Box, DlibDetector, WholeFrameDetector, make_detector
from dfer.data.prepare import PrepareSummary, load_splits, prepare_dataset
from dfer.data.sampling import ClipIndices, SegmentSampler, UniformSampler, make_sampler
from dfer.data.splits import get_fold, make_splits
from dfer.data.tracking import FaceTracker, TrackedBox, TrackedFrame
from dfer.data.transforms import KINETICS_MEAN, KINETICS_STD, ClipTransformConfig, EvalTransform, TrainTransform
from dfer.data.video import FrameSource, VideoInfo, VideoWriter, open_source, probe, read_video, write_video

__all__ = [
    "ADAPTERS", "Box", "ClipCache", "ClipDataset", "ClipIndices", "ClipRecord", "ClipRow",
    "ClipTransformConfig", "DETECTORS", "DatasetSpec", "DlibDetector", "EvalTransform", "FACE_PIPELINE_VERSION",
    "FaceClip", "FaceSettings", "FaceTracker", "FrameSource", "KINETICS_MEAN", "KINETICS_STD", "PrepareSummary",
    "SegmentSampler", "TrackedBox", "TrackedFrame", "TrainTransform", "UniformSampler", "VideoInfo", "VideoWriter",
    "WholeFrameDetector", "class_balanced_sampler", "crop_face", "extract_face_clip", "get_fold", "load_spec",
    "load_splits", "make_detector", "make_loader", "make_sampler", "make_splits", "open_source", "prepare_dataset",
    "probe", "read_video", "write_video",
]
