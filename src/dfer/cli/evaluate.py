"""`dfer evaluate`: a checkpoint's metrics and report on a split."""

from __future__ import annotations

import argparse

from dfer.cli.args import CHECKPOINT_HELP, NONNEG_INT, POSITIVE_INT, checkpoint_ref, existing_dir, out_dir
from dfer.formatting import percent
from dfer.options import FRAME_ORDERS, SPLITS


def add(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics, confusion matrices and report of a checkpoint on a split")
    p.add_argument("checkpoint", type=checkpoint_ref, help=CHECKPOINT_HELP)
    p.add_argument("--data", required=True, type=existing_dir, help="clip cache")
    p.add_argument("--split", default="test", choices=SPLITS)
    p.add_argument("--fold", help="default: the fold the checkpoint was trained on")
    p.add_argument("--protocol", help="default: the checkpoint's protocol")
    p.add_argument("--out", type=out_dir, help="default: <checkpoint folder>/eval_<split>")
    p.add_argument("--frame-order", default="natural", choices=FRAME_ORDERS,
                   help="reorder each clip's frames (temporal ablation)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=32)
    p.add_argument("--workers", type=NONNEG_INT, default=2)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dfer.engine import evaluate_checkpoint

    r = evaluate_checkpoint(args.checkpoint, args.data, split=args.split, fold=args.fold, protocol=args.protocol,
                            out=args.out, frame_order=args.frame_order, device=args.device,
                            batch_size=args.batch_size, workers=args.workers)
    rep = r["report"]
    print(f"{args.split} of fold {r['fold']} ({r['protocol']}), frames {args.frame_order}: "
          f"WAR {percent(rep['war'])} UAR {percent(rep['uar'])} macro-F1 {percent(rep['macro_f1'])} "
          f"on {rep['num_samples']} clips")
    if not r["split_matches_training"]:
        print("note: this split differs from the one the checkpoint was trained on")
    print(f"report: {r['out']}/report.md")
    return 0
