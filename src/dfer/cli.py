"""The `dfer` command line: parses arguments and calls library functions, nothing else."""

from __future__ import annotations

import argparse
import json
import sys

from dfer.errors import DferError


def _clip(text: str) -> tuple[int, int, int]:
    try:
        t, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"clip size must look like 16x112x112, got {text!r}") from None
    return t, h, w


def cmd_profile(args: argparse.Namespace) -> int:
    from dfer.models import build_model
    from dfer.profiling import PAPER_GMACS, COUNTER, format_table, profile_model, torchvision_references

    model = build_model(num_classes=args.num_classes, attention_stage=args.attention_stage)
    main = profile_model(model, args.clip, name=f"dfer (attention: {args.attention_stage})")
    refs = [] if args.no_reference else torchvision_references(args.clip)
    if args.json:
        out = {
            **main.to_dict(),
            "counter": COUNTER,
            "paper_gmacs": PAPER_GMACS,
            "references": [r.to_dict() for r in refs],
        }
        print(json.dumps(out, indent=2))
    else:
        print(format_table(main, refs))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from dfer.data.adapters import load_spec
    from dfer.data.extract import FaceSettings
    from dfer.data.prepare import parse_shard, prepare_dataset

    kw = {}
    if args.kind == "daisee":
        kw["target"] = args.target
    if args.kind == "dfew":
        kw["source"] = args.dfew_source
    spec = load_spec(args.kind, args.root, **kw)
    settings = FaceSettings(
        detector=args.detector or spec.default_detector,
        detect_size=args.detect_size,
        upsample=args.upsample,
        detect_every=args.detect_every,
        margin=args.margin,
        size=args.size,
        max_frames=args.max_frames,
    )
    try:
        shard = parse_shard(args.shard)
    except ValueError as exc:
        raise SystemExit(f"dfer prepare: error: {exc}") from None
    summary = prepare_dataset(
        spec, args.out, settings, workers=args.workers, shard=shard, retry_failed=args.retry_failed,
        folds=args.folds, seed=args.seed, val_fraction=args.val_fraction, progress=not args.quiet,
    )
    print(summary.line())
    if summary.failed:
        print(f"failures listed in {args.out}/failures.csv")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from dfer import __version__

    p = argparse.ArgumentParser(prog="dfer", description="Dynamic facial expression recognition.")
    p.add_argument("--version", action="version", version=f"dfer {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    pr = sub.add_parser("profile", help="parameters and GMACs of the model, beside the paper and torchvision")
    pr.add_argument("--clip", type=_clip, default=(16, 112, 112), help="T x H x W (default 16x112x112)")
    pr.add_argument("--attention-stage", default="layer4", choices=["layer3", "layer4", "none"])
    pr.add_argument("--num-classes", type=int, default=7)
    pr.add_argument("--no-reference", action="store_true", help="skip the torchvision reference models")
    pr.add_argument("--json", action="store_true", help="print one JSON object")
    pr.set_defaults(func=cmd_profile)

    pp = sub.add_parser("prepare", help="faces of every clip of a dataset into a clip cache, plus splits.json")
    pp.add_argument("kind", choices=["dfew", "afew", "daisee", "folder", "manifest"])
    pp.add_argument("--root", required=True, help="dataset root (for manifest: the CSV file)")
    pp.add_argument("--out", required=True, help="cache folder to create or resume")
    pp.add_argument("--detector", choices=["dlib", "none"], help="default: dlib, or none for DFEW's face frames")
    pp.add_argument("--workers", type=int, default=1, help="parallel processes")
    pp.add_argument("--shard", help="I/N: process the I-th of N shares (0 <= I < N)")
    pp.add_argument("--size", type=int, default=128, help="side of the stored face crops (default 128)")
    pp.add_argument("--max-frames", type=int, default=48, help="frames kept per clip, spread uniformly (default 48)")
    pp.add_argument("--detect-every", type=int, default=3, help="run the detector on every k-th frame (default 3)")
    pp.add_argument("--detect-size", type=int, default=320, help="longest side seen by the detector (default 320)")
    pp.add_argument("--upsample", type=int, default=0, help="extra dlib upsampling levels for tiny faces")
    pp.add_argument("--margin", type=float, default=0.2, help="crop margin on each side, fraction of the box (0.2)")
    pp.add_argument("--folds", type=int, default=5, help="k of the k-fold splits (default 5)")
    pp.add_argument("--val-fraction", type=float, default=0.1, help="validation share carved from each training part")
    pp.add_argument("--seed", type=int, default=0)
    pp.add_argument("--target", default="Engagement", help="DAiSEE label column (default Engagement)")
    pp.add_argument("--dfew-source", default="auto", choices=["auto", "frames", "original"])
    pp.add_argument("--retry-failed", action="store_true", help="retry clips that failed in an earlier run")
    pp.add_argument("--quiet", action="store_true", help="no progress bar")
    pp.set_defaults(func=cmd_prepare)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DferError as exc:
        print(f"dfer {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
