"""What a distilled student keeps and what it gains, on dfer synth, with the honest protocol.

Per fold of a subject-grouped 3-fold split of `dfer synth` (the demo's data at 48 subjects x 7 classes
by default, dlib faces, 40 px crops): the teacher (the paper's network, full width, at the demo's 8x32x32 clip
from scratch: a size a 2-core CPU trains in minutes), the student trained with the teacher
(`dfer distill`), and the same student trained alone (`dfer cv --model ...`), each selected on its
fold's validation part and scored once on its test part. Then, on this CPU: MACs, clips/s of each
network through the runtime `dfer predict` picks (`auto`), and the whole `dfer predict` on a 60 s
video beside each network's own bound (the network alone on the command's windows).

    python benchmarks/bench_distill.py --work /tmp/bench-distill --out bench_distill.json

Everything is resumable: a second run reuses the data and the finished folds in --work.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import looped_video  # noqa: E402
from bench_pipeline import command, network_alone  # noqa: E402
from dfer.compute_cost import profile_model  # noqa: E402
from dfer.demo import _train_config  # noqa: E402
from dfer.demo_settings import DemoSettings  # noqa: E402
from dfer.files import atomic_write_json  # noqa: E402
from dfer.inference import Recognizer  # noqa: E402
from dfer.inference.scoring import ScoringQueue  # noqa: E402
from dfer.models import build_model  # noqa: E402
from dfer.runs import run_cv, run_distill  # noqa: E402


def cpu() -> dict:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), platform.processor())
    flags = next((ln.split(":", 1)[1].split() for ln in out.splitlines() if ln.startswith("Flags")), [])
    keep = [f for f in flags if f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16")]
    return {"name": name, "flags": keep, "cores": int(subprocess.run(["nproc"], capture_output=True, text=True).stdout)}


def data(work: Path, s: DemoSettings) -> Path:
    """The demo's synthetic set, prepared once."""
    from dfer.data.adapters import load_spec
    from dfer.data.face_settings import FaceSettings
    from dfer.data.prepare import prepare_dataset
    from dfer.synth.dataset import SynthSettings, generate

    cache = work / "cache"
    if (cache / "splits.json").is_file():
        return cache
    manifest = generate(work / "videos", SynthSettings(clips_per_class=s.clips_per_class, frames=s.frames, seed=s.seed),
                        workers=s.workers, progress=False)
    prepare_dataset(load_spec("manifest", manifest), cache, FaceSettings(size=s.crop_size, max_frames=s.frames,
                                                                         margin=s.margin),
                    workers=s.workers, folds=s.folds, seed=s.seed, progress=False)
    return cache


def per_fold(run: Path, folds: list[str]) -> dict:
    """Test WAR / UAR of each fold's selected model, and the pooled WAR / UAR over folds."""
    rows, confusion = {}, None
    for f in folds:
        test = json.loads((run / f"fold_{f}" / "metrics.json").read_text())["selected"]["test"]
        rows[f] = {"war": test["war"], "uar": test["uar"]}
        c = np.asarray(test["confusion"], dtype=np.int64)
        confusion = c if confusion is None else confusion + c
    recall = np.diag(confusion) / np.maximum(confusion.sum(1), 1)
    pooled = {"war": float(np.trace(confusion) / confusion.sum()), "uar": float(recall[confusion.sum(1) > 0].mean())}
    return {"folds": rows, "pooled": pooled}


def clips_per_second(ckpt: Path, n: int = 200) -> dict:
    """Clips/s of one network through the runtime `auto` picks, one face clip per call, as predict scores."""
    rec = Recognizer.from_checkpoint(ckpt)
    pre = rec.preprocess
    clip = np.random.default_rng(0).standard_normal((1, 3, pre.num_frames, pre.size, pre.size), dtype=np.float32)
    queue: ScoringQueue[int] = ScoringQueue(rec.backend, rec.backend.concurrency)
    for k in range(10):  # warm-up
        queue.submit(clip, k)
    queue.drain()
    t0 = time.perf_counter()
    for k in range(n):
        queue.submit(clip, k)
        queue.ready()
    queue.drain()
    seconds = time.perf_counter() - t0
    queue.close()
    return {"clips_per_s": round(n / seconds, 1), "backend": rec.backend.detail}


def predict_speed(ckpt: Path, video: Path, seconds: float, tmp: Path) -> dict:
    """The whole `dfer predict` on the video, and the network's own bound on the command's windows."""
    rec = Recognizer.from_checkpoint(ckpt)
    result = rec.predict_video(video)  # also warms the conversion cache
    net = network_alone(rec, result)
    whole = min(command(video, ckpt, tmp / "p") for _ in range(2))
    return {"windows": len(result.windows), "network_bound_s": round(net, 2), "network_realtime": round(seconds / net, 1),
            "whole_s": round(whole, 2), "whole_realtime": round(seconds / whole, 2),
            "ratio_to_bound": round(net / whole, 3)}


