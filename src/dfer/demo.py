"""`dfer demo`: the whole system on a fresh machine, on SYNTHETIC data, in one command.

    synthesise (dfer synth) -> prepare with dlib (dfer prepare manifest) -> k-fold cross-validation of
    the paper's network at a reduced clip size (dfer cv) -> temporal ablation (each fold's selected
    model on its test part with frames shuffled in time) -> dfer predict on a held-out synthetic video
    and on any video the user passes -> OUT/demo_report.md

Every stage resumes: rerunning the command after a kill continues where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfer.engine.results import CVResult
from dfer.errors import ConfigError
from dfer.files import atomic_write_json, atomic_write_text
from dfer.formatting import percent

BANNER = "SYNTHETIC DATA: procedurally drawn cartoon faces made by dfer synth, not people"


@dataclass
class DemoSettings:
    """Defaults finish in about 10 minutes on a 2-core CPU limited to AVX2 (see README); all reduce
    for a quick check.

    Why these: training from scratch (no pretrained weights offline) is data-starved, so more
    subjects beat more epochs at equal compute; a tight crop (margin 0.1) at 32 px keeps the
    expression cues as large as a 0.2 margin at 40 px for 0.64x the cost; 3 folds leave each
    fold enough epochs inside the time budget. The network is the paper's at half width (half the
    channels in every stage; the attention block and both heads kept): it trains 2.7x faster than
    the full width at this clip (27.7 vs 10.4 clips/s) and keeps the demo's point (the temporal
    model beats the same model on shuffled frames by 17 points; the full width: 19).
    """

    model: str = "dfer_r2plus1d_18_half"  # dfer.models registry name; dfer_r2plus1d_18: the paper's full width
    clips_per_class: int = 96  # subjects; each performs all 7 classes
    frames: int = 32  # per synthetic video (1.28 s at 25 fps)
    folds: int = 3  # subject-grouped stratified k-fold
    epochs: int = 7
    clip_frames: int = 8  # T of the network input (the paper: 16)
    clip_size: int = 32  # H = W of the network input (the paper: 112)
    crop_size: int = 40  # side of the cached face crops
    margin: float = 0.1  # face crop margin on each side
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    workers: int = 2  # processes for synthesis and face preparation
    extra: list[str] = field(default_factory=list)  # further `key=value` training overrides

    def __post_init__(self) -> None:
        checks = [
            (self.folds >= 2, f"folds must be >= 2, got {self.folds}"),
            (self.clips_per_class >= self.folds + 1,
             f"clips_per_class (subjects) must be at least folds + 1 = {self.folds + 1} so every fold has "
             f"training, validation and test subjects, got {self.clips_per_class}"),
            (self.frames >= 4, f"frames must be >= 4, got {self.frames}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.clip_frames >= 1 and self.clip_size >= 16, f"clip must be >= 1 x 16, got {self.clip_frames}x{self.clip_size}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"demo settings: {msg}")


def _stage(log: Callable[[str], None], timings: dict[str, float], name: str):
    class _Timer:
        def __enter__(self):
            log(f"== {name} ==")
            self.t0 = time.perf_counter()

        def __exit__(self, *exc):
            timings[name] = round(time.perf_counter() - self.t0, 1)
            if exc[0] is None:
                log(f"   {name}: {timings[name]:.0f} s")

    return _Timer()


def _train_config(s: DemoSettings, progress: bool):
    from dfer.engine.config import load_config

    return load_config(overrides=[
        f"model.name={s.model}", f"optim.epochs={s.epochs}", f"optim.lr={s.lr}", f"data.batch_size={s.batch_size}",
        "data.workers=0",
        f"data.num_frames={s.clip_frames}", f"data.size={s.clip_size}", f"runtime.seed={s.seed}",
        f"runtime.progress={str(progress).lower()}", "weights=none", "optim.warmup_epochs=0.5",
        "data.crop_scale=[0.85,1.0]", "data.color_jitter=0.15",
        "deploy.int8=false",  # int8 is shown once, on the first fold (its own stage): it costs minutes per fold
        *s.extra,
    ])


def run_demo(out: str | Path = "dfer-demo", settings: DemoSettings | None = None, *, videos: Sequence[str] = (),
             progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    from dfer.data.adapters import load_spec
    from dfer.data.face_settings import FaceSettings
    from dfer.data.prepare import prepare_dataset
    from dfer.engine.evaluate import evaluate_checkpoint
    from dfer.inference import InferenceSettings, Recognizer, predict_inputs
    from dfer.runs import run_cv
    from dfer.synth.dataset import CLASSES, SynthSettings, generate

    s = settings or DemoSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    log(BANNER)

    with _stage(log, timings, "synthesise videos"):
        manifest = generate(out / "synthetic_videos", SynthSettings(clips_per_class=s.clips_per_class, frames=s.frames,
                                                                    seed=s.seed), workers=s.workers, progress=progress)
    with _stage(log, timings, "prepare (dlib faces, tracking, crops)"):
        spec = load_spec("manifest", manifest)
        summary = prepare_dataset(spec, out / "cache", FaceSettings(size=s.crop_size, max_frames=s.frames, margin=s.margin),
                                  workers=s.workers, folds=s.folds, seed=s.seed, progress=progress)
        log("   " + summary.line())
    cfg = _train_config(s, progress)
    with _stage(log, timings, f"{s.folds}-fold cross-validation"):
        cv = run_cv(cfg, out / "cache", out / "cv", resume=True)
    with _stage(log, timings, "temporal ablation (frames shuffled in time)"):
        ablation = _ablation(out, cv, evaluate_checkpoint)
        log(f"   test WAR {_pct(ablation['natural']['war'])} in order vs {_pct(ablation['shuffled']['war'])} shuffled")
    with _stage(log, timings, "int8 export of the first fold"):
        int8 = _int8_first_fold(out, cv)
        log(f"   {int8['line']}")
    with _stage(log, timings, "predict"):
        sample = _held_out_video(out)
        ckpt = out / "cv" / f"fold_{cv.folds[0]}" / "best.pt"
        rec = Recognizer.from_checkpoint(ckpt, settings=InferenceSettings(stride=5, window_seconds=1.0))
        run = predict_inputs(rec, [str(sample), *videos], out / "predict", progress=False, log=log)
    total = round(time.perf_counter() - t_all, 1)
    result = {
        "data": BANNER, "settings": asdict(s), "classes": CLASSES,
        "prepared": {"ok": summary.ok, "failed": summary.failed},
        "cv": {k: v for k, v in cv.to_dict().items() if k in ("selected", "last", "per_fold", "folds")},
        "ablation": ablation, "int8": int8,
        "predict": {"outputs": run.done + run.skipped, "failed": run.failed, "sample": str(sample)},
        "timings_s": {**timings, "total": total},
    }
    atomic_write_json(out / "demo.json", _clean(result))
    atomic_write_text(out / "demo_report.md", _report(result, out))
    log(f"== done in {total / 60:.1f} min ==")
    log(f"cross-validated test WAR {_pct(cv.selected['war']['mean'])} ± {_pct(cv.selected['war']['std'])} "
        f"(UAR {_pct(cv.selected['uar']['mean'])}); frames shuffled: WAR {_pct(ablation['shuffled']['war'])}")
    log(f"report:       {out / 'demo_report.md'}")
    log(f"CV report:    {out / 'cv' / 'report.md'}")
    log(f"checkpoints:  {out / 'cv'}/fold_*/best.pt")
    log(f"predictions:  {out / 'predict'}/")
    log(f"serve it:     dfer serve --checkpoint {ckpt}   (then open http://127.0.0.1:8000/)")
    return result


def _pct(v: float | None) -> str:
    return percent(v, 1, suffix="%")


def _clean(x):
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return None if isinstance(x, float) and np.isnan(x) else x


def _ablation(out: Path, cv: CVResult, evaluate) -> dict[str, Any]:
    """Each fold's selected model on its own test part, frames in order and shuffled; pooled over folds."""
    from dfer.metrics import report_from_confusion

    # In order, the selected models' test scores are the cross-validation's own (pooled confusion).
    pooled: dict[str, np.ndarray] = {"natural": np.asarray(cv.selected["pooled"]["confusion"])}
    for order in ("shuffled",):
        cms = []
        for fold in cv.folds:
            ckpt = out / "cv" / f"fold_{fold}" / "best.pt"
            r = evaluate(ckpt, out / "cache", split="test", frame_order=order, workers=0,
                         out=out / "cv" / f"fold_{fold}" / f"eval_test_{order}")
            cms.append(np.asarray(r["report"]["confusion"]))
        pooled[order] = np.sum(cms, axis=0)
    names = cv.class_names
    res = {}
    for order, cm in pooled.items():
        rep = report_from_confusion(cm, names)
        res[order] = {"war": rep.war, "uar": rep.uar, "per_class_recall": dict(zip(names, rep.per_class_recall))}
    res["war_drop"] = res["natural"]["war"] - res["shuffled"]["war"]
    return res


