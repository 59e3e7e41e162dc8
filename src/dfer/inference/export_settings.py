"""`ExportSettings`: everything `dfer export` (and `export_model`) can be told, with its defaults. Light
(no torch, no runtimes): the CLI builds `dfer export`'s flags from these fields (dfer.options.flag)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dfer.options import ACCEPT_RULES, AGREEMENT_BAR, CALIBRATION_CLIPS, EXPORT_FORMATS, MAX_DROP_POINTS, flag


@dataclass(frozen=True)
class ExportSettings:
    format: str = flag("onnx", choices=EXPORT_FORMATS,
                       help="onnx: one .onnx file; openvino: IR NAME.xml + NAME.bin (needs dfer[openvino])")
    quantize: str | None = flag(None, choices=("int8",), help="int8: OpenVINO by NNCF with accuracy control; ONNX by "
                                                             "ONNX Runtime static QDQ; calibrated")
    calibration: Path | None = flag(None, kind="existing_dir",
                                    help="clip cache to calibrate int8 on (default: synthetic faces)")
    calibration_clips: int = flag(CALIBRATION_CLIPS, kind="positive_int", help="clips int8 is calibrated on")
    calibration_split: Path | None = flag(None, kind="existing_file",
                                          help="a fold's split.json (beside its checkpoint): calibrate on its train "
                                               "part, accept on its validation part, report on its test part")
    accept: str = flag("accuracy", choices=ACCEPT_RULES,
                       help="int8 is written when: accuracy: its WAR and UAR on held-out labelled clips are each within "
                            "--max-drop points of float32 (needs --calibration; else agreement applies); agreement: "
                            "its top-1 agreement with float32 is >= --min-agreement")
    max_drop: float = flag(MAX_DROP_POINTS, kind="nonneg_float",
                           help="accuracy rule: largest WAR / UAR drop in points")
    min_agreement: float = flag(AGREEMENT_BAR, kind="fraction",
                                help="agreement rule: refuse a model whose top-1 agreement with float32 on held-out "
                                     "clips is lower")
    opset: int = 18  # ONNX opset of the exported graph
