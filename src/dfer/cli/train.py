"""`dfer train`, `dfer cv` and `dfer ablate`: one fold, k folds, the ablation table."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfer.cli.args import (
    NONNEG_FLOAT,
    NONNEG_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    existing_dir,
    existing_file,
    existing_path,
    number,
    out_dir,
)
from dfer.engine.config import load_config
from dfer.engine.variants import DEFAULT_VARIANTS, VARIANTS
from dfer.formatting import percent
from dfer.options import MODEL_NAMES, STUDENTS, TRAIN_PRECISIONS


def _add_train_args(p: argparse.ArgumentParser, *, student: bool = False) -> None:
    """The flags of train / cv / ablate; `student`: distill's (the network and clip come from --student)."""
    p.add_argument("--data", required=True, type=existing_dir, help="clip cache made by `dfer prepare`")
    p.add_argument("--config", type=existing_file, help="YAML config file (keys of dfer.engine.TrainConfig)")
    p.add_argument("--out", type=out_dir, help="run folder (default runs/<cache>-...)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last.pt")
    if not student:
        p.add_argument("--model", choices=list(MODEL_NAMES), help="default dfer_r2plus1d_18 (the paper's); baselines: "
                                                              "r2plus1d_18, r3d_18, mc3_18 (plain CE)")
    p.add_argument("--epochs", type=POSITIVE_INT)
    p.add_argument("--lr", type=POSITIVE_FLOAT)
    p.add_argument("--batch-size", type=POSITIVE_INT)
    p.add_argument("--workers", type=NONNEG_INT, help="data loader processes")
    p.add_argument("--weights", help="backbone init: KINETICS400_V1 (torchvision download), a state-dict file, or none")
    p.add_argument("--devices", type=POSITIVE_INT, help="processes on this node (DDP through Lightning Fabric)")
    p.add_argument("--accelerator", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", choices=TRAIN_PRECISIONS)
    p.add_argument("--seed", type=NONNEG_INT)
    p.add_argument("--protocol", help="split protocol of splits.json (default: the cache's default)")
    if not student:
        p.add_argument("--clip-frames", type=POSITIVE_INT, help="T of the input clips (default 16)")
        p.add_argument("--clip-size", type=number(int, 16), help="H = W of the input clips (default 112)")
    p.add_argument("--lam", type=NONNEG_FLOAT, help="weight of the sparse center loss (default 0.01)")
    p.add_argument("--patience", type=NONNEG_INT, help="early stopping patience in epochs (0: off)")
    p.add_argument("--balanced", action="store_true", help="class-balanced sampling")
    p.add_argument("--class-weighted", action="store_true", help="inverse-frequency weighted cross-entropy")
    p.add_argument("--peer-best-on-test", action="store_true",
                   help="also report the best epoch picked on test (peers' optimistic protocol), labelled as such")
    p.add_argument("--no-int8", action="store_true",
                   help="skip the OpenVINO int8 export of the selected checkpoint at the end of each fold")
    p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="any config key, e.g. optim.schedule=step data.flip=0")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add(sub) -> None:
    p = sub.add_parser("train", help="train one fold (model selection on its validation part)")
    _add_train_args(p)
    p.add_argument("--fold", default="1", help="fold name in splits.json (default 1)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("cv", help="k-fold cross-validation with reports")
    _add_train_args(p)
    p.add_argument("--folds", help="comma-separated fold names (default: all)")
    p.set_defaults(func=cmd_cv)

    p = sub.add_parser("ablate", help="cross-validate the paper's network, its ablations and baselines side by side")
    _add_train_args(p)
    p.add_argument("--variants", help=f"comma-separated, from {', '.join(VARIANTS)} "
                                      f"(default {','.join(DEFAULT_VARIANTS)}; full is always included)")
    p.add_argument("--quick", action="store_true",
                   help="demo-size clips (8x32x32) and 2 epochs: well under an hour on a 2-core CPU")
    p.add_argument("--folds", help="comma-separated fold names (default: all)")
    p.set_defaults(func=cmd_ablate)

    p = sub.add_parser("distill", help="train a smaller student from a trained teacher, with the same protocol")
    p.add_argument("--teacher", required=True, type=existing_path,
                   help="the teacher: a dfer checkpoint trained on --fold, or a `dfer cv` run folder (one per fold)")
    p.add_argument("--student", default="narrow", choices=list(STUDENTS),
                   help="the student's network and clip relative to the teacher's (default narrow: half the "
                        "channels, about 4x fewer MACs; `dfer profile --students` lists each one's cost)")
    _add_train_args(p, student=True)
    p.add_argument("--alpha", type=number(float, 0.0, 1.0), help="weight of the KL term to the teacher (default 0.5)")
    p.add_argument("--temperature", type=POSITIVE_FLOAT, help="softening of both distributions (default 4)")
    p.add_argument("--fold", help="distil this fold only (default: every fold, as dfer cv)")
    p.add_argument("--folds", help="comma-separated fold names (default: all)")
    p.set_defaults(func=cmd_distill)


# Shortcut flags for the most used config keys; anything else goes through --set key=value.
_SHORTCUTS = {
    "epochs": "optim.epochs", "lr": "optim.lr", "batch_size": "data.batch_size", "workers": "data.workers",
    "weights": "weights", "devices": "runtime.devices", "seed": "runtime.seed", "protocol": "data.protocol",
    "precision": "runtime.precision", "accelerator": "runtime.accelerator", "clip_frames": "data.num_frames",
    "clip_size": "data.size", "lam": "loss.lam", "patience": "eval.patience", "model": "model.name",
    "student": "distill.student", "alpha": "distill.alpha", "temperature": "distill.temperature",
}


_FLAGS = {"balanced": "data.balanced", "class_weighted": "loss.class_weighted",
          "peer_best_on_test": "eval.peer_best_on_test"}


def _train_config(args: argparse.Namespace, extra: list[str] = ()):

    overrides = list(extra)
    overrides += [f"{key}={getattr(args, name)}" for name, key in _SHORTCUTS.items() if getattr(args, name, None) is not None]
    overrides += [f"{key}=true" for name, key in _FLAGS.items() if getattr(args, name, False)]
    if args.quiet:
        overrides.append("runtime.progress=false")
    if getattr(args, "no_int8", False):
        overrides.append("deploy.int8=false")
    return load_config(args.config, overrides + list(args.set or []))


def _default_out(data: Path, suffix: str) -> Path:
    return Path("runs") / f"{data.resolve().name}-{suffix}"


def _pct(r: dict | None, k: str) -> str:
    return percent(r.get(k) if r else None)


def cmd_train(args: argparse.Namespace) -> int:
    from dfer.engine import train_fold

    cfg = _train_config(args)
    out = args.out or _default_out(args.data, f"fold{args.fold}")
    m = train_fold(cfg, args.data, args.fold, out, resume=args.resume)
    sel, last = m["selected"], m["last"]
    print(f"fold {m['fold']}: test WAR {_pct(sel['test'], 'war')} UAR {_pct(sel['test'], 'uar')} "
          f"(selected on validation, epoch {sel['epoch']}); last epoch WAR {_pct(last['test'], 'war')} "
          f"UAR {_pct(last['test'], 'uar')}")
    print(f"report: {out}/report.md")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from dfer.engine import run_cv

    cfg = _train_config(args)
    out = args.out or _default_out(args.data, "cv")
    folds = [f.strip() for f in args.folds.split(",") if f.strip()] if args.folds else None
    cv = run_cv(cfg, args.data, out, folds=folds, resume=args.resume)
    sel, last = cv["selected"], cv["last"]
    print(f"{len(cv['folds'])}-fold CV, selected on validation: WAR {100 * sel['war']['mean']:.2f} ± "
          f"{100 * sel['war']['std']:.2f}, UAR {100 * sel['uar']['mean']:.2f} ± {100 * sel['uar']['std']:.2f}; "
          f"last epoch: WAR {100 * last['war']['mean']:.2f}, UAR {100 * last['uar']['mean']:.2f}")
    print(f"report: {out}/report.md")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from dfer.engine.distill import run_distill

    cfg = _train_config(args)
    out = args.out or _default_out(args.data, f"distill-{cfg.distill.student}")
    folds = [args.fold] if args.fold else ([f.strip() for f in args.folds.split(",") if f.strip()] if args.folds else None)
    cv = run_distill(cfg, args.data, args.teacher, out, folds=folds, resume=args.resume)
    sel = cv["selected"]
    print(f"student {cfg.distill.student}, {len(cv['folds'])} fold(s), selected on validation: test WAR "
          f"{100 * sel['war']['mean']:.2f}, UAR {100 * sel['uar']['mean']:.2f}")
    print(f"report: {out}/report.md")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from dfer.engine.ablate import QUICK, parse_variants, run_ablation

    quick = QUICK if args.quick else []
    base = _train_config(args, extra=quick)
    out = args.out or _default_out(args.data, "ablate")
    folds = [f.strip() for f in args.folds.split(",") if f.strip()] if args.folds else None
    s = run_ablation(base, args.data, out, variants=parse_variants(args.variants), folds=folds)
    for name, r in s["variants"].items():
        diff = s["paired_vs_full"].get(name)
        w = diff and diff["war"]
        vs = "" if not w else f" ({100 * w['mean']:+.2f} vs full, sign test p {w['sign_test_p']:.2f})"
        print(f"{name:>13}: WAR {100 * r['war']['mean']:.2f} ± {100 * r['war']['std']:.2f}, "
              f"UAR {100 * r['uar']['mean']:.2f}{vs}")
    print(f"report: {out}/report.md")
    return 0
