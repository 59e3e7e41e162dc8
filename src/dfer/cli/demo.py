"""`dfer demo`: the whole pipeline end to end on synthetic faces."""

from __future__ import annotations

import argparse

from dfer.cli.args import NONNEG_INT, POSITIVE_INT, demo_clip, number, out_dir
from dfer.demo_settings import DemoSettings
from dfer.models.registry import MODEL_NAMES


def add(sub) -> None:
    d = DemoSettings()
    p = sub.add_parser("demo", help="synthesise, prepare, cross-validate, ablate and predict, in one go (SYNTHETIC data)")
    p.add_argument("--out", default="dfer-demo", type=out_dir, help="output folder (default dfer-demo)")
    p.add_argument("--video", nargs="*", help="also run dfer predict on these videos")
    p.add_argument("--clips-per-class", type=POSITIVE_INT, help=f"subjects (default {d.clips_per_class})")
    p.add_argument("--frames", type=number(int, 4), help=f"frames per synthetic video (default {d.frames})")
    p.add_argument("--folds", type=number(int, 2), help=f"cross-validation folds (default {d.folds})")
    p.add_argument("--epochs", type=POSITIVE_INT, help=f"epochs per fold (default {d.epochs})")
    p.add_argument("--clip", type=demo_clip,
                   help=f"network input TxS (default {d.clip_frames}x{d.clip_size}: {d.clip_frames} frames of "
                        f"{d.clip_size}x{d.clip_size})")
    p.add_argument("--model", choices=list(MODEL_NAMES),
                   help=f"network (default {d.model}: the paper's at half width; dfer_r2plus1d_18: full width, "
                        "about 2.7x slower to train)")
    p.add_argument("--seed", type=NONNEG_INT, default=d.seed)
    p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="further training config overrides")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dfer.demo import run_demo

    given = {k: getattr(args, k) for k in ("model", "clips_per_class", "frames", "folds", "epochs")
             if getattr(args, k) is not None}
    if args.clip:
        t, size = args.clip
        given.update(clip_frames=t, clip_size=size, crop_size=max(DemoSettings.crop_size, size + size // 4))
    settings = DemoSettings(seed=args.seed, extra=list(args.set or []), **given)
    run_demo(args.out, settings, videos=args.video or [], progress=not args.quiet)
    return 0
