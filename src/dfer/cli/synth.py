"""`dfer synth`: the synthetic cartoon-face dataset."""

from __future__ import annotations

import argparse

from dfer.cli.args import NONNEG_INT, POSITIVE_INT, number, out_dir
from dfer.synth.dataset import SynthSettings


def add(sub) -> None:
    d = SynthSettings()
    p = sub.add_parser("synth", help="SYNTHETIC expression videos (7 classes, folder layout + manifest)")
    p.add_argument("--out", required=True, type=out_dir)
    p.add_argument("--clips-per-class", type=POSITIVE_INT, default=d.clips_per_class,
                   help=f"subjects; each performs every class ({d.clips_per_class})")
    p.add_argument("--frames", type=number(int, 2), default=d.frames, help=f"frames per video ({d.frames}, at 25 fps)")
    p.add_argument("--seed", type=NONNEG_INT, default=d.seed)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dfer.synth.dataset import SynthSettings, generate

    s = SynthSettings(clips_per_class=args.clips_per_class, frames=args.frames, seed=args.seed)
    manifest = generate(args.out, s, progress=not args.quiet)
    print(f"SYNTHETIC data: {args.clips_per_class} subjects x 7 classes -> {args.out} (manifest {manifest})")
    print(f"next: dfer prepare manifest --root {manifest} --out <cache>")
    return 0
