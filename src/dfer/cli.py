"""The `dfer` command line: parses and checks arguments, calls library functions, nothing else.

Choices and defaults come from the library (registries and dataclass defaults); every numeric
argument is range-checked when parsed; library errors (`DferError`) become one line on stderr
and exit code 2, as argparse's own errors do.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from dfer.errors import DferError


# -- argument types: each checks its value when parsed ------------------------------------
def _number(kind: type, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
            what: str = "") -> Callable[[str], Any]:
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if v != v or (lo is not None and (v < lo or (lo_open and v == lo))) or (hi is not None and v > hi):
            lo_s = "" if lo is None else (f"> {lo}" if lo_open else f">= {lo}")
            rng = " and ".join(x for x in (lo_s, "" if hi is None else f"<= {hi}") if x)
            raise argparse.ArgumentTypeError(f"must be {rng}{what}, got {text}")
        return v

    parse.__name__ = "integer" if kind is int else "number"
    return parse


POSITIVE_INT = _number(int, 1)
NONNEG_INT = _number(int, 0)
POSITIVE_FLOAT = _number(float, 0, lo_open=True)
NONNEG_FLOAT = _number(float, 0)


def _sizes(what: str, example: str, minimum: tuple[int, ...], rule: str) -> Callable[[str], tuple[int, ...]]:
    """A parser of 'AxB[xC]' integers, each at least its `minimum`."""
    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.lower().split("x"))
        except ValueError:
            values = ()
        if len(values) != len(minimum):
            raise argparse.ArgumentTypeError(f"{what} must look like {example}, got {text!r}")
        if any(v < m for v, m in zip(values, minimum)):
            raise argparse.ArgumentTypeError(f"{what} needs {rule}, got {text!r}")
        return values

    return parse


_clip = _sizes("clip size", "16x112x112", (1, 16, 16), "T >= 1 and H, W >= 16")
_demo_clip = _sizes("clip", "8x32 (frames x side)", (1, 16), "frames >= 1 and side >= 16")
def _size(text: str) -> int:
    """A memory or disk size: 4G, 512M, 800000 (bytes)."""
    from dfer.serve.disk import parse_bytes

    try:
        value = parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a size must be >= 0, got {text!r}")
    return value


_frame_size = _sizes("frame size", "4096x2160", (16, 16), "both sides >= 16")


def _shard(text: str) -> tuple[int, int]:
    from dfer.data.prepare import parse_shard

    try:
        return parse_shard(text)
    except DferError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _writable(path: Path) -> Path:
    """The nearest existing folder of `path` must be a folder we can create files in."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: cannot be created, {probe} is a file")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    return path


