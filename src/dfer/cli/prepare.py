"""`dfer prepare`: a dataset's faces into a clip cache with its splits."""

from __future__ import annotations

import argparse
from typing import Any

from dfer.cli.args import (
    NONNEG_INT,
    POSITIVE_INT,
    add_engine_args,
    add_face_args,
    face_overrides,
    number,
    out_dir,
    ray_options,
    shard,
)
from dfer.data.adapters import ADAPTERS, DAISEE_TARGETS, DFEW_SOURCES, MAFW_SOURCES
from dfer.data.face_settings import FaceSettings
from dfer.data.posed import OULU_LIGHTS, OULU_SENSORS


def add(sub) -> None:
    p = sub.add_parser("prepare", help="faces of every clip of a dataset into a clip cache, plus splits.json")
    p.add_argument("kind", choices=ADAPTERS)
    p.add_argument("--root", required=True, help="dataset root (for manifest: the CSV file)")
    p.add_argument("--out", required=True, type=out_dir, help="cache folder to create or resume")
    p.add_argument("--workers", type=POSITIVE_INT, default=1, help="parallel processes")
    p.add_argument("--shard", type=shard, help="I/N: process the I-th of N shares (0 <= I < N)")
    add_face_args(p, inherit=False)
    p.add_argument("--folds", type=number(int, 2), default=5, help="k of the k-fold splits (default 5)")
    p.add_argument("--val-fraction", type=number(float, 0, 0.5), default=0.1,
                   help="validation share carved from each training part (0..0.5, default 0.1)")
    p.add_argument("--seed", type=NONNEG_INT, default=0)
    p.add_argument("--target", default="Engagement", choices=DAISEE_TARGETS, help="DAiSEE label column")
    p.add_argument("--dfew-source", default="auto", choices=DFEW_SOURCES)
    p.add_argument("--mafw-source", default="auto", choices=MAFW_SOURCES,
                   help="data/clips videos, data/frames folders, or data/faces crops (auto: frames if present)")
    p.add_argument("--oulu-sensor", default="vl", choices=list(OULU_SENSORS), help="Oulu-CASIA camera: vl (visible), nir (NI)")
    p.add_argument("--oulu-light", default="strong", choices=list(OULU_LIGHTS), help="Oulu-CASIA illumination")
    p.add_argument("--classes", help="lists: class names, comma-separated, or a known dataset: dfew, ferv39k, mafw; "
                                     "ckplus: ckplus (7 labelled classes, default) or dfew (contempt dropped); "
                                     "oulu: oulu (6, default) or dfew")
    p.add_argument("--data-root", help="lists: folder the listed clips are under; a listed path that is not found "
                                       "as given is looked up here by its trailing components")
    p.add_argument("--strip-prefix", help="lists: remove this prefix from every listed path, then look it up under "
                                          "--data-root (forces what the automatic suffix search finds)")
    p.add_argument("--dataset", help="lists: read only the lists whose file names start with this dataset "
                                     "(DFEW, MAFW, FERV39K) in a folder that holds several")
    p.add_argument("--retry-failed", action="store_true", help="retry clips that failed in an earlier run")
    add_engine_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dfer.data.adapters import load_spec
    from dfer.data.prepare import prepare_dataset

    kw: dict[str, Any] = {}
    if args.kind == "daisee":
        kw["target"] = args.target
    if args.kind == "dfew":
        kw["source"] = args.dfew_source
    if args.kind == "mafw":
        kw["source"] = args.mafw_source
    if args.kind == "lists":
        kw.update(classes=args.classes, data_root=args.data_root, dataset=args.dataset, strip_prefix=args.strip_prefix)
    if args.kind in ("ckplus", "oulu"):
        kw["classes"] = args.classes
    if args.kind == "oulu":
        kw.update(sensor=args.oulu_sensor, light=args.oulu_light)
    spec = load_spec(args.kind, args.root, **kw)
    for note in spec.notes:
        print(note)
    settings = FaceSettings(detector=spec.default_detector).with_overrides(face_overrides(args))
    summary = prepare_dataset(
        spec, args.out, settings, workers=args.workers, shard=args.shard or (0, 1), retry_failed=args.retry_failed,
        folds=args.folds, seed=args.seed, val_fraction=args.val_fraction, progress=not args.quiet,
        ray=ray_options(args),
    )
    print(summary.line())
    if summary.failed:
        print(f"failures listed in {args.out}/failures.csv")
    return 0
