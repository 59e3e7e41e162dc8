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
