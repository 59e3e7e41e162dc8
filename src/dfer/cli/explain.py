"""`dfer explain`: Grad-CAM, attention maps and temporal importance of a video's windows."""

from __future__ import annotations

import argparse

from dfer.cli.args import (
    CHECKPOINT_HELP,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    add_face_args,
    checkpoint_ref,
    face_overrides,
    number,
    out_dir,
)
from dfer.options import BACKENDS, EXPLAIN_STAGE_RESOLUTION, EXPLAIN_STAGES
from dfer.remote import resolve_checkpoint


def add(sub) -> None:
    p = sub.add_parser("explain", help="where and when each face window's decision comes from: Grad-CAM, "
                                       "attention maps, temporal importance")
    p.add_argument("video", help="a video file or frame folder")
    p.add_argument("--checkpoint", required=True, type=checkpoint_ref, help="dfer checkpoint (.pt); " + CHECKPOINT_HELP)
    p.add_argument("--out", required=True, type=out_dir, help="output folder")
    p.add_argument("--target", help="class to explain (default: each window's predicted class)")
    p.add_argument("--stage", default="layer3", choices=EXPLAIN_STAGES,
                   help="Grad-CAM stage: " + "; ".join(f"{k} {v}" for k, v in EXPLAIN_STAGE_RESOLUTION.items()))
    p.add_argument("--every", type=POSITIVE_INT, default=1, help="explain every N-th window (each costs T+2 passes)")
    p.add_argument("--backend", default="auto", choices=BACKENDS, help="ignored: PyTorch runs explanations")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--stride", type=POSITIVE_INT, help="frames between windows of a face (default: 1 s of video)")
    p.add_argument("--window", type=POSITIVE_FLOAT, help="window span in seconds (default: training clip length)")
    p.add_argument("--min-confidence", type=number(float, 0, 1), default=0.0, help="as for dfer predict")
    add_face_args(p, inherit=True)
    p.add_argument("--no-video", action="store_true", help="skip explain.mp4")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dfer.inference import InferenceSettings, Recognizer
    from dfer.inference.explain_render import write_explanation

    if args.backend not in ("auto", "torch"):
        print(f"note: explanations need gradients, so PyTorch runs them (--backend {args.backend} is not used)")
    settings = InferenceSettings(window_seconds=args.window or 0.0, stride=args.stride or 0, face=face_overrides(args),
                                 min_confidence=args.min_confidence)
    rec = Recognizer.from_checkpoint(resolve_checkpoint(args.checkpoint, progress=not args.quiet), backend="torch",
                                     device=args.device, settings=settings)
    ex = rec.explain(args.video, target=args.target, stage=args.stage, every=args.every, progress=not args.quiet)
    info = write_explanation(ex, args.video, args.out, video=not args.no_video)
    print(f"explained {info['explained']} of {info['windows']} windows ({args.stage}: {info['stage_resolution']}) "
          f"-> {args.out}")
    if not ex.has_attention:
        print(f"note: {info['attention_note']}; Grad-CAM and the temporal importance are there")
    return 0
