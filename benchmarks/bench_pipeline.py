"""Where a whole `dfer predict` spends its time, stage by stage, and how close it comes to the network's bound.

    python benchmarks/bench_pipeline.py [--media ../shared/media] [--seconds 30 120] [--out bench_pipeline.json]

For each length in --seconds, a 640x360 30 fps video (single_face.mp4 ping-pong looped) and the full-size
network (16x112x112, random weights: the cost is the network's, not what it learned) on the runtime `auto`
picks, all in one run:
- the CPU's name, cores and flags (AVX2, AVX-512, VNNI, BF16, AMX change every absolute figure);
- fixed costs, each in a fresh process: imports, opening the model from a warm conversion cache (and a
  warm OpenVINO compiled-model cache), building dlib's detector, loading the people models; and the
  first-run conversion of the checkpoint (a cold cache);
- stages, cumulative and each timed alone in this process: decode, + the shot-cut rule, + face detection
  and tracking, + face crops, the analysis pass without and with people (Recognizer.predict_video), the
  annotated video alone (a second decode, drawing, encoding), the other outputs (CSVs, timeline, people);
  each as ms per frame and as a share of the whole command's time;
- network alone: the windows the command scores (same clips, batch and calls in flight as the recogniser)
  on the runtime alone; its real-time factor is the network's bound;
- whole command (a subprocess, as a user runs it), defaults and --no-video: seconds, real-time factor and
  the ratio to the network's bound;
- the same whole command with the demo-size network (8x32x32): the pipeline's own ceiling.
Prints (and writes) one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import looped_video, make_ckpt  # noqa: E402
from dfer.data.crop import crop_face  # noqa: E402
from dfer.data.faces import make_detector  # noqa: E402
from dfer.data.shots import ShotCuts  # noqa: E402
from dfer.data.tracking import FaceTracker  # noqa: E402
from dfer.data.video import open_source  # noqa: E402
from dfer.doctor import cpu  # noqa: E402
from dfer.files import atomic_write_json  # noqa: E402
from dfer.inference import InferenceSettings, Recognizer  # noqa: E402
from dfer.inference.predict import _write_files  # noqa: E402
from dfer.inference.render import write_annotated  # noqa: E402
from dfer.inference.scoring import ScoringQueue  # noqa: E402


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def fixed_costs(ckpt: Path, cold: Path) -> dict:
    """Start-up, each in a fresh process (warm caches), and the first-run conversion (a cold cache)."""
    start = _fresh("import time, sys, json; t0 = time.perf_counter(); import dfer.cli.predict; "
                   "from dfer.inference import Recognizer; t1 = time.perf_counter(); "
                   f"r = Recognizer.from_checkpoint({str(ckpt)!r}); t2 = time.perf_counter(); "
                   "from dfer.data.faces import DlibDetector; import numpy as np; "
                   "DlibDetector()(np.zeros((64, 64, 3), np.uint8)); t3 = time.perf_counter(); "
                   "from dfer.inference import people; d = people.describer() if people.available() else None; "
                   "t4 = time.perf_counter(); "
                   "print(json.dumps({'imports_s': t1 - t0, 'open_model_s': t2 - t1, 'dlib_detector_s': t3 - t2, "
                   "'people_models_s': t4 - t3, 'torch_imported': 'torch' in sys.modules, 'backend': r.backend.detail}))")
    env_code = (f"import os, time, json; os.environ['DFER_CACHE_DIR'] = {str(cold)!r}; "
                "from dfer.inference import Recognizer; t0 = time.perf_counter(); "
                f"Recognizer.from_checkpoint({str(ckpt)!r}); print(json.dumps({{'first_run_conversion_s': "
                "time.perf_counter() - t0}))")
    start.update(_fresh(env_code))
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in start.items()}


def stages(video: Path, rec: Recognizer, tmp: Path) -> tuple[dict, object]:
    """Cumulative stage times (each a pass of its own), then the analysis and outputs."""
    face = rec.resolved_settings(30.0).face
    src = open_source(video)
    out: dict[str, float] = {}
    out["decode"], n = timed(lambda: sum(1 for _ in src.decoded()))

    def shots() -> None:
        rule = ShotCuts(face.cut_ratio, face.cut_min, face.min_shot)
        for f in src.decoded():
            rule.push(f)
        rule.flush()

    out["decode_shots"], _ = timed(shots)
    out["decode_shots_detect_track"], _ = timed(
        lambda: sum(1 for _ in FaceTracker(make_detector(face), face).run(src.decoded())))

    def with_crops() -> None:
        for tf in FaceTracker(make_detector(face), face).run(src.decoded()):
            for tb in tf.faces.values():
                crop_face(tf.frame, tb.box, face.size, face.margin)

    out["decode_shots_detect_track_crop"], _ = timed(with_crops)
    out["analysis_no_people"], _ = timed(lambda: rec.predict_video(src, settings=InferenceSettings(people=False)))
    out["analysis"], result = timed(lambda: rec.predict_video(src))
    out["annotated_video"], _ = timed(lambda: write_annotated(result, src.decoded(), tmp / "a" / "annotated.mp4"))
    out["csv_timeline_people_files"], _ = timed(lambda: _write_files(result, tmp / "a"))
    return {"frames": n, "windows": len(result.windows), "seconds": {k: round(v, 3) for k, v in out.items()}}, result


def per_frame(st: dict, whole_s: float) -> dict:
    """Each stage's own cost (its increment over the stage it builds on) in ms a frame and as a share of the
    whole command."""
    s, n = st["seconds"], st["frames"]
    own = {
        "decode": s["decode"],
        "shot_cut_rule": s["decode_shots"] - s["decode"],
        "detect_and_track": s["decode_shots_detect_track"] - s["decode_shots"],
        "crops": s["decode_shots_detect_track_crop"] - s["decode_shots_detect_track"],
        "windows_and_network_in_the_pass": s["analysis_no_people"] - s["decode_shots_detect_track_crop"],
        "people_and_identity_checks": s["analysis"] - s["analysis_no_people"],
        "annotated_video": s["annotated_video"],
        "csv_timeline_people_files": s["csv_timeline_people_files"],
    }
    return {k: {"ms_per_frame": round(1000 * v / n, 3), "share_of_whole": round(v / whole_s, 3)} for k, v in own.items()}


def network_alone(rec: Recognizer, windows: int, repeats: int = 3) -> float:
    """Seconds the runtime alone takes for the command's windows: the same clip shape, one face per call,
    as many calls in flight as the recogniser keeps."""
    pre = rec.preprocess
    clips = np.random.default_rng(0).standard_normal((windows, 1, 3, pre.num_frames, pre.size, pre.size),
                                                     dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        queue: ScoringQueue[int] = ScoringQueue(rec.backend, rec.backend.concurrency)
        t0 = time.perf_counter()
        for k, clip in enumerate(clips):
            queue.submit(clip, k)
            queue.ready()
        queue.drain()
        best = min(best, time.perf_counter() - t0)
        queue.close()
    return best


def command(video: Path, ckpt: Path, out: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dfer.cli", "predict", str(video), "--checkpoint", str(ckpt), "--out", str(out),
                    "--overwrite", "--quiet", *extra], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def one_length(media: Path, seconds: float, full: Path, demo: Path, tmp: Path) -> dict:
    video = looped_video(media / "single_face.mp4", tmp / f"video{seconds:.0f}.mp4", seconds)
    rec = Recognizer.from_checkpoint(full)
    st, result = stages(video, rec, tmp)
    net = network_alone(rec, len(result.windows))
    whole = {name: command(video, full, tmp / "e2e", *extra) for name, extra in (("defaults", ()),
                                                                                ("--no-video", ("--no-video",)))}
    demo_s = {name: command(video, demo, tmp / "demo", *extra) for name, extra in (("defaults", ()),
                                                                                  ("--no-video", ("--no-video",)))}
    return {
        "video": f"{seconds:.0f} s, 640x360, 30 fps", "backend": rec.backend.detail, "stages": st,
        "per_frame": per_frame(st, whole["defaults"]),
        "network_alone": {"seconds": round(net, 3), "realtime_factor": round(seconds / net, 2)},
        "whole_command": {name: {"seconds": round(s, 2), "realtime_factor": round(seconds / s, 2),
                                 "ratio_to_network_bound": round(net / s, 3)} for name, s in whole.items()},
        "annotated_video_over_no_video": round(whole["defaults"] / whole["--no-video"] - 1, 3),
        "demo_size_network_whole_command": {name: {"seconds": round(s, 2), "realtime_factor": round(seconds / s, 2)}
                                            for name, s in demo_s.items()},
        "decode_only_realtime_factor": round(seconds / st["seconds"]["decode"], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "media"))
    ap.add_argument("--seconds", type=float, nargs="+", default=[30.0, 120.0])
    ap.add_argument("--out", default="bench_pipeline.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("DFER_CACHE_DIR", str(tmp / "cache"))  # a fresh conversion cache, warmed below
        full = make_ckpt(tmp / "full.pt", 16, 112)
        demo = make_ckpt(tmp / "demo.pt", 8, 32)
        warm = looped_video(Path(args.media) / "single_face.mp4", tmp / "warm.mp4", 2)
        for ckpt in (full, demo):
            command(warm, ckpt, tmp / "warm")  # converts once into the cache (not timed)
        res = {"cpu": cpu(), "fixed_costs": fixed_costs(full, tmp / "cold-cache")}
        res["lengths"] = [one_length(Path(args.media), s, full, demo, tmp) for s in args.seconds]
    print(json.dumps(res, indent=2))
    atomic_write_json(Path(args.out), res)


if __name__ == "__main__":
    main()
