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
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from dfer.acceptance import describe
from dfer.data.adapters import load_spec
from dfer.data.cache import ClipCache
from dfer.data.face_settings import FaceSettings
from dfer.data.prepare import prepare_dataset
from dfer.data.splits import Splits
from dfer.demo_settings import DemoSettings
from dfer.engine.config import load_config
from dfer.engine.evaluate import evaluate_checkpoint
from dfer.engine.results import CVResult, FoldResult
from dfer.files import atomic_write_json, atomic_write_text
from dfer.formatting import percent, percent1
from dfer.inference import InferenceSettings, Recognizer, predict_inputs
from dfer.inference.export import export_fold_int8
from dfer.metrics import report_from_confusion
from dfer.models.registry import REGISTRY
from dfer.runs import run_cv
from dfer.synth.dataset import CLASSES, SynthSettings, generate

BANNER = "SYNTHETIC DATA: procedurally drawn cartoon faces made by dfer synth, not people"


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
        log(f"   test WAR {percent1(ablation['natural']['war'])} in order vs {percent1(ablation['shuffled']['war'])} shuffled")
    fold, fold_val = _best_fold(out, cv)
    log(f"   the model to use: fold {fold}'s (the best validation WAR, {percent1(fold_val)}; never its test score), "
        f"as {out / 'best.pt'}")
    with _stage(log, timings, f"int8 export of fold {fold}"):
        int8 = _int8_fold(out, fold)
        log(f"   {int8['line']}")
    with _stage(log, timings, "predict"):
        sample = _held_out_video(out, cv.folds.index(fold))
        ckpt = out / "best.pt"
        rec = Recognizer.from_checkpoint(ckpt, settings=InferenceSettings(stride=5, window_seconds=1.0))
        run = predict_inputs(rec, [str(sample), *videos], out / "predict", progress=False, log=log)
    total = round(time.perf_counter() - t_all, 1)
    result = {
        "data": BANNER, "settings": asdict(s), "classes": CLASSES,
        "prepared": {"ok": summary.ok, "failed": summary.failed},
        "cv": {k: v for k, v in cv.to_dict().items() if k in ("selected", "last", "per_fold", "folds")},
        "ablation": ablation, "int8": int8, "model": {"fold": fold, "val_war": fold_val, "checkpoint": "best.pt"},
        "predict": {"outputs": run.done + run.skipped, "failed": run.failed, "sample": str(sample)},
        "timings_s": {**timings, "total": total},
    }
    atomic_write_json(out / "demo.json", _clean(result))
    atomic_write_text(out / "demo_report.md", _report(result, out))
    log(f"== done in {total / 60:.1f} min ==")
    log(f"cross-validated test WAR {percent1(cv.selected.war.mean)} ± {percent1(cv.selected.war.std)} "
        f"(UAR {percent1(cv.selected.uar.mean)}); frames shuffled: WAR {percent1(ablation['shuffled']['war'])}")
    log(f"report:       {out / 'demo_report.md'}")
    log(f"CV report:    {out / 'cv' / 'report.md'}")
    log(f"checkpoints:  {out / 'cv'}/fold_*/best.pt; the one to use: {ckpt} (fold {fold})")
    log(f"predictions:  {out / 'predict'}/")
    log(f"serve it:     dfer serve --checkpoint {ckpt}   (then open http://127.0.0.1:8000/)")
    return result


def _clean(x):
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return None if isinstance(x, float) and np.isnan(x) else x


def _ablation(out: Path, cv: CVResult, evaluate) -> dict[str, Any]:
    """Each fold's selected model on its own test part, frames in order and shuffled; pooled over folds."""
    # In order, the selected models' test scores are the cross-validation's own (pooled confusion).
    pooled: dict[str, np.ndarray] = {"natural": np.asarray(cv.selected.pooled["confusion"])}
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


def _best_fold(out: Path, cv: CVResult) -> tuple[str, float]:
    """The fold whose selected checkpoint has the best validation WAR (its test score never decides), and
    that WAR; its best.pt and int8 model are linked as OUT/best.pt (and beside it), the model to use."""
    def val_war(fold: str) -> float:
        val = FoldResult.load(out / "cv" / f"fold_{fold}").selected.val or {}
        return float(val.get("val_war") if val.get("val_war") is not None else val.get("war", float("-inf")))

    scores = {f: val_war(f) for f in cv.folds}
    fold = max(cv.folds, key=lambda f: (scores[f], -cv.folds.index(f)))
    _link(out / "cv" / f"fold_{fold}" / "best.pt", out / "best.pt")
    return fold, scores[fold]


