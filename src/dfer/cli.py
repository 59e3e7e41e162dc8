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


def _face_overrides(args: argparse.Namespace) -> dict:
    """Face settings given on the command line (flags left out are None)."""
    return {name: getattr(args, name) for name in _FACE_FLAGS if getattr(args, name, None) is not None}


def cmd_prepare(args: argparse.Namespace) -> int:
    from dfer.data.adapters import load_spec
    from dfer.data.face_settings import FaceSettings
    from dfer.data.prepare import parse_shard, prepare_dataset

    kw = {}
    if args.kind == "daisee":
        kw["target"] = args.target
    if args.kind == "dfew":
        kw["source"] = args.dfew_source
    spec = load_spec(args.kind, args.root, **kw)
    settings = FaceSettings(detector=spec.default_detector).with_overrides(_face_overrides(args))
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


# Shortcut flags for the most used config keys; anything else goes through --set key=value.
_SHORTCUTS = {
    "epochs": "optim.epochs", "lr": "optim.lr", "batch_size": "data.batch_size", "workers": "data.workers",
    "weights": "weights", "devices": "runtime.devices", "seed": "runtime.seed", "protocol": "data.protocol",
    "precision": "runtime.precision", "accelerator": "runtime.accelerator", "clip_frames": "data.num_frames",
    "clip_size": "data.size", "lam": "loss.lam", "patience": "eval.patience",
}
_FLAGS = {"balanced": "data.balanced", "class_weighted": "loss.class_weighted", "quiet": None,
          "peer_best_on_test": "eval.peer_best_on_test"}


def _train_config(args: argparse.Namespace):
    from dfer.engine.config import load_config

    overrides = [f"{key}={getattr(args, name)}" for name, key in _SHORTCUTS.items() if getattr(args, name, None) is not None]
    overrides += [f"{key}=true" for name, key in _FLAGS.items() if key and getattr(args, name, False)]
    if getattr(args, "quiet", False):
        overrides.append("runtime.progress=false")
    return load_config(args.config, overrides + list(args.set or []))


def _default_out(data: str, suffix: str) -> str:
    from pathlib import Path

    return str(Path("runs") / f"{Path(data).resolve().name}-{suffix}")


def cmd_train(args: argparse.Namespace) -> int:
    from dfer.engine import train_fold

    cfg = _train_config(args)
    out = args.out or _default_out(args.data, f"fold{args.fold}")
    m = train_fold(cfg, args.data, args.fold, out, resume=args.resume)
    _print_fold(m, out)
    return 0


def _print_fold(m, out) -> None:
    def pct(r, k):
        return "n/a" if not r or r.get(k) is None else f"{100 * r[k]:.2f}"

    sel, last = m["selected"], m["last"]
    print(f"fold {m['fold']}: test WAR {pct(sel['test'], 'war')} UAR {pct(sel['test'], 'uar')} "
          f"(selected on validation, epoch {sel['epoch']}); last epoch WAR {pct(last['test'], 'war')} "
          f"UAR {pct(last['test'], 'uar')}")
    print(f"report: {out}/report.md")


