"""`dfer profile`: parameters and GMACs of a network beside the paper's."""

from __future__ import annotations

import argparse
import json

from dfer.cli.args import clip_size, number
from dfer.models.registry import MODEL_NAMES
from dfer.options import ATTENTION_STAGES


def add(sub) -> None:
    p = sub.add_parser("profile", help="parameters and GMACs of the model, beside the paper and torchvision")
    p.add_argument("--clip", type=clip_size, default=(16, 112, 112), help="T x H x W (default 16x112x112)")
    p.add_argument("--model", default="dfer_r2plus1d_18", choices=list(MODEL_NAMES),
                   help="the paper's network or a baseline (r2plus1d_18, r3d_18, mc3_18: plain CE)")
    p.add_argument("--attention-stage", default="layer4", choices=ATTENTION_STAGES)
    p.add_argument("--num-classes", type=number(int, 2), default=7)
    p.add_argument("--no-reference", action="store_true", help="skip the torchvision reference models")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--students", action="store_true",
                   help="the distillation students (dfer distill --student) for a teacher at --clip: each one's "
                        "network, clip, GMACs and how many times fewer than the teacher's")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dfer.compute_cost import COUNTER, PAPER_GMACS, format_table, profile_model, student_costs, torchvision_references
    from dfer.models import build_model

    if args.students:
        rows = student_costs(args.clip, num_classes=args.num_classes)
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            t, h, w = args.clip
            print(f"students of a dfer_r2plus1d_18 teacher at {t}x{h}x{w} (dfer distill --student NAME):")
            print(f"{'student':<20} {'network':<24} {'clip':<12} {'GMACs':>8} {'params (M)':>11} {'fewer MACs':>11}")
            for r in rows:
                c = r["clip"]
                print(f"{r['student']:<20} {r['model']:<24} {c[0]}x{c[1]}x{c[2]:<7} {r['gmacs']:>8.2f} "
                      f"{r['params'] / 1e6:>11.2f} {r['fewer_macs']:>10.2f}x")
        return 0

    model = build_model(name=args.model, num_classes=args.num_classes, attention_stage=args.attention_stage)
    main = profile_model(model, args.clip, name=f"{args.model} (attention: {model.config.attention_stage})")
    refs = [] if args.no_reference else torchvision_references(args.clip)
    if args.json:
        out = {**main.to_dict(), "counter": COUNTER, "paper_gmacs": PAPER_GMACS, "references": [r.to_dict() for r in refs]}
        print(json.dumps(out, indent=2))
    else:
        print(format_table(main, refs))
    return 0
