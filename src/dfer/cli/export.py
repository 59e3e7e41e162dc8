"""`dfer export`: ONNX / OpenVINO (float or int8) with dfer's metadata inside."""

from __future__ import annotations

import argparse

from dfer.cli.args import (
    CHECKPOINT_HELP,
    NONNEG_FLOAT,
    POSITIVE_INT,
    checkpoint_ref,
    existing_dir,
    existing_file,
    number,
    out_file,
)
from dfer.options import ACCEPT_RULES, AGREEMENT_BAR, CALIBRATION_CLIPS, EXPORT_FORMATS, MAX_DROP_POINTS


def add(sub) -> None:
    p = sub.add_parser("export", help="ONNX or OpenVINO model (fp32 or int8) with class names and preprocessing inside")
    p.add_argument("checkpoint", type=checkpoint_ref, help=CHECKPOINT_HELP)
    p.add_argument("--format", default="onnx", choices=EXPORT_FORMATS,
                   help="onnx: one .onnx file; openvino: IR NAME.xml + NAME.bin (needs dfer[openvino])")
    p.add_argument("--quantize", choices=["int8"],
                   help="int8: OpenVINO by NNCF with accuracy control; ONNX by ONNX Runtime static QDQ; calibrated")
    p.add_argument("--calibration", type=existing_dir, help="clip cache to calibrate int8 on (default: synthetic faces)")
    p.add_argument("--calibration-clips", type=POSITIVE_INT, default=CALIBRATION_CLIPS,
                   help=f"clips int8 is calibrated on (default {CALIBRATION_CLIPS})")
    p.add_argument("--calibration-split", type=existing_file,
                   help="a fold's split.json (beside its checkpoint): calibrate on its train part, accept on its "
                        "validation part, report on its test part")
    p.add_argument("--accept", default="accuracy", choices=ACCEPT_RULES,
                   help="int8 is written when: accuracy: its WAR and UAR on held-out labelled clips are each within "
                        "--max-drop points of float32 (needs --calibration; else agreement applies); agreement: its "
                        "top-1 agreement with float32 is >= --min-agreement")
    p.add_argument("--max-drop", type=NONNEG_FLOAT, default=MAX_DROP_POINTS,
                   help=f"accuracy rule: largest WAR / UAR drop in points (default {MAX_DROP_POINTS})")
    p.add_argument("--min-agreement", type=number(float, 0.0, 1.0), default=AGREEMENT_BAR,
                   help="agreement rule: refuse a model whose top-1 agreement with float32 on held-out clips is lower "
                        f"(default {AGREEMENT_BAR})")
    p.add_argument("--out", required=True, type=out_file, help="output .onnx file, or .xml for OpenVINO")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dfer.acceptance import describe
    from dfer.inference import export_model

    meta = export_model(args.checkpoint, args.out, format=args.format, quantize=args.quantize,
                        calibration=args.calibration, calibration_clips_count=args.calibration_clips,
                        calibration_split=args.calibration_split, min_agreement=args.min_agreement,
                        accept=args.accept, max_drop=args.max_drop, progress=True)  # a bar on a terminal only
    p = meta["parity_vs_torch_fp32"]
    method = f" by {meta['quantization_method']}" if args.quantize else ""
    print(f"wrote {args.out} ({args.format}, {meta['quantization']}{method}); parity vs PyTorch fp32 on {p['clips']} clips "
          f"({meta['parity_runtime']}): top-1 agreement {100 * p['top1_agreement']:.1f}%, "
          f"max |logit diff| {p['max_abs_diff']:.2e}, min cosine {p['min_cosine']:.5f}")
    verdict = meta.get("acceptance")
    if verdict:
        print(f"accepted by the {verdict['rule']} rule"
              + (f": {describe(verdict)}" if verdict["rule"] == "accuracy" else "")
              + (f" ({verdict['note']})" if verdict.get("note") else ""))
    if meta.get("test_report"):
        print(f"on the fold's test part: {describe(meta['test_report'])}")
    return 0