def paper_size(work: Path, video: Path, seconds: float) -> dict:
    """Speed only, at the paper's 16x112x112 (random weights: accuracy is the synthetic proxy's job):
    the teacher and every student, clips/s and the whole `dfer predict` beside the network's bound."""
    from bench_inference import make_ckpt
    from dfer.models.registry import STUDENTS
    from dfer.models.students import student_clip

    rows = {"(teacher)": ("dfer_r2plus1d_18", 16, 112)}
    rows |= {name: (c.model, c.num_frames, c.size) for name in STUDENTS for c in [student_clip(name, 16, 112)]}
    out = {}
    for name, (model, frames, size) in rows.items():
        ckpt = make_ckpt(work / f"paper-{name.strip('()')}.pt", frames, size, name=model)
        gmacs = profile_model(build_model(name=model, num_classes=7), (frames, size, size)).gmacs
        out[name] = {"network": model, "clip": [frames, size, size], "gmacs": round(gmacs, 2),
                     **clips_per_second(ckpt), **predict_speed(ckpt, video, seconds, work)}
        print(name, json.dumps(out[name]), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="bench-distill", help="data and runs (resumable)")
    ap.add_argument("--out", default="bench_distill.json")
    ap.add_argument("--student", default="narrow")
    ap.add_argument("--epochs", type=int, default=7, help="per model (the demo's)")
    ap.add_argument("--clips-per-class", type=int, default=48, help="synthetic subjects (each performs all 7 classes)")
    ap.add_argument("--media", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "media"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--paper-size", action="store_true",
                    help="only the speed of the teacher and every student at 16x112x112 (no training)")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.paper_size:
        video = looped_video(Path(args.media) / "single_face.mp4", work / "sixty.mp4", args.seconds)
        result = {"cpu": cpu(), "paper_size": paper_size(work, video, args.seconds)}
        atomic_write_json(Path(args.out), result)
        print(json.dumps(result, indent=2))
        return
    s = DemoSettings(epochs=args.epochs, clips_per_class=args.clips_per_class)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    cache = data(work, s)
    timings["data"] = time.perf_counter() - t0
    base = _train_config(s, progress=False)
    base.deploy.int8 = False  # the int8 step is the same for every model; its cost is not the question here
    base.runtime.tensorboard = False

    t0 = time.perf_counter()
    teacher = run_cv(base, cache, work / "teacher", resume=True)
    timings["teacher"] = time.perf_counter() - t0
    folds = teacher["folds"]

    dcfg = _train_config(s, progress=False)
    dcfg.deploy.int8, dcfg.runtime.tensorboard, dcfg.distill.student = False, False, args.student
    t0 = time.perf_counter()
    run_distill(dcfg, cache, work / "teacher", work / "distilled", resume=True)
    timings["distilled"] = time.perf_counter() - t0

    from dfer.models.students import student_clip

    clip = student_clip(args.student, s.clip_frames, s.clip_size)
    acfg = _train_config(s, progress=False)
    acfg.deploy.int8, acfg.runtime.tensorboard = False, False
    acfg.model.name, acfg.data.num_frames, acfg.data.size = clip.model, clip.num_frames, clip.size
    t0 = time.perf_counter()
    run_cv(acfg, cache, work / "alone", resume=True)
    timings["alone"] = time.perf_counter() - t0

    models = {"teacher": ("dfer_r2plus1d_18", (s.clip_frames, s.clip_size, s.clip_size)),
              "distilled": (clip.model, (clip.num_frames, clip.size, clip.size)),
              "alone": (clip.model, (clip.num_frames, clip.size, clip.size))}
    result: dict = {"cpu": cpu(), "settings": {"data": "dfer synth, demo settings", "clips_per_class": s.clips_per_class,
                                                 "folds": s.folds, "epochs": s.epochs, "student": args.student,
                                                 "teacher_clip": list(models["teacher"][1]),
                                                 "student_clip": list(models["distilled"][1])},
                    "timings_s": {k: round(v, 1) for k, v in timings.items()}, "models": {}}
    for name, (model, c) in models.items():
        cost = profile_model(build_model(name=model, num_classes=7), c)
        result["models"][name] = {"network": model, "clip": list(c), "gmacs": round(cost.gmacs, 3),
                                  "params_m": round(cost.params / 1e6, 2), **per_fold(work / name, folds)}
    t_gm = result["models"]["teacher"]["gmacs"]
    for name in models:
        result["models"][name]["fewer_macs"] = round(t_gm / result["models"][name]["gmacs"], 2)
    pooled = {k: result["models"][k]["pooled"]["war"] for k in models}
    result["targets"] = {
        "distilled_within_2_points_of_teacher": bool(pooled["teacher"] - pooled["distilled"] <= 0.02),
        "distilled_1_point_above_alone": bool(pooled["distilled"] - pooled["alone"] >= 0.01),
        "at_least_4x_fewer_macs": bool(result["models"]["distilled"]["fewer_macs"] >= 4.0),
        "pooled_war_points": {k: round(100 * v, 2) for k, v in pooled.items()}}
    atomic_write_json(Path(args.out), result)

    if not args.skip_speed:
        video = looped_video(Path(args.media) / "single_face.mp4", work / "sixty.mp4", args.seconds)
        for name in models:
            ckpt = work / name / f"fold_{folds[0]}" / "best.pt"
            result["models"][name]["speed"] = {**clips_per_second(ckpt), **predict_speed(ckpt, video, args.seconds, work)}
    atomic_write_json(Path(args.out), result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
