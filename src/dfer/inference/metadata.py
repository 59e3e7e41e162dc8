"""The dfer metadata inside an exported model (ONNX metadata_props or OpenVINO rt_info, key "dfer"):
class names, preprocessing, model, how it was made and its parity. Read without torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dfer.errors import CheckpointError
from dfer.inference.backends import OpenVinoBackend

METADATA_KEY = "dfer"


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The dfer metadata of an exported model, ONNX or OpenVINO IR (CheckpointError if it has none)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: exported model not found")
    if path.suffix.lower() == ".xml":
        return _read_openvino_metadata(path)
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise CheckpointError(f"{path}: not a loadable ONNX model ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    meta = sess.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise CheckpointError(f"{path}: an ONNX model without dfer metadata; export it with `dfer export`")
    return json.loads(meta[METADATA_KEY])


def _read_openvino_metadata(path: Path) -> dict[str, Any]:
    ov = OpenVinoBackend.require()
    try:
        model = ov.Core().read_model(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path}: not a loadable OpenVINO IR ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    if not model.has_rt_info([METADATA_KEY]):
        raise CheckpointError(f"{path}: an OpenVINO model without dfer metadata; export it with `dfer export --format openvino`")
    return json.loads(model.get_rt_info([METADATA_KEY]).astype(str))