def _link(target: Path, link: Path) -> None:
    """`link` -> `target` (relative), replacing what was there: a rerun may pick another fold."""
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.relative_to(link.parent))
    tmp.replace(link)


def _int8_fold(out: Path, fold: str) -> dict[str, Any]:
    """The fold's selected model as OpenVINO int8, as `dfer train` makes it for every fold (calibrated on its
    train part, judged by the accuracy rule on its validation part), linked beside OUT/best.pt, with a line
    saying how it went."""
    best = out / "cv" / f"fold_{fold}" / "best.pt"
    r = export_fold_int8(best, out / "cache")
    if not r.written:  # refused, or not made (no NNCF...): the demo's point stands without it
        return {**r.to_dict(), "line": r.line()}
    for part in best.parent.glob(Path(r.model).stem + ".*"):  # the .xml and its .bin, beside OUT/best.pt
        _link(part, out / part.name)
    model = (best.parent / r.model).relative_to(out)
    line = r.line().replace(f"({r.model})", f"({model})") + (f"; test {describe(r.test)}" if r.test else "")
    return {**r.to_dict(), "model": str(model), "line": line}


def _held_out_video(out: Path, k: int) -> Path:
    """A synthetic video from the test part of the k-th fold (the model's), so it predicts on unseen data."""
    fold = Splits.load(out / "cache").folds()[k]
    rows = {r.id: r for r in ClipCache(out / "cache").index()}
    # Prefer a Surprise clip: its expression unfolds clearly over the video.
    ids = sorted(fold.test, key=lambda i: (not i.startswith("Surprise"), i))
    return Path(rows[ids[0]].source)


def _network(name: str) -> str:
    return f"{REGISTRY[name].description} (`{name}`)"


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
        f"| selected on validation | {percent1(sel['war']['mean'])} ± {percent1(sel['war']['std'])} | "
        f"{percent1(sel['uar']['mean'])} ± {percent1(sel['uar']['std'])} |",
        f"| last epoch | {percent1(cv['last']['war']['mean'])} ± {percent1(cv['last']['war']['std'])} | "
        f"{percent1(cv['last']['uar']['mean'])} ± {percent1(cv['last']['uar']['std'])} |", "",
        "Per-class recall, confusion matrices and curves: `cv/report.md`, `cv/confusion*.png`, `cv/fold_*/`.", "",
        "## Temporal ablation", "",
        "The same selected models, on the same test clips, with each clip's frames shuffled in time. Surprise and "
        "Fear are made of the same frames in opposite order, so only a model that uses time separates them.", "",
        "| frames | WAR | UAR | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names),
    ]
    for order in ("natural", "shuffled"):
        a = ab[order]
        lines.append(f"| {'in order' if order == 'natural' else 'shuffled'} | {percent1(a['war'])} | {percent1(a['uar'])} | "
                     + " | ".join(percent1(a["per_class_recall"][n]) for n in names) + " |")
    lines += ["", f"WAR drop when time is destroyed: {percent(ab['war_drop'], 1)} points.", "",
              f"## The model to use: fold {r['model']['fold']}", "",
              f"`best.pt` is fold {r['model']['fold']}'s selected checkpoint: the best validation WAR of the folds "
              f"({percent1(r['model']['val_war'])}); the test parts never choose it.", "",
              "## int8", "", r["int8"]["line"], "", "## Predictions on video", ""]
    for d in r["predict"]["outputs"]:
        lines.append(f"- `{Path(d).relative_to(out) if Path(d).is_relative_to(out) else d}/`: annotated.mp4, "
                     "timeline.png, predictions.csv, summary.json")
    for item, reason in r["predict"]["failed"]:
        lines.append(f"- failed: {item}: {reason}")
    lines += ["", "## Time per stage (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in r["timings_s"].items()]
    return "\n".join(lines) + "\n"