def out_dir(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: exists and is not a folder")
    return _writable(path)


def out_file(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder; give a file name")
    _writable(path.parent)
    return path


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: file not found")
    return path


def checkpoint_ref(text: str) -> Path | str:
    """A checkpoint file, or an http(s):// / hf:// URL (checked here, downloaded when used)."""
    from dfer.remote import check_reference, is_remote

    if not is_remote(text):
        return existing_file(text)
    try:
        check_reference(text)
    except DferError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def existing_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder not found")
    return path


# -- commands ------------------------------------------------------------------------------
def cmd_profile(args: argparse.Namespace) -> int:
    from dfer.compute_cost import COUNTER, PAPER_GMACS, format_table, profile_model, torchvision_references
    from dfer.models import build_model

    model = build_model(name=args.model, num_classes=args.num_classes, attention_stage=args.attention_stage)
    main = profile_model(model, args.clip, name=f"{args.model} (attention: {model.config.attention_stage})")
    refs = [] if args.no_reference else torchvision_references(args.clip)
    if args.json:
        out = {**main.to_dict(), "counter": COUNTER, "paper_gmacs": PAPER_GMACS, "references": [r.to_dict() for r in refs]}
        print(json.dumps(out, indent=2))
    else:
        print(format_table(main, refs))
    return 0


def _ray_options(args: argparse.Namespace):
    """RayOptions for --engine ray, None for the local engine."""
    if args.engine != "ray":
        return None
    from dfer.scale import RayOptions, import_ray

    import_ray()  # a clear error naming the extra when Ray is not installed
    return RayOptions(address=args.ray_address, cpus_per_worker=args.ray_cpus_per_worker,
                      gpus_per_worker=args.ray_gpus_per_worker, workers=args.ray_workers)


def _face_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Face settings given on the command line (flags left out are None)."""
    return {name: getattr(args, name) for name in _FACE_FLAGS if getattr(args, name, None) is not None}


def cmd_prepare(args: argparse.Namespace) -> int:
    from dfer.data.adapters import load_spec
    from dfer.data.face_settings import FaceSettings
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
    settings = FaceSettings(detector=spec.default_detector).with_overrides(_face_overrides(args))
    summary = prepare_dataset(
        spec, args.out, settings, workers=args.workers, shard=args.shard or (0, 1), retry_failed=args.retry_failed,
        folds=args.folds, seed=args.seed, val_fraction=args.val_fraction, progress=not args.quiet,
        ray=_ray_options(args),
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
    "clip_size": "data.size", "lam": "loss.lam", "patience": "eval.patience", "model": "model.name",
}
_FLAGS = {"balanced": "data.balanced", "class_weighted": "loss.class_weighted",
          "peer_best_on_test": "eval.peer_best_on_test"}


def _train_config(args: argparse.Namespace, extra: list[str] = ()):
    from dfer.engine.config import load_config

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
    return "n/a" if not r or r.get(k) is None else f"{100 * r[k]:.2f}"


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
    from functools import partial

    from dfer.data.video import is_webcam
    from dfer.inference import InferenceSettings, Recognizer, predict_inputs
    from dfer.inference.episodes import EpisodeRule
    from dfer.remote import resolve_checkpoint

    inputs = list(args.inputs) + ([args.source] if args.source is not None else [])
    if not inputs:
        raise DferError("no input: give a video, a folder, a webcam index (--source 0) or a stream URL")
    settings = InferenceSettings(window_seconds=args.window or 0.0, stride=args.stride or 0,
                                 batch_size=args.batch_size, face=_face_overrides(args),
                                 min_confidence=args.min_confidence,
                                 episodes=EpisodeRule(args.min_episode, args.episode_margin))
    checkpoint = resolve_checkpoint(args.checkpoint, progress=not args.quiet)  # once, before any worker starts
    ray = _ray_options(args)
    # A Ray worker has the CPUs it asked for (one by default): one OpenVINO request each, no extra threads.
    streams = args.streams if ray is None else (args.streams or 1)
    make = partial(Recognizer.from_checkpoint, checkpoint, device=args.device, backend=args.backend,
                   settings=settings, threads=args.threads, precision=args.precision, streams=streams)
    if ray is not None and any(is_webcam(i) or "://" in str(i) for i in inputs):
        raise DferError("the Ray engine takes files and folders; run webcams and streams with the local engine")
    run = predict_inputs(make if ray else make(), inputs, args.out, annotate=not args.no_video,
                         overwrite=args.overwrite, max_seconds=args.max_seconds, progress=not args.quiet, ray=ray)
    print(f"{len(run.done)} done, {len(run.skipped)} already done (skipped), {len(run.failed)} failed -> {args.out}")
    if run.failed:
        print(f"failures listed in {args.out}/failures.csv")
    return 1 if run.failed and not run.done and not run.skipped else 0


def cmd_explain(args: argparse.Namespace) -> int:
    from dfer.inference import InferenceSettings, Recognizer
    from dfer.inference.explain_render import write_explanation
    from dfer.remote import resolve_checkpoint

    if args.backend not in ("auto", "torch"):
        print(f"note: explanations need gradients, so PyTorch runs them (--backend {args.backend} is not used)")
    settings = InferenceSettings(window_seconds=args.window or 0.0, stride=args.stride or 0, face=_face_overrides(args),
                                 min_confidence=args.min_confidence)
    rec = Recognizer.from_checkpoint(resolve_checkpoint(args.checkpoint, progress=not args.quiet), backend="torch",
                                     device=args.device, settings=settings)
    ex = rec.explain(args.video, target=args.target, stage=args.stage, every=args.every, progress=not args.quiet)
    info = write_explanation(ex, args.video, args.out, video=not args.no_video)
    print(f"explained {info['explained']} of {info['windows']} windows ({args.stage}: {info['stage_resolution']}) "
          f"-> {args.out}")
    if not ex.has_attention:
        print(f"note: {info['attention_note']}; Grad-CAM and the temporal importance are there")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from dfer.inference import export_model
    from dfer.inference.acceptance import describe

    meta = export_model(args.checkpoint, args.out, format=args.format, quantize=args.quantize,
                        calibration=args.calibration, calibration_clips_count=args.calibration_clips,
                        calibration_split=args.calibration_split, min_agreement=args.min_agreement,
                        accept=args.accept, max_drop=args.max_drop)
    p = meta["parity_vs_torch_fp32"]
    method = f" by {meta['quantization_method']}" if args.quantize else ""
    print(f"wrote {args.out} ({args.format}, {meta['quantization']}{method}); parity vs PyTorch fp32 on {p['clips']} clips "
          f"({meta['parity_runtime']}): top-1 agreement {100 * p['top1_agreement']:.1f}%, "
          f"max |logit diff| {p['max_abs_diff']:.2e}, min cosine {p['min_cosine']:.5f}")
    verdict = meta.get("acceptance")
    if verdict:
        print(f"accepted by the {verdict['rule']} rule"
              + (f": {describe(verdict)}" if verdict["rule"] == "accuracy" else "")
              + (f" ({verdict['note']})" if verdict.get("note") else ""))
    if meta.get("test_report"):
        print(f"on the fold's test part: {describe(meta['test_report'])}")
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from dfer.engine.card import write_model_card

    path = write_model_card(args.checkpoint, args.out, metrics=args.metrics)
    print(f"wrote {path}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from dfer.synth.dataset import SynthSettings, generate

    s = SynthSettings(clips_per_class=args.clips_per_class, frames=args.frames, seed=args.seed)
    manifest = generate(args.out, s, progress=not args.quiet)
    print(f"SYNTHETIC data: {args.clips_per_class} subjects x 7 classes -> {args.out} (manifest {manifest})")
    print(f"next: dfer prepare manifest --root {manifest} --out <cache>")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dfer.demo import DemoSettings, run_demo

    given = {k: getattr(args, k) for k in ("clips_per_class", "frames", "folds", "epochs") if getattr(args, k) is not None}
    if args.clip:
        t, size = args.clip
        given.update(clip_frames=t, clip_size=size, crop_size=max(DemoSettings.crop_size, size + size // 4))
    settings = DemoSettings(seed=args.seed, extra=list(args.set or []), **given)
    run_demo(args.out, settings, videos=args.video or [], progress=not args.quiet)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    from dfer.serve import serve

    serve(args.checkpoint, host=args.host, port=args.port, data_dir=args.data_dir,
          token=args.token or os.environ.get("DFER_TOKEN"), backend=args.backend, device=args.device,
          precision=args.precision, streams=args.streams, threads=args.threads, insecure=args.insecure,
          workers=args.ray_workers if args.engine == "ray" and args.ray_workers else args.workers,
          max_upload_mb=args.max_upload_mb, max_queue=args.max_queue,
          allowed_hosts=tuple(args.allowed_host or ()), max_duration=args.max_duration, max_frame=args.max_frame,
          max_fps=args.max_fps, max_attempts=args.max_attempts, job_timeout=args.job_timeout,
          worker_memory=args.worker_memory, keep_uploads=args.keep_uploads, retention=args.retention * 86400,
          min_free=args.min_free, engine=args.engine, ray=_ray_options(args), shared_dir=args.shared_dir)
    return 0


# -- parser --------------------------------------------------------------------------------
CHECKPOINT_HELP = ("a file, https://host/best.pt#sha256=HEX (downloaded once, verified) or "
                   "hf://owner/repo/best.pt[@revision]")
STREAMS_HELP = ("OpenVINO requests run at once, windows scored while frames are read "
                "(0: auto: float models as many as suit the CPU, int8 one; 1: lowest latency per window)")
# Face settings on the command line: type and help; defaults come from FaceSettings.
_FACE_FLAGS: dict[str, tuple[Callable[[str], Any], str]] = {
    "detector": (str, "dlib (HOG frontal faces) or none (inputs are face crops already)"),
    "detect_every": (POSITIVE_INT, "run the face detector on every k-th frame, interpolate in between"),
    "detect_size": (_number(int, 32), "longest side of the frame copy the detector sees, in pixels"),
    "upsample": (_number(int, 0, 3), "extra dlib upsampling levels, for small faces (0..3)"),
    "margin": (_number(float, 0, 1), "crop margin on each side, as a fraction of the face box"),
    "smooth": (_number(float, 0, 0.99), "weight of a face's previous box size at each detection (0: no smoothing)"),
    "max_missed": (NONNEG_INT, "detection rounds a face may be missed before its track ends"),
    "size": (_number(int, 8, 1024), "side of the square face crops, in pixels"),
    "max_frames": (POSITIVE_INT, "frames kept per clip, spread uniformly"),
}
_PREDICT_FACE_FLAGS = ("detector", "detect_every", "detect_size", "upsample", "margin", "smooth", "max_missed")


def _add_face_args(p: argparse.ArgumentParser, *, inherit: bool) -> None:
    """Face options; with `inherit` (predict) a flag left out means the checkpoint's value."""
    from dfer.data.face_settings import DETECTORS, FaceSettings

    defaults = {f.name: f.default for f in fields(FaceSettings)}
    for name, (kind, text) in _FACE_FLAGS.items():
        if inherit and name not in _PREDICT_FACE_FLAGS:
            continue
        if inherit:
            suffix = " (default: the checkpoint's)"
        elif name == "detector":
            suffix = " (default: the dataset's: dlib, or none for DFEW's face frames)"
        else:
            suffix = f" (default {defaults[name]})"
        p.add_argument("--" + name.replace("_", "-"), type=kind, choices=DETECTORS if name == "detector" else None,
                       default=None, help=text + suffix)


def _add_output_args(p: argparse.ArgumentParser) -> None:
    """How windows are labelled and grouped into episodes (predict and explain)."""
    from dfer.inference.episodes import EpisodeRule

    rule = EpisodeRule()
    p.add_argument("--min-confidence", type=_number(float, 0, 1), default=0.0,
                   help="label windows whose top (calibrated) probability is lower as 'uncertain' (default 0: never)")
    p.add_argument("--min-episode", type=NONNEG_FLOAT, default=rule.min_seconds,
                   help=f"seconds; shorter label runs are flickers merged into a neighbour (default {rule.min_seconds}; 0: off)")
    p.add_argument("--episode-margin", type=_number(float, 0, 1), default=rule.margin,
                   help=f"probability lead a new label needs to start an episode (default {rule.margin}; 0: off)")


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    from dfer.options import ENGINES

    p.add_argument("--engine", default="local", choices=ENGINES,
                   help='local: this machine; ray: a Ray cluster (pip install "dfer[ray]")')
    p.add_argument("--ray-address", help="default: start a local Ray sized to this machine; auto: join the running "
                                         "cluster; ray://HOST:10001: Ray Client")
    p.add_argument("--ray-cpus-per-worker", type=POSITIVE_FLOAT, default=1.0, help="CPUs each Ray worker asks for")
    p.add_argument("--ray-gpus-per-worker", type=NONNEG_FLOAT, default=0.0, help="GPUs each Ray worker asks for")
    p.add_argument("--ray-workers", type=NONNEG_INT, default=0, help="Ray workers (0: as the cluster's resources allow)")


def _add_profile(sub) -> None:
    from dfer.options import ATTENTION_STAGES, MODEL_NAMES

    p = sub.add_parser("profile", help="parameters and GMACs of the model, beside the paper and torchvision")
    p.add_argument("--clip", type=_clip, default=(16, 112, 112), help="T x H x W (default 16x112x112)")
    p.add_argument("--model", default="dfer_r2plus1d_18", choices=list(MODEL_NAMES),
                   help="the paper's network or a baseline (r2plus1d_18, r3d_18, mc3_18: plain CE)")
    p.add_argument("--attention-stage", default="layer4", choices=ATTENTION_STAGES)
    p.add_argument("--num-classes", type=_number(int, 2), default=7)
    p.add_argument("--no-reference", action="store_true", help="skip the torchvision reference models")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_profile)


def _add_prepare(sub) -> None:
    from dfer.data.adapters import ADAPTERS, DAISEE_TARGETS, DFEW_SOURCES, MAFW_SOURCES
    from dfer.data.posed import OULU_LIGHTS, OULU_SENSORS

    p = sub.add_parser("prepare", help="faces of every clip of a dataset into a clip cache, plus splits.json")
    p.add_argument("kind", choices=ADAPTERS)
    p.add_argument("--root", required=True, help="dataset root (for manifest: the CSV file)")
    p.add_argument("--out", required=True, type=out_dir, help="cache folder to create or resume")
    p.add_argument("--workers", type=POSITIVE_INT, default=1, help="parallel processes")
    p.add_argument("--shard", type=_shard, help="I/N: process the I-th of N shares (0 <= I < N)")
    _add_face_args(p, inherit=False)
    p.add_argument("--folds", type=_number(int, 2), default=5, help="k of the k-fold splits (default 5)")
    p.add_argument("--val-fraction", type=_number(float, 0, 0.5), default=0.1,
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
    _add_engine_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.set_defaults(func=cmd_prepare)


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from dfer.options import MODEL_NAMES, TRAIN_PRECISIONS

    p.add_argument("--data", required=True, type=existing_dir, help="clip cache made by `dfer prepare`")
    p.add_argument("--config", type=existing_file, help="YAML config file (keys of dfer.engine.TrainConfig)")
    p.add_argument("--out", type=out_dir, help="run folder (default runs/<cache>-...)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last.pt")
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
    p.add_argument("--clip-frames", type=POSITIVE_INT, help="T of the input clips (default 16)")
    p.add_argument("--clip-size", type=_number(int, 16), help="H = W of the input clips (default 112)")
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


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train one fold (model selection on its validation part)")
    _add_train_args(p)
    p.add_argument("--fold", default="1", help="fold name in splits.json (default 1)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("cv", help="k-fold cross-validation with reports")
    _add_train_args(p)
    p.add_argument("--folds", help="comma-separated fold names (default: all)")
    p.set_defaults(func=cmd_cv)
    from dfer.engine.variants import DEFAULT_VARIANTS, VARIANTS

    p = sub.add_parser("ablate", help="cross-validate the paper's network, its ablations and baselines side by side")
    _add_train_args(p)
    p.add_argument("--variants", help=f"comma-separated, from {', '.join(VARIANTS)} "
                                      f"(default {','.join(DEFAULT_VARIANTS)}; full is always included)")
    p.add_argument("--quick", action="store_true",
                   help="demo-size clips (8x32x32) and 2 epochs: well under an hour on a 2-core CPU")
    p.add_argument("--folds", help="comma-separated fold names (default: all)")
    p.set_defaults(func=cmd_ablate)


def _add_evaluate(sub) -> None:
    from dfer.options import FRAME_ORDERS, SPLITS

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
    p.set_defaults(func=cmd_evaluate)


def _add_predict(sub) -> None:
    from dfer.options import BACKENDS, PRECISIONS

    p = sub.add_parser("predict", help="expressions of every face in videos, folders, a webcam or a stream")
    p.add_argument("inputs", nargs="*", help="video files, frame folders, folders of videos, stream URLs")
    p.add_argument("--checkpoint", required=True, type=checkpoint_ref,
                   help="dfer checkpoint (.pt) or exported model (.onnx, OpenVINO .xml); " + CHECKPOINT_HELP)
    p.add_argument("--out", required=True, type=out_dir, help="output folder (one subfolder per input)")
    p.add_argument("--source", help="a webcam index (0) or a stream URL (rtsp://, http://)")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="auto: the fastest installed runtime that agrees with float32 (converted once, cached)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto: the checkpoint's verified int8 model when there is one (beside it, made by dfer train), "
                        "else OpenVINO's native float (bf16 on CPUs with native bf16, else f32); f32 | bf16 | int8 force one")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--stride", type=POSITIVE_INT, help="frames between windows of a face (default: 1 s of video)")
    p.add_argument("--window", type=POSITIVE_FLOAT, help="window span in seconds (default: training clip length)")
    _add_face_args(p, inherit=True)
    _add_output_args(p)
    p.add_argument("--batch-size", type=POSITIVE_INT, default=8, help="windows per model call")
    p.add_argument("--threads", type=NONNEG_INT, default=0, help="ONNX Runtime / OpenVINO threads (0: all cores)")
    p.add_argument("--streams", type=NONNEG_INT, default=0, help=STREAMS_HELP)
    p.add_argument("--max-seconds", type=POSITIVE_FLOAT, help="stop after this much video (live sources run until stopped)")
    p.add_argument("--no-video", action="store_true", help="skip annotated.mp4")
    p.add_argument("--overwrite", action="store_true", help="redo inputs that already have outputs")
    _add_engine_args(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_predict)


def _add_explain(sub) -> None:
    from dfer.options import BACKENDS, EXPLAIN_STAGE_RESOLUTION, EXPLAIN_STAGES

    p = sub.add_parser("explain", help="where and when each face window's decision comes from: Grad-CAM, "
                                       "attention maps, temporal importance")
    p.add_argument("video", help="a video file or frame folder")
    p.add_argument("--checkpoint", required=True, type=checkpoint_ref, help="dfer checkpoint (.pt); " + CHECKPOINT_HELP)
    p.add_argument("--out", required=True, type=out_dir, help="output folder")
    p.add_argument("--target", help="class to explain (default: each window's predicted class)")
    p.add_argument("--stage", default="layer3", choices=EXPLAIN_STAGES,
                   help="Grad-CAM stage: " + "; ".join(f"{k} {v}" for k, v in EXPLAIN_STAGE_RESOLUTION.items()))
    p.add_argument("--every", type=POSITIVE_INT, default=1, help="explain every N-th window (each costs T+2 passes)")
    p.add_argument("--backend", default="auto", choices=BACKENDS, help="ignored: PyTorch runs explanations")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--stride", type=POSITIVE_INT, help="frames between windows of a face (default: 1 s of video)")
    p.add_argument("--window", type=POSITIVE_FLOAT, help="window span in seconds (default: training clip length)")
    p.add_argument("--min-confidence", type=_number(float, 0, 1), default=0.0, help="as for dfer predict")
    _add_face_args(p, inherit=True)
    p.add_argument("--no-video", action="store_true", help="skip explain.mp4")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_explain)


def _add_export(sub) -> None:
    from dfer.options import ACCEPT_RULES, EXPORT_FORMATS, MAX_DROP_POINTS

    p = sub.add_parser("export", help="ONNX or OpenVINO model (fp32 or int8) with class names and preprocessing inside")
    p.add_argument("checkpoint", type=checkpoint_ref, help=CHECKPOINT_HELP)
    p.add_argument("--format", default="onnx", choices=EXPORT_FORMATS,
                   help="onnx: one .onnx file; openvino: IR NAME.xml + NAME.bin (needs dfer[openvino])")
    p.add_argument("--quantize", choices=["int8"],
                   help="int8: OpenVINO by NNCF with accuracy control; ONNX by ONNX Runtime static QDQ; calibrated")
    p.add_argument("--calibration", type=existing_dir, help="clip cache to calibrate int8 on (default: synthetic faces)")
    p.add_argument("--calibration-clips", type=POSITIVE_INT, default=32)
    p.add_argument("--calibration-split", type=existing_file,
                   help="a fold's split.json (beside its checkpoint): calibrate on its train part, accept on its "
                        "validation part, report on its test part")
    p.add_argument("--accept", default="accuracy", choices=ACCEPT_RULES,
                   help="int8 is written when: accuracy: its WAR and UAR on held-out labelled clips are each within "
                        "--max-drop points of float32 (needs --calibration; else agreement applies); agreement: its "
                        "top-1 agreement with float32 is >= --min-agreement")
    p.add_argument("--max-drop", type=NONNEG_FLOAT, default=MAX_DROP_POINTS,
                   help=f"accuracy rule: largest WAR / UAR drop in points (default {MAX_DROP_POINTS})")
    p.add_argument("--min-agreement", type=_number(float, 0.0, 1.0), default=0.99,
                   help="agreement rule: refuse a model whose top-1 agreement with float32 on held-out clips is lower")
    p.add_argument("--out", required=True, type=out_file, help="output .onnx file, or .xml for OpenVINO")
    p.set_defaults(func=cmd_export)


def _add_card(sub) -> None:
    p = sub.add_parser("card", help="MODEL_CARD.md for a checkpoint: model, cost, data, protocol, results, limits")
    p.add_argument("checkpoint", type=checkpoint_ref, help=CHECKPOINT_HELP)
    p.add_argument("--metrics", type=existing_file, help="the run's metrics.json (default: the one beside the checkpoint)")
    p.add_argument("--out", type=out_file, help="default: MODEL_CARD.md beside the checkpoint")
    p.set_defaults(func=cmd_card)


def _add_synth(sub) -> None:
    from dfer.synth.dataset import SynthSettings

    d = SynthSettings()
    p = sub.add_parser("synth", help="SYNTHETIC expression videos (7 classes, folder layout + manifest)")
    p.add_argument("--out", required=True, type=out_dir)
    p.add_argument("--clips-per-class", type=POSITIVE_INT, default=d.clips_per_class,
                   help=f"subjects; each performs every class ({d.clips_per_class})")
    p.add_argument("--frames", type=_number(int, 2), default=d.frames, help=f"frames per video ({d.frames}, at 25 fps)")
    p.add_argument("--seed", type=NONNEG_INT, default=d.seed)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth)