def _int8_first_fold(out: Path, cv: CVResult) -> dict[str, Any]:
    """The first fold's selected model as OpenVINO int8, as `dfer train` makes it for every fold (calibrated
    on its train part, accepted by the accuracy rule on its validation part), with a line saying how it went."""
    from dfer.acceptance import describe
    from dfer.inference.export import export_fold_int8

    best = out / "cv" / f"fold_{cv.folds[0]}" / "best.pt"
    r = export_fold_int8(best, out / "cache")
    if r["status"] == "refused":
        return {**r, "line": f"int8 refused: {r['reason']}"}
    if r["status"] == "failed":  # no NNCF, a runtime that cannot load int8 here: the demo's point stands without it
        return {**r, "line": f"int8 not made: {r['reason']}"}
    model = (best.parent / r["model"]).relative_to(out)
    line = (f"int8 accepted ({model}): validation {describe(r['val'])}"
            + (f"; test {describe(r['test'])}" if r["test"] else ""))
    return {"status": "accepted", "model": str(model), "line": line}


def _held_out_video(out: Path) -> Path:
    """A synthetic video from the test part of the first fold, so the model predicts on unseen data."""
    from dfer.data.cache import ClipCache
    from dfer.data.prepare import load_splits

    splits = load_splits(out / "cache")
    fold = splits["protocols"][splits["default"]]["folds"][0]
    rows = {r.id: r for r in ClipCache(out / "cache").index()}
    # Prefer a Surprise clip: its expression unfolds clearly over the video.
    ids = sorted(fold["test"], key=lambda i: (not i.startswith("Surprise"), i))
    return Path(rows[ids[0]].source)


