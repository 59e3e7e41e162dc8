"""Data: video decoding, faces, clip sampling, dataset adapters, the clip cache, splits and loaders."""

from dfer.data.adapters import ADAPTERS, ClipRecord, DatasetSpec, load_spec
from dfer.data.cache import ClipCache, ClipRow
from dfer.data.crop import crop_face
from dfer.data.dataset import ClipDataset, class_balanced_sampler, make_loader
from dfer.data.extract import FaceClip, FaceSettings, extract_face_clip
from dfer.data.faces import DETECTORS, Box, DlibDetector, WholeFrameDetector, make_detector
from dfer.data.prepare import PrepareSummary, load_splits, prepare_dataset
from dfer.data.sampling import ClipIndices, SegmentSampler, UniformSampler, make_sampler
from dfer.data.splits import get_fold, make_splits
from dfer.data.tracking import FaceTracker, Track, main_track
from dfer.data.transforms import KINETICS_MEAN, KINETICS_STD, ClipTransformConfig, EvalTransform, TrainTransform
from dfer.data.video import VideoInfo, iter_frames, probe, read_video

__all__ = [
    "ADAPTERS", "Box", "ClipCache", "ClipDataset", "ClipIndices", "ClipRecord", "ClipRow",
    "ClipTransformConfig", "DETECTORS", "DatasetSpec", "DlibDetector", "EvalTransform", "FaceClip",
    "FaceSettings", "FaceTracker", "KINETICS_MEAN", "KINETICS_STD", "PrepareSummary", "SegmentSampler",
    "Track", "TrainTransform", "UniformSampler", "VideoInfo", "WholeFrameDetector", "class_balanced_sampler",
    "crop_face", "extract_face_clip", "get_fold", "iter_frames", "load_spec", "load_splits", "main_track",
    "make_detector", "make_loader", "make_sampler", "make_splits", "prepare_dataset", "probe", "read_video",
]
