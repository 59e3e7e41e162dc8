"""`dfer train`, `dfer cv` and `dfer ablate`: one fold, k folds, the ablation table."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfer.cli.args import add_config_flags, config_overrides, existing_dir, existing_file, existing_path, out_dir
from dfer.engine.config import TrainConfig, load_config
from dfer.engine.variants import DEFAULT_VARIANTS, QUICK, VARIANTS
from dfer.formatting import percent

_STUDENT_SETS = ("model.name", "data.num_frames", "data.size")  # distill: these come from --student


def _add_train_args(p: argparse.ArgumentParser, *, student: bool = False) -> None:
    """The flags of train / cv / ablate; `student`: distill's (the network and clip come from --student).
    Every config flag is a TrainConfig field made with `flag` (dfer.engine.config); anything else: --set."""
    p.add_argument("--data", required=True, type=existing_dir, help="clip cache made by `dfer prepare`")
    p.add_argument("--config", type=existing_file, help="YAML config file (keys of dfer.engine.TrainConfig)")
    p.add_argument("--out", type=out_dir, help="run folder (default runs/<cache>-...)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last.pt")

    def skip(path: str) -> bool:
        return path in _STUDENT_SETS if student else path.startswith("distill.")

    add_config_flags(p, TrainConfig, overrides=True, skip=skip)
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
    _add_train_args(p, student=True)  # with --student, --alpha, --temperature
    p.add_argument("--fold", help="distil this fold only (default: every fold, as dfer cv)")
    p.add_argument("--folds", help="comma-separated fold names (default: all)")
    p.set_defaults(func=cmd_distill)


def _train_config(args: argparse.Namespace, extra: list[str] = ()):
    overrides = list(extra) + config_overrides(TrainConfig, args)
    if args.quiet:
        overrides.append("runtime.progress=false")
    return load_config(args.config, overrides + list(args.set or []))


def _default_out(data: Path, suffix: str) -> Path:
    return Path("runs") / f"{data.resolve().name}-{suffix}"


def cmd_train(args: argparse.Namespace) -> int:
    from dfer.runs import train_fold

    cfg = _train_config(args)
    out = args.out or _default_out(args.data, f"fold{args.fold}")
    m = train_fold(cfg, args.data, args.fold, out, resume=args.resume)
    sel, last = m.selected, m.last
    sel_test, last_test = sel.test or {}, last.test or {}
    print(f"fold {m.fold}: test WAR {percent(sel_test.get('war'))} UAR {percent(sel_test.get('uar'))} "
          f"(selected on validation, epoch {sel.epoch}); last epoch WAR {percent(last_test.get('war'))} "
          f"UAR {percent(last_test.get('uar'))}")
    print(f"report: {out}/report.md")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from dfer.runs import run_cv

    cfg = _train_config(args)
    out = args.out or _default_out(args.data, "cv")
    folds = [f.strip() for f in args.folds.split(",") if f.strip()] if args.folds else None
    cv = run_cv(cfg, args.data, out, folds=folds, resume=args.resume)
    sel, last = cv.selected, cv.last
    print(f"{len(cv.folds)}-fold CV, selected on validation: WAR {percent(sel.war.mean)} ± "
          f"{percent(sel.war.std)}, UAR {percent(sel.uar.mean)} ± {percent(sel.uar.std)}; "
          f"last epoch: WAR {percent(last.war.mean)}, UAR {percent(last.uar.mean)}")
    print(f"report: {out}/report.md")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from dfer.runs import run_distill

    cfg = _train_config(args)
    out = args.out or _default_out(args.data, f"distill-{cfg.distill.student}")
    folds = [args.fold] if args.fold else ([f.strip() for f in args.folds.split(",") if f.strip()] if args.folds else None)
    cv = run_distill(cfg, args.data, args.teacher, out, folds=folds, resume=args.resume)
    sel = cv.selected
    print(f"student {cfg.distill.student}, {len(cv.folds)} fold(s), selected on validation: test WAR "
          f"{percent(sel.war.mean)}, UAR {percent(sel.uar.mean)}")
    print(f"report: {out}/report.md")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from dfer.engine.ablate import parse_variants
    from dfer.runs import run_ablation

    quick = QUICK if args.quick else []
    base = _train_config(args, extra=quick)
    out = args.out or _default_out(args.data, "ablate")
    folds = [f.strip() for f in args.folds.split(",") if f.strip()] if args.folds else None
    s = run_ablation(base, args.data, out, variants=parse_variants(args.variants), folds=folds)
    for name, r in s["variants"].items():
        diff = s["paired_vs_full"].get(name)
        w = diff and diff["war"]
        vs = "" if not w else f" ({percent(w['mean'], signed=True)} vs full, sign test p {w['sign_test_p']:.2f})"
        print(f"{name:>13}: WAR {percent(r['war']['mean'])} ± {percent(r['war']['std'])}, "
              f"UAR {percent(r['uar']['mean'])}{vs}")
    print(f"report: {out}/report.md")
    return 0
