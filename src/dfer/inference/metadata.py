"""The dfer metadata inside an exported model (ONNX metadata_props or OpenVINO rt_info, key "dfer"):
class names, preprocessing, model, how it was made and its parity, as an `ExportMetadata` record (the
JSON of `to_dict()`; models exported before the record existed read the same). Read without torch."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfer.errors import CheckpointError
from dfer.inference.backends import OpenVinoBackend
from dfer.preprocess import Preprocess

METADATA_KEY = "dfer"


@dataclass
class ExportMetadata:
    format: str  # dfer-onnx | dfer-openvino
    class_names: list[str]
    preprocess: Preprocess
    model: dict[str, Any]  # {"name", "config"}: the network as the checkpoint describes it
    quantization: str = "fp32"  # fp32 | int8
    quantization_method: str = "fp32"
    calibration: str = ""  # what int8 was calibrated on
    parity_vs_torch_fp32: dict[str, Any] = field(default_factory=dict)  # top1_agreement, min_cosine, max_abs_diff, clips
    parity_runtime: str = ""  # the runtime the parity was measured with
    source_checkpoint: str = ""  # its file name
    source_sha256: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    model_info: dict[str, Any] = field(default_factory=dict)  # dfer.preprocess.model_info: dataset, synthetic, temperature
    acceptance: dict[str, Any] | None = None  # int8: dfer.acceptance's record (rule, figures, verdict)
    test_report: dict[str, Any] | None = None  # int8 of a fold: the same figures on its test part

    @property
    def accepted(self) -> bool:
        """An int8 model that passed its acceptance rule (what `--backend auto` runs)."""
        return bool((self.acceptance or {}).get("accepted"))

    def to_dict(self) -> dict[str, Any]:
        out = {"format": self.format, "class_names": list(self.class_names), "preprocess": self.preprocess.to_dict(),
               "model": self.model, "quantization": self.quantization, "quantization_method": self.quantization_method,
               "calibration": self.calibration, "parity_vs_torch_fp32": self.parity_vs_torch_fp32,
               "parity_runtime": self.parity_runtime, "source_checkpoint": self.source_checkpoint,
               "source_sha256": self.source_sha256, "versions": self.versions, "model_info": self.model_info}
        if self.acceptance is not None:
            out["acceptance"] = self.acceptance
        if self.test_report is not None:
            out["test_report"] = self.test_report
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExportMetadata:
        return cls(str(d.get("format", "")), list(d["class_names"]), Preprocess.from_dict(d["preprocess"]),
                   dict(d.get("model") or {}), str(d.get("quantization", "fp32")),
                   str(d.get("quantization_method", d.get("quantization", "fp32"))), str(d.get("calibration", "")),
                   dict(d.get("parity_vs_torch_fp32") or {}), str(d.get("parity_runtime", "")),
                   str(d.get("source_checkpoint", "")), str(d.get("source_sha256", "")), dict(d.get("versions") or {}),
                   dict(d.get("model_info") or {}), d.get("acceptance"), d.get("test_report"))


def read_metadata(path: str | Path) -> ExportMetadata:
    """The dfer metadata of an exported model, ONNX or OpenVINO IR (CheckpointError if it has none)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: exported model not found")
    raw = _read_openvino_metadata(path) if path.suffix.lower() == ".xml" else _read_onnx_metadata(path)
    try:
        return ExportMetadata.from_dict(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: its dfer metadata is damaged ({exc.__class__.__name__}: {exc})") from None


def _read_onnx_metadata(path: Path) -> str:
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise CheckpointError(f"{path}: not a loadable ONNX model ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    meta = sess.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise CheckpointError(f"{path}: an ONNX model without dfer metadata; export it with `dfer export`")
    return meta[METADATA_KEY]


def _read_openvino_metadata(path: Path) -> str:
    ov = OpenVinoBackend.require()
    try:
        model = ov.Core().read_model(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path}: not a loadable OpenVINO IR ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    if not model.has_rt_info([METADATA_KEY]):
        raise CheckpointError(f"{path}: an OpenVINO model without dfer metadata; export it with `dfer export --format openvino`")
    return model.get_rt_info([METADATA_KEY]).astype(str)
