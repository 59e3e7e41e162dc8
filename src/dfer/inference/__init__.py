"""Inference on raw videos and streams, annotated outputs, and export for deployment.

Names are imported when first used (PEP 562), so `dfer.inference.episodes` or the CLI's parsers do
not import torch and the runtimes; `from dfer.inference import Recognizer` works as before.
"""

from __future__ import annotations

from dfer.lazy import lazy_names

_WHERE = {
    "FrameSource": "dfer.data.video", "open_source": "dfer.data.video",
    "BACKENDS": "dfer.inference.backends", "OnnxBackend": "dfer.inference.backends",
    "OpenVinoBackend": "dfer.inference.backends", "TorchBackend": "dfer.inference.torch_backend",
    "export_model": "dfer.inference.export", "export_onnx": "dfer.inference.export",
    "ExportSettings": "dfer.inference.export_settings",
    "read_metadata": "dfer.inference.metadata",
    "PredictRun": "dfer.inference.predict", "predict_inputs": "dfer.inference.predict",
    "FrameEvent": "dfer.inference.prediction", "InferenceSettings": "dfer.inference.settings",
    "Recognizer": "dfer.inference.recognizer", "VideoPrediction": "dfer.inference.prediction",
    "WindowPrediction": "dfer.inference.prediction",
}
__all__ = sorted(_WHERE)
__getattr__ = lazy_names(__name__, _WHERE)
