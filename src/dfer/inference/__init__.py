"""Inference on raw videos and streams, annotated outputs, and export for deployment."""

from dfer.data.video import FrameSource, open_source
from dfer.inference.backends import BACKENDS, OnnxBackend, OpenVinoBackend, TorchBackend
from dfer.inference.export import export_model, export_onnx, read_metadata
from dfer.inference.predict import PredictRun, predict_inputs
from dfer.inference.recognizer import FrameEvent, InferenceSettings, Recognizer, VideoPrediction, WindowPrediction

__all__ = [
    "BACKENDS", "FrameEvent", "FrameSource", "InferenceSettings", "OnnxBackend", "OpenVinoBackend", "PredictRun",
    "Recognizer", "TorchBackend", "VideoPrediction", "WindowPrediction", "export_model", "export_onnx", "open_source",
    "predict_inputs", "read_metadata",
]