def _network(name: str) -> str:
    full = "the paper's R(2+1)D-18 + spatio-temporal attention + CE and sparse-center-loss heads"
    if name == "dfer_r2plus1d_18":
        return full
    if name == "dfer_r2plus1d_18_half":
        return f"{full}, at half width (`{name}`: half the channels in every stage)"
    return f"`{name}` (a baseline of the paper)"


def _report(r: dict[str, Any], out: Path) -> str:
    cv, ab, s = r["cv"], r["ablation"], r["settings"]
    names = r["classes"]
    sel = cv["selected"]
    lines = [
        "# dfer demo report", "", f"> **{BANNER}.** Numbers below say the pipeline works end to end; they say "
        "nothing about real facial expressions.", "",
        f"{s['clips_per_class']} subjects x 7 classes, {s['frames']}-frame videos; "
        f"{r['prepared']['ok']} clips prepared, {r['prepared']['failed']} failed (no face found: see cache/failures.csv).",
        f"Network: {_network(s['model'])}, random init, at a reduced clip of "
        f"{s['clip_frames']}x{s['clip_size']}x{s['clip_size']} "
        f"(the paper: 16x112x112), {s['epochs']} epochs, Adam lr {s['lr']}, batch {s['batch_size']}.", "",
        f"## {len(cv['folds'])}-fold cross-validation (subject-grouped; selection on validation only)", "",
        "| | WAR | UAR |", "|---|---|---|",
        f"| selected on validation | {_pct(sel['war']['mean'])} ± {_pct(sel['war']['std'])} | "
        f"{_pct(sel['uar']['mean'])} ± {_pct(sel['uar']['std'])} |",
        f"| last epoch | {_pct(cv['last']['war']['mean'])} ± {_pct(cv['last']['war']['std'])} | "
        f"{_pct(cv['last']['uar']['mean'])} ± {_pct(cv['last']['uar']['std'])} |", "",
        "Per-class recall, confusion matrices and curves: `cv/report.md`, `cv/confusion*.png`, `cv/fold_*/`.", "",
        "## Temporal ablation", "",
        "The same selected models, on the same test clips, with each clip's frames shuffled in time. Surprise and "
        "Fear are made of the same frames in opposite order, so only a model that uses time separates them.", "",
        "| frames | WAR | UAR | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names),
    ]
    for order in ("natural", "shuffled"):
        a = ab[order]
        lines.append(f"| {'in order' if order == 'natural' else 'shuffled'} | {_pct(a['war'])} | {_pct(a['uar'])} | "
                     + " | ".join(_pct(a["per_class_recall"][n]) for n in names) + " |")
    lines += ["", f"WAR drop when time is destroyed: {100 * ab['war_drop']:.1f} points.", "",
              "## int8 (first fold)", "", r["int8"]["line"], "", "## Predictions on video", ""]
    for d in r["predict"]["outputs"]:
        lines.append(f"- `{Path(d).relative_to(out) if Path(d).is_relative_to(out) else d}/`: annotated.mp4, "
                     "timeline.png, predictions.csv, summary.json")
    for item, reason in r["predict"]["failed"]:
        lines.append(f"- failed: {item}: {reason}")
    lines += ["", "## Time per stage (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in r["timings_s"].items()]
    return "\n".join(lines) + "\n"


