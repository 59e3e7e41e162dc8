"""Data pipeline throughput, measured in one run (rates and shares, not timed assertions).

    python benchmarks/bench_data.py [--media ../shared/media] [--clips 512] [--workers 2]

Prints one JSON object:
- prepare: frames/s of the full face pipeline (decode + dlib every k-th frame + track + crop) on
  each real video, and the share of time spent decoding; a projection for 16,372 DFEW clips.
- loader: clips/s of (B, 3, 16, 112, 112) batches from a warm cache with N workers, for training
  (segment sampling + augmentation) and evaluation transforms.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dfer.data import (
    ClipCache,
    ClipDataset,
    ClipRow,
    FaceSettings,
    extract_face_clip,
    make_detector,
    make_loader,
    open_source,
)

DFEW_CLIPS = 16372
DFEW_MEAN_FRAMES = 75  # assumption: DFEW clips average about 3 s at 25 fps (range 11 to 847 frames)


def bench_prepare(media: Path, repeats: int = 3) -> dict:
    settings = FaceSettings()
    det = make_detector(settings)
    out = {}
    for video in sorted(media.glob("*.mp4")):
        t_dec, t_all, frames = [], [], 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            frames = sum(1 for _ in open_source(video).frames())
            t_dec.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            try:
                extract_face_clip(video, det, settings)
            except Exception:  # no_face.mp4 raises after the full pass; its cost still counts
                pass
            t_all.append(time.perf_counter() - t0)
        dec, full = min(t_dec), min(t_all)
        out[video.name] = {
            "frames": frames,
            "frames_per_s": round(frames / full, 1),
            "decode_only_frames_per_s": round(frames / dec, 1),
            "decode_share": round(dec / full, 3),
            "detect_track_crop_share": round(1 - dec / full, 3),
        }
    rates = [v["frames_per_s"] for v in out.values()]
    per_core = float(np.median(rates)) if rates else float("nan")
    hours_16 = DFEW_CLIPS * DFEW_MEAN_FRAMES / (per_core * 16) / 3600 if rates else float("nan")
    return {
        "videos": out,
        "median_frames_per_s_one_process": round(per_core, 1),
        "projection": {
            "assumption": f"{DFEW_CLIPS} clips x {DFEW_MEAN_FRAMES} frames, dlib path, 16 processes on 16 cores",
            "hours_16_cores": round(hours_16, 3),
        },
    }


def make_cache(root: Path, clips: int, frames: int = 48, size: int = 128) -> ClipCache:
    cache = ClipCache(root)
    cache.init({"dataset": "bench", "class_names": [str(k) for k in range(7)], "face": {"size": size}})
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8)
    rows = []
    for i in range(clips):
        row = ClipRow(f"c{i:05d}", i % 7, "", "bench", frames, frames, 25.0)
        cache.write_clip(row, np.roll(base, i, axis=0))
        rows.append(row)
    cache.write_index(rows)
    return cache


def bench_loader(clips: int, workers: int, batch: int = 32, epochs: int = 3) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = make_cache(Path(tmp), clips)
        for mode in ("train", "eval"):
            ds = ClipDataset(cache, train=mode == "train", num_frames=16)
            loader = make_loader(ds, batch_size=batch, workers=workers, shuffle=True, drop_last=True)
            for _ in loader:  # warm: page cache, worker start-up
                pass
            t0, n = time.perf_counter(), 0
            for e in range(epochs):
                loader.sampler.set_epoch(e)
                for x, _, _ in loader:
                    assert x.shape == (batch, 3, 16, 112, 112) and x.dtype == torch.float32
                    n += x.shape[0]
            out[mode] = {"clips_per_s": round(n / (time.perf_counter() - t0), 1), "batch": batch, "workers": workers}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "media"))
    ap.add_argument("--clips", type=int, default=512)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = {}
    media = Path(args.media)
    result["prepare"] = bench_prepare(media) if media.is_dir() else {"skipped": f"{media} not found"}
    result["loader"] = bench_loader(args.clips, args.workers)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