def cmd_cv(args: argparse.Namespace) -> int:
    from dfer.engine import run_cv

    cfg = _train_config(args)
    out = args.out or _default_out(args.data, "cv")
    folds = [f.strip() for f in args.folds.split(",") if f.strip()] if args.folds else None
    cv = run_cv(cfg, args.data, out, folds=folds, resume=args.resume)
    sel, last = cv["selected"], cv["last"]
    print(f"{len(cv['folds'])}-fold CV, selected on validation: WAR {100 * sel['war']['mean']:.2f} ± {100 * sel['war']['std']:.2f}, "
          f"UAR {100 * sel['uar']['mean']:.2f} ± {100 * sel['uar']['std']:.2f}; last epoch: WAR {100 * last['war']['mean']:.2f}, "
          f"UAR {100 * last['uar']['mean']:.2f}")
    print(f"report: {out}/report.md")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dfer.engine import evaluate_checkpoint

    r = evaluate_checkpoint(args.checkpoint, args.data, split=args.split, fold=args.fold, protocol=args.protocol,
                            out=args.out, frame_order=args.frame_order, device=args.device,
                            batch_size=args.batch_size, workers=args.workers)
    rep = r["report"]
    print(f"{args.split} of fold {r['fold']} ({r['protocol']}), frames {args.frame_order}: "
          f"WAR {100 * rep['war']:.2f} UAR {100 * rep['uar']:.2f} macro-F1 {100 * rep['macro_f1']:.2f} "
          f"on {rep['num_samples']} clips")
    if not r["split_matches_training"]:
        print("note: this split differs from the one the checkpoint was trained on")
    print(f"report: {r['out']}/report.md")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from dfer.inference import InferenceSettings, Recognizer, predict_inputs

    inputs = list(args.inputs) + ([args.source] if args.source is not None else [])
    if not inputs:
        raise SystemExit("dfer predict: error: give at least one input (a video, a folder, --source 0 or a URL)")
    settings = InferenceSettings(window_seconds=args.window, stride=args.stride, batch_size=args.batch_size,
                                 face=_face_overrides(args))
    rec = Recognizer.from_checkpoint(args.checkpoint, device=args.device, backend=args.backend, settings=settings,
                                     threads=args.threads, precision=args.precision)
    run = predict_inputs(rec, inputs, args.out, annotate=not args.no_video, overwrite=args.overwrite,
                         max_seconds=args.max_seconds, progress=not args.quiet)
    print(f"{len(run.done)} done, {len(run.skipped)} already done (skipped), {len(run.failed)} failed -> {args.out}")
    if run.failed:
        print(f"failures listed in {args.out}/failures.csv")
    return 1 if run.failed and not run.done and not run.skipped else 0


