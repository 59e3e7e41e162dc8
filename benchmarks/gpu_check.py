"""GPU acceptance in one command (under 8 minutes on one GPU):

    python benchmarks/gpu_check.py                 # on a machine with a CUDA GPU
    python benchmarks/gpu_check.py --cpu-smoke     # the same steps, tiny, on the CPU (tests the script)

1. training step of the paper's network with bf16 autocast, channels_last_3d and torch.compile, against
   torchvision's r2plus1d_18 (plain CE + Adam) on the same input: clips/s and the ratio;
2. a one-epoch `dfer cv --devices 1` on a small synthetic clip cache (dfer.synth.patches), timed;
3. `dfer predict` with `--backend auto` (PyTorch on CUDA) on a synthetic 20 s video: real-time factor;
and prints one JSON object with those figures, peak GPU memory and a projection of a DFEW 5-fold x
30-epoch run. Without a CUDA GPU (and without --cpu-smoke) it says so and exits with status 2.
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
import torch

from dfer.data.video import write_video
from dfer.engine import load_config
from dfer.engine.fabric import make_fabric
from dfer.synth import Expression, Identity, draw_face
from dfer.synth.patches import make_patch_cache

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the training benchmark beside this script
from bench_train import DFEW_TRAIN_CLIPS, EPOCHS, FOLDS, bench_model, bench_torchvision  # noqa: E402


def training_step(cuda: bool, clip: tuple[int, int, int], batch: int, compile_: bool) -> dict:
    precision = "bf16-mixed" if cuda else "32-true"
    fabric = make_fabric(load_config(overrides=[f"runtime.accelerator={'cuda' if cuda else 'cpu'}",
                                                f"runtime.precision={precision}"]))
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    t, s, _ = clip
    x = torch.randn(batch, 3, t, s, s).contiguous(memory_format=torch.channels_last_3d)
    y = torch.randint(0, 7, (batch,))
    base = bench_torchvision(fabric, x, y, 3, True, sync)
    ours = bench_model("dfer_r2plus1d_18", fabric, x, y, 3, True, compile_, sync)
    rate = batch / ours
    return {"clip": "x".join(map(str, clip)), "batch": batch, "precision": precision, "channels_last_3d": True,
            "compile": compile_, "clips_per_s": round(rate, 1), "torchvision_clips_per_s": round(batch / base, 1),
            "ratio_to_torchvision": round(base / ours, 3),
            "dfew_5fold_30ep_projection_h": round(FOLDS * EPOCHS * DFEW_TRAIN_CLIPS / rate / 3600, 2)}


def run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"gpu_check: {' '.join(cmd[:3])} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def cv_epoch(tmp: Path, cuda: bool, clip: tuple[int, int, int]) -> dict:
    t, s, _ = clip
    cache = make_patch_cache(tmp / "cache", per_class=32 if cuda else 6, frames=t, size=s)
    sets = [f"data.num_frames={t}", f"data.size={s}", "data.workers=2" if cuda else "data.workers=0"]
    seconds = run([sys.executable, "-m", "dfer.cli", "cv", "--data", str(cache), "--out", str(tmp / "cv"), "--epochs", "1",
                   "--devices", "1", "--accelerator", "cuda" if cuda else "cpu", "--folds", "1", "--quiet",
                   "--batch-size", "16" if cuda else "4", "--set", *sets, "deploy.int8=false"])
    m = json.loads((tmp / "cv" / "fold_1" / "metrics.json").read_text())
    return {"seconds": round(seconds, 1), "train_clips": m["split"]["sizes"]["train"], "clip": f"{t}x{s}x{s}"}


def predict(tmp: Path, cuda: bool, seconds: int) -> dict:
    frames = []
    for k in range(int(seconds * 25)):
        img = np.full((360, 640, 3), (70, 90, 110), np.uint8)
        draw_face(img, (320 + 20 * np.sin(k / 20), 180), 0.5, Expression(smile=(k % 50) / 50), Identity())
        frames.append(img)
    video = write_video(tmp / "talk.mp4", frames, fps=25)
    ckpt = tmp / "cv" / "fold_1" / "best.pt"
    if not ckpt.is_file():
        ckpt = tmp / "cv" / "fold_1" / "last.pt"
    wall = run([sys.executable, "-m", "dfer.cli", "predict", str(video), "--checkpoint", str(ckpt), "--out",
                str(tmp / "pred"), "--quiet", "--detector", "dlib", "--device", "cuda" if cuda else "cpu",
                # on a GPU `auto` is PyTorch on CUDA; the CPU smoke run skips auto's conversion to OpenVINO
                *([] if cuda else ["--backend", "torch"])])
    summary = json.loads((tmp / "pred" / "talk" / "summary.json").read_text())
    return {"video_s": seconds, "wall_s": round(wall, 1), "realtime_factor_whole_command": round(seconds / wall, 2),
            "realtime_factor_analysis": summary["realtime_factor"], "backend": summary["settings"]["backend"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="run every step tiny on the CPU (to test this script)")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile in the training step")
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu_smoke:
        print(json.dumps({"gpu": None, "error": "no CUDA GPU is present on this machine: nothing was measured "
                                                "(run with --cpu-smoke to test the script on the CPU)"}))
        sys.exit(2)
    clip = (16, 112, 112) if cuda else (4, 32, 32)
    out: dict = {"gpu": torch.cuda.get_device_name() if cuda else None, "torch": torch.__version__,
                 "cpu_smoke": not cuda}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out["training_step"] = training_step(cuda, clip, 32 if cuda else 2, compile_=cuda and not args.no_compile)
    if cuda:
        out["training_step"]["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    with tempfile.TemporaryDirectory() as tmp:
        out["cv_one_epoch"] = cv_epoch(Path(tmp), cuda, clip)
        out["predict"] = predict(Path(tmp), cuda, 20 if cuda else 2)
    out["total_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
