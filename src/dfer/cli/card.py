"""`dfer card`: MODEL_CARD.md for a checkpoint."""

from __future__ import annotations

import argparse

from dfer.cli.args import CHECKPOINT_HELP, checkpoint_ref, existing_file, out_file


def add(sub) -> None:
    p = sub.add_parser("card", help="MODEL_CARD.md for a checkpoint: model, cost, data, protocol, results, limits")
    p.add_argument("checkpoint", type=checkpoint_ref, help=CHECKPOINT_HELP)
    p.add_argument("--metrics", type=existing_file, help="the run's metrics.json (default: the one beside the checkpoint)")
    p.add_argument("--out", type=out_file, help="default: MODEL_CARD.md beside the checkpoint")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dfer.engine.card import write_model_card

    path = write_model_card(args.checkpoint, args.out, metrics=args.metrics)
    print(f"wrote {path}")
    return 0