def cmd_export(args: argparse.Namespace) -> int:
    from dfer.inference import export_model

    meta = export_model(args.checkpoint, args.out, format=args.format, quantize=args.quantize,
                        calibration=args.calibration, calibration_clips_count=args.calibration_clips)
    p = meta["parity_vs_torch_fp32"]
    print(f"wrote {args.out} ({args.format}, {meta['quantization']}); parity vs PyTorch fp32 on {p['clips']} clips "
          f"({meta['parity_runtime']}): top-1 agreement {100 * p['top1_agreement']:.1f}%, "
          f"max |logit diff| {p['max_abs_diff']:.2e}, min cosine {p['min_cosine']:.5f}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from dfer.synth.dataset import SynthSettings, generate

    manifest = generate(args.out, SynthSettings(clips_per_class=args.clips_per_class, frames=args.frames, seed=args.seed),
                        progress=not args.quiet)
    print(f"SYNTHETIC data: {args.clips_per_class} subjects x 7 classes -> {args.out} (manifest {manifest})")
    print(f"next: dfer prepare manifest --root {manifest} --out <cache>")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dfer.demo import DemoSettings, run_demo

    s = DemoSettings()
    t, size = (s.clip_frames, s.clip_size) if not args.clip else (int(v) for v in args.clip.lower().split("x"))
    settings = DemoSettings(clips_per_class=args.clips_per_class or s.clips_per_class, frames=args.frames or s.frames,
                            folds=args.folds or s.folds, epochs=args.epochs or s.epochs, clip_frames=t, clip_size=size,
                            crop_size=max(s.crop_size, size + size // 4),
                            seed=args.seed, extra=list(args.set or []))
    run_demo(args.out, settings, videos=args.video or [], progress=not args.quiet)
    return 0


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="clip cache made by `dfer prepare`")
    p.add_argument("--config", help="YAML config file (keys of dfer.engine.TrainConfig)")
    p.add_argument("--out", help="run folder (default runs/<cache>-...)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last.pt")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--workers", type=int, help="data loader processes")
    p.add_argument("--weights", help="backbone init: KINETICS400_V1 (torchvision download), a state-dict file, or none")
    p.add_argument("--devices", type=int, help="processes on this node (DDP through Lightning Fabric)")
    p.add_argument("--accelerator", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", help="auto | 32-true | bf16-mixed | 16-mixed")
    p.add_argument("--seed", type=int)
    p.add_argument("--protocol", help="split protocol of splits.json (default: the cache's default)")
    p.add_argument("--clip-frames", type=int, help="T of the input clips (default 16)")
    p.add_argument("--clip-size", type=int, help="H = W of the input clips (default 112)")
    p.add_argument("--lam", type=float, help="weight of the sparse center loss (default 0.01)")
    p.add_argument("--patience", type=int, help="early stopping patience in epochs (0: off)")
    p.add_argument("--balanced", action="store_true", help="class-balanced sampling")
    p.add_argument("--class-weighted", action="store_true", help="inverse-frequency weighted cross-entropy")
    p.add_argument("--peer-best-on-test", action="store_true",
                   help="also report the best epoch picked on test (peers' optimistic protocol), labelled as such")
    p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="any config key, e.g. optim.schedule=step data.flip=0")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


# Face settings on the command line: names, types and help; defaults come from FaceSettings.
_FACE_FLAGS = {
    "detector": (str, "dlib (HOG frontal faces) or none (inputs are face crops already)"),
    "detect_every": (int, "run the face detector on every k-th frame, interpolate in between"),
    "detect_size": (int, "longest side of the frame copy the detector sees, in pixels"),
    "upsample": (int, "extra dlib upsampling levels, for small faces (0..3)"),
    "margin": (float, "crop margin on each side, as a fraction of the face box"),
    "smooth": (float, "weight of a face's previous box size at each detection (0: no smoothing)"),
    "max_missed": (int, "detection rounds a face may be missed before its track ends"),
    "size": (int, "side of the square face crops, in pixels"),
    "max_frames": (int, "frames kept per clip, spread uniformly"),
}
_PREDICT_FACE_FLAGS = ("detector", "detect_every", "detect_size", "upsample", "margin", "smooth", "max_missed")


def _add_face_args(p: argparse.ArgumentParser, *, inherit: bool) -> None:
    """Face options; with `inherit` (predict) a flag left out means the checkpoint's value."""
    from dataclasses import fields

    from dfer.data.face_settings import DETECTORS, FaceSettings

    defaults = {f.name: f.default for f in fields(FaceSettings)}
    for name, (kind, text) in _FACE_FLAGS.items():
        if inherit and name not in _PREDICT_FACE_FLAGS:
            continue
        suffix = " (default: the checkpoint's)" if inherit else f" (default {defaults[name]})"
        if name == "detector" and not inherit:
            suffix = " (default: the dataset's: dlib, or none for DFEW's face frames)"
        p.add_argument("--" + name.replace("_", "-"), type=kind, choices=DETECTORS if name == "detector" else None,
                       default=None, help=text + suffix)


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
    pp.add_argument("--workers", type=int, default=1, help="parallel processes")
    pp.add_argument("--shard", help="I/N: process the I-th of N shares (0 <= I < N)")
    _add_face_args(pp, inherit=False)
    pp.add_argument("--folds", type=int, default=5, help="k of the k-fold splits (default 5)")
    pp.add_argument("--val-fraction", type=float, default=0.1, help="validation share carved from each training part")
    pp.add_argument("--seed", type=int, default=0)
    pp.add_argument("--target", default="Engagement", help="DAiSEE label column (default Engagement)")
    pp.add_argument("--dfew-source", default="auto", choices=["auto", "frames", "original"])
    pp.add_argument("--retry-failed", action="store_true", help="retry clips that failed in an earlier run")
    pp.add_argument("--quiet", action="store_true", help="no progress bar")
    pp.set_defaults(func=cmd_prepare)

    pt = sub.add_parser("train", help="train one fold (model selection on its validation part)")
    _add_train_args(pt)
    pt.add_argument("--fold", default="1", help="fold name in splits.json (default 1)")
    pt.set_defaults(func=cmd_train)

    pc = sub.add_parser("cv", help="k-fold cross-validation with reports")
    _add_train_args(pc)
    pc.add_argument("--folds", help="comma-separated fold names (default: all)")
    pc.set_defaults(func=cmd_cv)

    pe = sub.add_parser("evaluate", help="metrics, confusion matrices and report of a checkpoint on a split")
    pe.add_argument("checkpoint")
    pe.add_argument("--data", required=True, help="clip cache")
    pe.add_argument("--split", default="test", choices=["train", "val", "test"])
    pe.add_argument("--fold", help="default: the fold the checkpoint was trained on")
    pe.add_argument("--protocol", help="default: the checkpoint's protocol")
    pe.add_argument("--out", help="default: <checkpoint folder>/eval_<split>")
    pe.add_argument("--frame-order", default="natural", choices=["natural", "shuffled", "reversed"],
                    help="reorder each clip's frames (temporal ablation)")
    pe.add_argument("--device", default="auto")
    pe.add_argument("--batch-size", type=int, default=32)
    pe.add_argument("--workers", type=int, default=2)
    pe.set_defaults(func=cmd_evaluate)

    pd = sub.add_parser("predict", help="expressions of every face in videos, folders, a webcam or a stream")
    pd.add_argument("inputs", nargs="*", help="video files, frame folders, folders of videos, stream URLs")
    pd.add_argument("--checkpoint", required=True, help="dfer checkpoint (.pt) or exported model (.onnx, OpenVINO .xml)")
    pd.add_argument("--out", required=True, help="output folder (one subfolder per input)")
    pd.add_argument("--source", help="a webcam index (0) or a stream URL (rtsp://, http://)")
    pd.add_argument("--backend", default="torch", choices=["torch", "onnx", "openvino"],
                    help="openvino needs: pip install \"dfer[openvino]\"")
    pd.add_argument("--precision", default="auto", choices=["auto", "f32", "bf16"],
                    help="OpenVINO float precision (auto: bf16 on CPUs with native bf16, else f32)")
    pd.add_argument("--device", default="auto", help="auto | cpu | cuda")
    pd.add_argument("--stride", type=int, default=0, help="frames between windows of a face (default: 1 s of video)")
    pd.add_argument("--window", type=float, default=0.0, help="window span in seconds (default: training clip length)")
    _add_face_args(pd, inherit=True)
    pd.add_argument("--batch-size", type=int, default=8)
    pd.add_argument("--threads", type=int, default=0, help="ONNX Runtime / OpenVINO threads (0: all cores)")
    pd.add_argument("--max-seconds", type=float, help="stop after this much video (live sources run until stopped)")
    pd.add_argument("--no-video", action="store_true", help="skip annotated.mp4")
    pd.add_argument("--overwrite", action="store_true", help="redo inputs that already have outputs")
    pd.add_argument("--quiet", action="store_true")
    pd.set_defaults(func=cmd_predict)

    px = sub.add_parser("export", help="ONNX or OpenVINO model (fp32 or int8) with class names and preprocessing inside")
    px.add_argument("checkpoint")
    px.add_argument("--format", default="onnx", choices=["onnx", "openvino"],
                    help="onnx: one .onnx file; openvino: IR NAME.xml + NAME.bin (needs dfer[openvino])")
    px.add_argument("--quantize", choices=["int8"], help="static int8 (ONNX Runtime QDQ, calibrated)")
    px.add_argument("--calibration", help="clip cache to calibrate int8 on (default: synthetic faces)")
    px.add_argument("--calibration-clips", type=int, default=32)
    px.add_argument("--out", required=True, help="output .onnx file, or .xml for OpenVINO")
    px.set_defaults(func=cmd_export)

    ps = sub.add_parser("synth", help="SYNTHETIC expression videos (7 classes, folder layout + manifest)")
    ps.add_argument("--out", required=True)
    ps.add_argument("--clips-per-class", type=int, default=24, help="subjects; each performs every class (24)")
    ps.add_argument("--frames", type=int, default=40, help="frames per video (40, at 25 fps)")
    ps.add_argument("--seed", type=int, default=0)
    ps.add_argument("--quiet", action="store_true")
    ps.set_defaults(func=cmd_synth)

    pm = sub.add_parser("demo", help="synthesise, prepare, cross-validate, ablate and predict, in one go (SYNTHETIC data)")
    pm.add_argument("--out", default="dfer-demo", help="output folder (default dfer-demo)")
    pm.add_argument("--video", nargs="*", help="also run dfer predict on these videos")
    pm.add_argument("--clips-per-class", type=int, help="subjects (default 96)")
    pm.add_argument("--frames", type=int, help="frames per synthetic video (default 32)")
    pm.add_argument("--folds", type=int, help="cross-validation folds (default 3)")
    pm.add_argument("--epochs", type=int, help="epochs per fold (default 7)")
    pm.add_argument("--clip", help="network input TxS (default 8x32: 8 frames of 32x32)")
    pm.add_argument("--seed", type=int, default=0)
    pm.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="further training config overrides")
    pm.add_argument("--quiet", action="store_true")
    pm.set_defaults(func=cmd_demo)
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
