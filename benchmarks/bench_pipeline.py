"""Where a whole `dfer predict` spends its time, and how close it comes to the network's own bound.

    python benchmarks/bench_pipeline.py [--media ../shared/media] [--seconds 60] [--out bench_pipeline.json]

On a 640x360 30 fps video of --seconds (single_face.mp4 ping-pong looped), with the full-size
network (16x112x112, random weights: the cost is the network's, not what it learned) on the
runtime `auto` picks, all in one run:
- stages, each timed on its own in this process: start-up (imports, opening the model from a warm
  conversion cache, in a fresh process), decode only, decode + face detection and tracking, + face
  crops, the analysis pass without outputs (Recognizer.predict_video), the same with annotated.mp4,
  the other outputs (CSVs, timeline.png, summary.json);
- network alone: the windows the command scores (same clips, batch and calls in flight as the
  recogniser) on the runtime alone; its real-time factor is the network's bound;
- whole command (a subprocess, as a user runs it) with the defaults and with --no-video, and the
  ratio of its real-time factor to the network's bound (the issue's target: >= 0.8);
- the same whole command with the demo-size network (8x32x32) and a decode-only pass: the
  pipeline's own ceilings;
- with --int8, the full-size network as an OpenVINO int8 model (NNCF): its bound and the whole command.
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
from dfer.data.tracking import FaceTracker  # noqa: E402
from dfer.data.video import open_source  # noqa: E402
from dfer.files import atomic_write_json  # noqa: E402
from dfer.inference import Recognizer  # noqa: E402
from dfer.inference.predict import analyse, write_outputs  # noqa: E402
from dfer.inference.scoring import ScoringQueue  # noqa: E402


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def startup(ckpt: Path) -> dict:
    """A fresh process: importing dfer's predict path, then opening the model (warm conversion cache)."""
    code = ("import time, sys, json; t0 = time.perf_counter(); import dfer.cli.predict; "
            "from dfer.inference import Recognizer; t1 = time.perf_counter(); "
            f"r = Recognizer.from_checkpoint({str(ckpt)!r}); t2 = time.perf_counter(); "
            "print(json.dumps({'imports_s': t1 - t0, 'open_model_s': t2 - t1, 'torch_imported': 'torch' in sys.modules, "
            "'backend': r.backend.detail}))")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - t0
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}


def stages(video: Path, rec: Recognizer, tmp: Path) -> dict:
    face = rec.resolved_settings(30.0).face
    out = {}
    out["decode"], n = timed(lambda: sum(1 for _ in open_source(video).frames()))
    out["decode_detect_track"], _ = timed(
        lambda: sum(1 for _ in FaceTracker(make_detector(face), face).run(open_source(video).frames())))

    def with_crops() -> int:
        k = 0
        for tf in FaceTracker(make_detector(face), face).run(open_source(video).frames()):
            for tb in tf.faces.values():
                crop_face(tf.frame, tb.box, face.size, face.margin)
                k += 1
        return k

    out["decode_detect_track_crop"], _ = timed(with_crops)
    out["analysis_no_outputs"], result = timed(lambda: rec.predict_video(video))
    out["analysis_with_annotated_video"], result2 = timed(lambda: analyse(rec, open_source(video), tmp / "a"))
    out["csv_timeline_summary"], _ = timed(lambda: write_outputs(result2, tmp / "a"))
    return {"frames": n, "windows": len(result.windows), "seconds": {k: round(v, 3) for k, v in out.items()},
            "result": result}


def network_alone(rec: Recognizer, result, repeats: int = 3) -> float:
    """Seconds the runtime alone takes for the command's windows: the same clip shape, batch of one face
    per call, as many calls in flight as the recogniser keeps."""
    pre = rec.preprocess
    clips = np.random.default_rng(0).standard_normal((len(result.windows), 1, 3, pre.num_frames, pre.size, pre.size),
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


def int8_run(full: Path, video: Path, tmp: Path, seconds: float) -> dict:
    """The full-size network as an OpenVINO int8 model: its bound and the whole command on it."""
    from dfer.inference import export_model

    xml = tmp / "int8.xml"
    t0 = time.perf_counter()
    export_model(full, xml, format="openvino", quantize="int8", accept="agreement", min_agreement=0.0)
    export_s = time.perf_counter() - t0
    rec = Recognizer.from_checkpoint(xml)
    result = rec.predict_video(video)
    net = network_alone(rec, result)
    whole = {name: command(video, xml, tmp / "e2e8", *extra) for name, extra in (("defaults", ()),
                                                                                 ("--no-video", ("--no-video",)))}
    return {"backend": rec.backend.detail, "export_s": round(export_s, 1),
            "network_alone": {"seconds": round(net, 3), "realtime_factor": round(seconds / net, 2)},
            "whole_command": {name: {"seconds": round(t, 2), "realtime_factor": round(seconds / t, 2),
                                     "ratio_to_network_bound": round(net / t, 3)} for name, t in whole.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "media"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--out", default="bench_pipeline.json")
    ap.add_argument("--int8", action="store_true",
                    help="also the full-size network as OpenVINO int8 (NNCF; random weights, so accepted unconditionally)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("DFER_CACHE_DIR", str(tmp / "cache"))  # a fresh conversion cache, warmed below
        video = looped_video(Path(args.media) / "single_face.mp4", tmp / "video.mp4", args.seconds)
        full = make_ckpt(tmp / "full.pt", 16, 112)
        demo = make_ckpt(tmp / "demo.pt", 8, 32)
        for ckpt in (full, demo):
            command(video, ckpt, tmp / "warm", "--max-seconds", "2")  # converts once into the cache (not timed)
        res = {"video": f"{args.seconds:.0f} s, 640x360, 30 fps", "startup": startup(full)}
        rec = Recognizer.from_checkpoint(full)
        res["backend"] = rec.backend.detail
        st = stages(video, rec, tmp)
        result = st.pop("result")
        net = network_alone(rec, result)
        res["stages"] = st
        res["network_alone"] = {"seconds": round(net, 3), "realtime_factor": round(args.seconds / net, 2)}
        whole = {name: command(video, full, tmp / "e2e", *extra)
                 for name, extra in (("defaults", ()), ("--no-video", ("--no-video",)))}
        res["whole_command"] = {name: {"seconds": round(s, 2), "realtime_factor": round(args.seconds / s, 2),
                                       "ratio_to_network_bound": round(net / s, 3)} for name, s in whole.items()}
        if args.int8:
            res["int8"] = int8_run(full, video, tmp, args.seconds)
        demo_s = command(video, demo, tmp / "demo")
        res["demo_size_network_whole_command"] = {"seconds": round(demo_s, 2),
                                                  "realtime_factor": round(args.seconds / demo_s, 2)}
        res["decode_only_realtime_factor"] = round(args.seconds / st["seconds"]["decode"], 2)
    print(json.dumps(res, indent=2))
    atomic_write_json(Path(args.out), res)


if __name__ == "__main__":
    main()
