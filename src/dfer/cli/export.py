"""`dfer export`: ONNX / OpenVINO (float or int8) with dfer's metadata inside."""

from __future__ import annotations

import argparse

from dfer.cli.args import CHECKPOINT_HELP, add_config_flags, checkpoint_ref, config_values, out_file
from dfer.formatting import percent1
from dfer.inference.export_settings import ExportSettings


def add(sub) -> None:
    p = sub.add_parser("export", help="ONNX or OpenVINO model (fp32 or int8) with class names and preprocessing inside")
    p.add_argument("checkpoint", type=checkpoint_ref, help=CHECKPOINT_HELP)
    add_config_flags(p, ExportSettings)  # one flag per ExportSettings field made with `flag`
    p.add_argument("--out", required=True, type=out_file, help="output .onnx file, or .xml for OpenVINO")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dfer.acceptance import describe
    from dfer.inference import export_model

    settings = ExportSettings(**config_values(ExportSettings, args))
    meta = export_model(args.checkpoint, args.out, settings, progress=True)  # a bar on a terminal only
    p = meta.parity_vs_torch_fp32
    method = f" by {meta.quantization_method}" if args.quantize else ""
    print(f"wrote {args.out} ({args.format}, {meta.quantization}{method}); parity vs PyTorch fp32 on {p['clips']} clips "
          f"({meta.parity_runtime}): top-1 agreement {percent1(p['top1_agreement'])}, "
          f"max |logit diff| {p['max_abs_diff']:.2e}, min cosine {p['min_cosine']:.5f}")
    verdict = meta.acceptance
    if verdict:
        said = "accepted" if meta.accepted else "NOT verified (`--backend auto` keeps float; --precision int8 runs it)"
        print(f"{said} by the {verdict['rule']} rule"
              + (f": {describe(verdict)}; {verdict['reason']}" if verdict["rule"] == "accuracy" else "")
              + (f" ({verdict['note']})" if verdict.get("note") else ""))
    if meta.test_report:
        print(f"on the fold's test part: {describe(meta.test_report)}")
    return 0
