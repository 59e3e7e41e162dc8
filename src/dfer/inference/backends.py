"""Inference backends: one call, normalised clips (B, 3, T, S, S) float32 -> logits (B, K) float32.

`auto` (the default everywhere) is not a runtime but a choice among these: see dfer.inference.runtime_choice.

- `torch`: the network in eager PyTorch (CPU or CUDA; bf16 autocast on CUDA), in dfer.inference.torch_backend;
- `onnx`: ONNX Runtime on an exported model (fp32 or static int8, see dfer.inference.export);
- `openvino`: OpenVINO on the CPU, from an exported ONNX model or OpenVINO IR (.xml); optional
  dependency (`pip install "dfer[openvino]"`).
"""

from __future__ import annotations

import glob
import json
import os
import sys
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from dfer.errors import CheckpointError
from dfer.files import cache_root
from dfer.options import BACKENDS, OPENVINO_PRECISIONS, PRECISIONS  # noqa: F401 - re-exported


class Backend(Protocol):
    name: str  # torch | onnx | openvino
    detail: str  # runtime, version, device and precision, for reports
    precision: str  # fp32 | bf16 | f32 | int8: what the network's arithmetic runs at
    concurrency: int  # calls it serves at once (OpenVINO streams); callers keep that many in flight

    def __call__(self, clips: np.ndarray) -> np.ndarray: ...


def conform(backend) -> Backend:
    """A runtime given by a user (any callable with `name` and `detail`) completed with the protocol's
    defaults: one call at a time, float32."""
    for attr, default in (("precision", "fp32"), ("concurrency", 1)):
        if not hasattr(backend, attr):
            setattr(backend, attr, default)
    return backend


def cuda_wanted(device: str) -> bool:
    """Whether `device` means a CUDA GPU: "cuda..." always; "auto" when one is present. A machine without
    an NVIDIA device node has none, and is told without importing torch (seconds on small CPUs)."""
    if device.startswith("cuda"):
        return True
    if device != "auto" or (sys.platform.startswith("linux") and not glob.glob("/dev/nvidia[0-9]*")):
        return False
    import torch

    return torch.cuda.is_available()


class OnnxBackend:
    name = "onnx"
    concurrency = 1

    def __init__(self, path: str | Path, threads: int = 0, device: str = "cpu", label: str = "") -> None:
        import onnxruntime as ort

        self.path = Path(path)
        so = ort.SessionOptions()
        if threads > 0:
            so.intra_op_num_threads = threads
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") or device == "auto":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            elif device.startswith("cuda"):
                raise CheckpointError("ONNX Runtime here has no CUDA provider (install onnxruntime-gpu); run on the cpu device")
        try:
            self.session = ort.InferenceSession(str(self.path), so, providers=providers)
        except Exception as exc:
            detail = f"{exc.__class__.__name__}: {str(exc)[:200]}"
            raise CheckpointError(f"{self.path}: not a loadable ONNX model ({detail})") from None
        self.input = self.session.get_inputs()[0].name
        used = self.session.get_providers()[0].replace("ExecutionProvider", "")
        self.detail = f"onnxruntime {ort.__version__} {used}"
        meta = self.session.get_modelmeta().custom_metadata_map.get("dfer")
        self.precision = json.loads(meta).get("quantization", "fp32") if meta else "fp32"
        self.detail += f" {self.precision} ({label or self.path.name})"  # what ran: runtime, precision, model file

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        out = self.session.run(["logits"], {self.input: np.ascontiguousarray(clips, dtype=np.float32)})
        return out[0]


def _compiled_cache() -> Path | None:
    """OpenVINO's compiled-model cache, beside dfer's conversion cache (None when it cannot be made: the model
    is then compiled on every start, as before)."""
    folder = cache_root() / "openvino-compiled"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


class OpenVinoBackend:
    """OpenVINO on the CPU; reads an exported .onnx (fp32 or int8 QDQ) or an OpenVINO IR .xml.

    precision: OpenVINO's inference precision for float layers. "auto" is OpenVINO's own choice:
    bf16 on CPUs with native bf16 (AVX512-BF16, AMX), else f32; "f32" keeps float32 exactly.
    The chosen one is in `.detail`.

    The compiled model is cached by OpenVINO (its CACHE_DIR) under dfer's cache folder
    (`openvino-compiled/`), so a second start loads it instead of compiling it again.

    streams: requests that run at once, each on its share of the cores. 1: one request on all
    cores (lowest latency per call); N > 1: N streams (at most what the CPU has); 0 (auto): a
    float model gets OpenVINO's throughput setting (as many streams as suit the CPU), an int8
    model one request. Measured on a 2-core AVX2 CPU, 16x112x112: the whole `dfer predict` ran
    1.03-1.33x faster with two streams (float; the network alone within noise either way), int8
    0.75-0.85x as fast. `.concurrency` is the number of streams: callers (the Recognizer, the
    service's workers) keep that many calls in flight.
    """

    name = "openvino"

    @staticmethod
    def require():
        """The openvino module, or a CheckpointError saying how to install it."""
        try:
            import openvino
        except ImportError:
            raise CheckpointError('the openvino backend needs OpenVINO: pip install "dfer[openvino]"') from None
        return openvino

    def __init__(self, path: str | Path, threads: int = 0, device: str = "cpu", precision: str = "auto",
                 streams: int = 0, label: str = "") -> None:
        ov = self.require()
        if streams < 0:
            raise CheckpointError(f"OpenVINO streams must be >= 0 (0: auto), got {streams}")
        if precision not in OPENVINO_PRECISIONS:
            raise CheckpointError(f"OpenVINO precision must be one of {OPENVINO_PRECISIONS}, got {precision!r}")
        if device not in ("auto", "cpu"):
            raise CheckpointError(f"the openvino backend runs on the CPU; got device {device!r} "
                                  "(the torch and onnx backends run on CUDA)")
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"{self.path}: model not found")
        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
            quantized = any(op.get_type_name() == "FakeQuantize" for op in model.get_ordered_ops())
            if streams == 0:
                streams = 1 if quantized else 0  # 0 here: OpenVINO's throughput choice
            config: dict[str, str] = {"PERFORMANCE_HINT": "LATENCY" if streams == 1 else "THROUGHPUT"}
            if streams > 1:
                config["NUM_STREAMS"] = str(streams)
            if threads > 0:
                config["INFERENCE_NUM_THREADS"] = str(threads)
            if precision != "auto":
                config["INFERENCE_PRECISION_HINT"] = precision
            compiled_cache = _compiled_cache()
            if compiled_cache is not None:
                config["CACHE_DIR"] = str(compiled_cache)  # compiled once per model, CPU and settings; then loaded
            self.compiled = core.compile_model(model, "CPU", config)
            self.output = self.compiled.output("logits")
        except Exception as exc:
            raise CheckpointError(f"{self.path}: OpenVINO cannot load it ({exc.__class__.__name__}: {str(exc)[:200]})") from None
        self._local = threading.local()  # an infer request is not thread-safe: one per calling thread
        float_precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # "bf16" | "f32"
        self.precision = "int8" if quantized else float_precision
        self.concurrency = max(1, int(self.compiled.get_property("NUM_STREAMS")))
        self.detail = (f"openvino {ov.__version__.split('-')[0]} CPU {self.precision}"  # int8 for an int8 model
                       + (f" x{self.concurrency} streams" if self.concurrency > 1 else "") + f" ({label or self.path.name})")

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        out = request.infer({0: np.ascontiguousarray(clips, dtype=np.float32)})
        return np.array(out[self.output], dtype=np.float32)  # (B, K), copied out of the request's buffer
