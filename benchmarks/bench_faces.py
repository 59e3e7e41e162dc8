"""The face pipeline, measured: training/inference agreement on real videos, tracking quality,
and the memory of `dfer predict` on long inputs.

    python benchmarks/bench_faces.py [--media ../shared/media] [--minutes 10] [--skip-memory]

Prints one JSON object:
- agreement: for every video in --media, the main face's boxes as `dfer prepare` finds them (every
  frame kept) and as `Recognizer` finds them (same face settings): median / minimum IoU over the
  frames both cover, and frames only one of them covers;
- tracking: the tracked boxes (detector every k-th frame, interpolated) against dlib run on every
  frame (median IoU), with the default settings;
- memory: peak RSS of the whole `dfer predict` command (outputs included) on single_face.mp4 looped
  to 20 s and to --minutes, with a small network (8x32x32 clips) so the run measures the pipeline;
  the ratio long / short is the figure (the target: within 1.15).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dfer.checkpoint import make_checkpoint, save_checkpoint
from dfer.data import FaceSettings, FaceTracker, extract_face_clip, make_detector, open_source, write_video
from dfer.data.faces import Box, iou
from dfer.inference import InferenceSettings, Recognizer
from dfer.preprocess import Preprocess


class NullBackend:
    name = detail = "null"

    def __call__(self, clips):
        return np.zeros((len(clips), 1), np.float32)


def agreement(video: Path, face: FaceSettings) -> dict:
    train_face = FaceSettings(**{**face.to_dict(), "max_frames": 1_000_000})  # keep every frame
    clip = extract_face_clip(video, make_detector(train_face), train_face)
    prepared = {f: Box.from_array(b) for f, b in zip(clip.frame_indices, clip.boxes)}
    rec = Recognizer(NullBackend(), ["x"], Preprocess(face=face.to_dict()), InferenceSettings())
    result = rec.predict_video(video)
    # the Recognizer's track that is the prepared main face: the one overlapping it most
    tid = max(result.boxes, key=lambda t: sum(iou(tb.box, prepared[f]) for f, tb in result.boxes[t].items()
                                               if f in prepared))
    live = {f: tb.box for f, tb in result.boxes[tid].items()}
    both = sorted(set(prepared) & set(live))
    ious = [iou(prepared[f], live[f]) for f in both]
    return {"frames": clip.decoded_frames, "frames_both": len(both),
            "frames_only_prepare": len(set(prepared) - set(live)), "frames_only_predict": len(set(live) - set(prepared)),
            "median_iou": round(float(np.median(ious)), 4), "min_iou": round(float(np.min(ious)), 4)}


def tracking_vs_every_frame(video: Path, face: FaceSettings) -> dict:
    frames = list(open_source(video).frames())
    det = make_detector(face)
    every = [det(f) for f in frames]
    out = list(FaceTracker(det, face).run(frames))
    ious = []
    for tf in out:
        for tb in tf.faces.values():
            cands = [iou(tb.box, d) for d in every[tf.index]]
            if cands:
                ious.append(max(cands))
    if not ious:
        return {"detect_every": face.detect_every, "frames_compared": 0}
    return {"detect_every": face.detect_every, "frames_compared": len(ious), "mean_iou": round(float(np.mean(ious)), 4),
            "median_iou": round(float(np.median(ious)), 4), "p10_iou": round(float(np.percentile(ious, 10)), 4)}


def looped(src: Path, out: Path, seconds: float) -> Path:
    frames = list(open_source(src).frames())
    fps = open_source(src).fps
    n = int(seconds * fps)
    cycle = frames + frames[::-1]  # ping-pong: no jump at the seams

    def gen():
        for i in range(n):
            yield cycle[i % len(cycle)]

    return write_video(out, gen(), fps=fps)


def _status_mb(pid: int, key: str) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
        return int(next(ln.split()[1] for ln in text.splitlines() if ln.startswith(key))) / 1024
    except (OSError, StopIteration):
        return None


def peak_rss_mb(cmd: list[str]) -> dict:
    """Run `cmd`: its peak RSS (the kernel's high-water mark, VmHWM) and RSS sampled over the run (MB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples, peak = [], 0.0
    while proc.poll() is None:
        rss, hwm = _status_mb(proc.pid, "VmRSS"), _status_mb(proc.pid, "VmHWM")
        if rss is not None:
            samples.append(rss)
        peak = max(peak, hwm or 0.0)
        time.sleep(0.5)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
    n = len(samples)
    return {"peak_rss_mb": round(peak, 1), "wall_s": round(time.perf_counter() - t0, 1),
            "rss_mb_at_quarter_half_end": [round(samples[int(q * (n - 1))], 1) for q in (0.25, 0.5, 1.0)] if n else []}


def memory(media: Path, tmp: Path, minutes: float) -> dict:
    from dfer.models import build_model

    pre = Preprocess(num_frames=8, size=32, face=FaceSettings().to_dict(), clip_seconds=2.0)
    ckpt = save_checkpoint(tmp / "small.pt", make_checkpoint(model=build_model(num_classes=7), preprocess=pre,
                                                             class_names=[f"c{k}" for k in range(7)]))
    out = {}
    for name, seconds in (("short", 20.0), ("long", 60.0 * minutes)):
        video = looped(media / "single_face.mp4", tmp / f"{name}.mp4", seconds)
        run = peak_rss_mb([sys.executable, "-m", "dfer.cli", "predict", str(video), "--checkpoint", str(ckpt),
                           "--out", str(tmp / f"out_{name}"), "--quiet", "--backend", "torch"])
        out[name] = {"video_s": seconds, **run}
    out["ratio_long_over_short"] = round(out["long"]["peak_rss_mb"] / out["short"]["peak_rss_mb"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "media"))
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the long video for the memory figure")
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    media = Path(args.media)
    if not media.is_dir():
        raise SystemExit(f"{media}: folder of real videos not found (--media)")
    face = FaceSettings()
    result: dict = {"face_settings": face.to_dict(), "agreement": {}, "tracking": {}}
    for video in sorted(media.glob("*.mp4")):
        small = video.name.startswith("carphone")  # 176x144: dlib needs upsampling for its face
        f = FaceSettings(upsample=1) if small else face
        try:
            result["agreement"][video.name] = agreement(video, f)
            result["tracking"][video.name] = tracking_vs_every_frame(video, f)
        except Exception as exc:  # a video without a face: say so, go on
            result["agreement"][video.name] = {"skipped": str(exc)}
    if not args.skip_memory:
        with tempfile.TemporaryDirectory() as tmp:
            result["memory"] = memory(media, Path(tmp), args.minutes)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