def _add_demo(sub) -> None:
    from dfer.demo import DemoSettings

    d = DemoSettings()
    p = sub.add_parser("demo", help="synthesise, prepare, cross-validate, ablate and predict, in one go (SYNTHETIC data)")
    p.add_argument("--out", default="dfer-demo", type=out_dir, help="output folder (default dfer-demo)")
    p.add_argument("--video", nargs="*", help="also run dfer predict on these videos")
    p.add_argument("--clips-per-class", type=POSITIVE_INT, help=f"subjects (default {d.clips_per_class})")
    p.add_argument("--frames", type=_number(int, 4), help=f"frames per synthetic video (default {d.frames})")
    p.add_argument("--folds", type=_number(int, 2), help=f"cross-validation folds (default {d.folds})")
    p.add_argument("--epochs", type=POSITIVE_INT, help=f"epochs per fold (default {d.epochs})")
    p.add_argument("--clip", type=_demo_clip,
                   help=f"network input TxS (default {d.clip_frames}x{d.clip_size}: {d.clip_frames} frames of "
                        f"{d.clip_size}x{d.clip_size})")
    p.add_argument("--seed", type=NONNEG_INT, default=d.seed)
    p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="further training config overrides")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)


def _add_serve(sub) -> None:
    from dfer.options import BACKENDS, PRECISIONS

    p = sub.add_parser("serve", help="HTTP service and web page: upload videos, get annotated results")
    p.add_argument("--checkpoint", required=True, type=checkpoint_ref,
                   help="dfer checkpoint (.pt) or exported model; " + CHECKPOINT_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; "
                                                        "another address needs --token, or --insecure)")
    p.add_argument("--insecure", action="store_true", help="listen on a non-loopback address without a token")
    p.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="a further Host name to accept (e.g. the public name a reverse proxy forwards); repeatable")
    p.add_argument("--port", type=_number(int, 1, 65535), default=8000)
    p.add_argument("--data-dir", type=out_dir, default="dfer-serve", help="job database, uploads and results")
    p.add_argument("--workers", type=POSITIVE_INT, default=1,
                   help="worker processes: videos processed at once, each worker with its own copy of the model")
    p.add_argument("--threads", type=NONNEG_INT, default=0,
                   help="runtime threads per worker (0: all cores with one worker, else cores / workers)")
    p.add_argument("--max-attempts", type=POSITIVE_INT, default=2,
                   help="runs of a job whose worker died (crash, signal, out of memory) before it fails")
    p.add_argument("--job-timeout", type=NONNEG_FLOAT, default=0.0,
                   help="seconds a job may run (0: 120 s + 20 s per second of video, 3x with explain)")
    p.add_argument("--worker-memory", type=_size, default=0,
                   help="memory (RSS) a worker may use, e.g. 4G; over it the job fails (0: 80%% of RAM / workers)")
    p.add_argument("--keep-uploads", action="store_true", help="keep each upload after its job ends")
    p.add_argument("--retention", type=NONNEG_FLOAT, default=7.0,
                   help="days a finished job's results are kept (0: forever)")
    p.add_argument("--min-free", type=_size, default=1 << 30,
                   help="refuse uploads (507) while the disk has less free space (default 1G)")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on the API (or set DFER_TOKEN)")
    p.add_argument("--max-upload-mb", type=POSITIVE_FLOAT, default=500.0)
    p.add_argument("--max-duration", type=POSITIVE_FLOAT, default=3600.0, help="seconds of video an upload may hold")
    p.add_argument("--max-frame", type=_frame_size, default=(4096, 2160), help="largest frame WxH, either orientation")
    p.add_argument("--max-fps", type=POSITIVE_FLOAT, default=240.0, help="highest frame rate of an upload")
    p.add_argument("--max-queue", type=POSITIVE_INT, default=32, help="queued jobs before new ones are refused (503)")
    p.add_argument("--backend", default="auto", choices=BACKENDS, help="as for dfer predict")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help="as for dfer predict")
    p.add_argument("--streams", type=NONNEG_INT, default=0, help=STREAMS_HELP)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    _add_engine_args(p)  # --engine ray: jobs on Ray actors, one per --workers
    p.add_argument("--shared-dir", type=out_dir,
                   help="--engine ray: a folder every node sees at the same path, for uploads and results "
                        "(default: they travel through Ray's object store)")
    p.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    from dfer import __version__

    p = argparse.ArgumentParser(prog="dfer", description="Dynamic facial expression recognition.")
    p.add_argument("--version", action="version", version=f"dfer {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_profile, _add_prepare, _add_train, _add_evaluate, _add_predict, _add_explain, _add_export, _add_card,
                _add_synth, _add_demo, _add_serve):
        add(sub)
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
