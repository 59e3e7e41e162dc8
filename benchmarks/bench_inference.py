"""Inference speed, measured in one run: ratios against torchvision's r2plus1d_18 in eager fp32.

    python benchmarks/bench_inference.py [--media ../shared/media] [--checkpoint CKPT --data CACHE]

Prints one JSON object:
- backends: clips/s at 16x112x112, batch 1, for torchvision r2plus1d_18 eager fp32 (the baseline), the
  dfer network eager fp32 and channels_last_3d, ONNX Runtime fp32 and static int8 (QDQ), each with its
  ratio to the baseline measured in the same run;
- int8 agreement: top-1 agreement and logit cosine of int8 vs PyTorch fp32 on held-out clips. With
  --checkpoint/--data, a trained model on its own clips (calibrated on other clips of the cache);
  always also the full-size random-init network on synthetic face clips (a harsh case: near-tied logits);
- end_to_end: real-time factor of `dfer predict` (decode + dlib every 5th frame + tracking + crops +
  windows of 2 s every 1 s) with the full-size network on single_face.mp4 (640x360, 30 fps), looped to
  about 19 s so start-up does not dominate, for the torch and ONNX int8 backends.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dfer.checkpoint import Preprocess, make_checkpoint, save_checkpoint
from dfer.inference import InferenceSettings, OnnxBackend, Recognizer, TorchBackend, export_onnx
from dfer.inference.export import calibration_clips, parity
from dfer.models import build_model


def clips_per_s(fn, x, repeats: int = 5) -> float:
    fn(x)  # warm-up (allocations, ONNX Runtime kernels)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t0)
    return x.shape[0] / best


def bench_backends(tmp: Path, repeats: int) -> tuple[dict, Path]:
    from torchvision.models.video import r2plus1d_18

    x = np.random.default_rng(0).standard_normal((1, 3, 16, 112, 112)).astype(np.float32)
    tv = r2plus1d_18().eval()

    def tv_fn(a):
        with torch.inference_mode():
            return tv(torch.from_numpy(a)).numpy()

    model = build_model(num_classes=7)
    pre = Preprocess(face={"detector": "dlib", "size": 128, "margin": 0.2, "detect_size": 320}, clip_seconds=2.0)
    ckpt = save_checkpoint(tmp / "full.pt", make_checkpoint(model=model, class_names=[f"c{k}" for k in range(7)],
                                                            preprocess=pre))
    export_onnx(ckpt, tmp / "fp32.onnx")
    export_onnx(ckpt, tmp / "int8.onnx", quantize="int8")
    runs = {
        "torchvision_r2plus1d_18_eager_fp32": tv_fn,
        "dfer_torch_eager_fp32": TorchBackend(build_model(num_classes=7), "cpu"),
        "dfer_torch_channels_last_3d": TorchBackend(build_model(num_classes=7), "cpu", channels_last=True),
        "dfer_onnxruntime_fp32": OnnxBackend(tmp / "fp32.onnx"),
        "dfer_onnxruntime_int8_static": OnnxBackend(tmp / "int8.onnx"),
    }
    rates = {name: clips_per_s(fn, x, repeats) for name, fn in runs.items()}
    base = rates["torchvision_r2plus1d_18_eager_fp32"]
    out = {name: {"clips_per_s": round(r, 3), "ratio_to_baseline": round(r / base, 3)} for name, r in rates.items()}
    return out, ckpt


def int8_agreement(tmp: Path, ckpt_full: Path, checkpoint: str | None, data: str | None) -> dict:
    res = {}
    pre = Preprocess(face={"size": 128})
    clips = calibration_clips(pre, count=24, seed=7)  # held out: calibration used seeds 0 (and parity 1)
    model = build_model(num_classes=7).eval()
    model.load_state_dict(torch.load(ckpt_full, weights_only=True)["model"]["state_dict"])
    ref = TorchBackend(model, "cpu")(clips)
    res["random_init_full_size_synthetic_faces"] = parity(ref, OnnxBackend(tmp / "int8.onnx")(clips))
    if checkpoint and data:
        from dfer.checkpoint import model_from_checkpoint
        from dfer.data.dataset import ClipDataset
        from dfer.data.transforms import ClipTransformConfig

        m, ck = model_from_checkpoint(checkpoint)
        p = Preprocess.from_dict(ck["preprocess"])
        export_onnx(checkpoint, tmp / "trained_int8.onnx", quantize="int8", calibration=data)
        ds = ClipDataset(data, num_frames=p.num_frames, transform_config=ClipTransformConfig(size=p.size))
        idx = np.random.default_rng(123).permutation(len(ds))[:200]
        x = np.stack([ds[int(i)][0].numpy() for i in idx])
        ref = np.concatenate([TorchBackend(m, "cpu")(x[k : k + 16]) for k in range(0, len(x), 16)])
        q = OnnxBackend(tmp / "trained_int8.onnx")
        got = np.concatenate([q(x[k : k + 16]) for k in range(0, len(x), 16)])
        res["trained_checkpoint"] = {**parity(ref, got), "checkpoint": str(checkpoint),
                                     "clip": [p.num_frames, p.size, p.size]}
    return res


def looped_video(src: Path, out: Path, loops: int = 8) -> Path:
    from dfer.data import read_video
    from dfer.synth import write_video

    frames, info = read_video(src)
    seq = [f for k in range(loops) for f in (frames if k % 2 == 0 else frames[::-1])]  # ping-pong: no jump
    return write_video(out, seq, fps=info.fps)


def end_to_end(tmp: Path, ckpt_full: Path, media: Path) -> dict:
    video = looped_video(media / "single_face.mp4", tmp / "single_face_looped.mp4")
    settings = InferenceSettings()  # the defaults: 2 s windows every 1 s, dlib on every 5th frame
    out = {"video": f"{video.name} (single_face.mp4 ping-pong looped 8x)"}
    for name, path in (("torch_fp32", ckpt_full), ("onnx_int8", tmp / "int8.onnx")):
        rec = Recognizer.from_checkpoint(path, device="cpu", settings=settings)
        best = None
        for _ in range(2):
            r = rec.predict_video(video)
            best = r if best is None or r.seconds < best.seconds else best
        out[name] = {"realtime_factor": round(best.realtime_factor, 3), "video_s": round(best.duration, 2),
                     "processing_s": round(best.seconds, 2), "windows": len(best.windows),
                     "settings": best.settings}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "media"))
    ap.add_argument("--checkpoint", help="a trained dfer checkpoint for the int8 agreement figure")
    ap.add_argument("--data", help="the clip cache it was trained on")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    result = {"threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        result["backends"], ckpt = bench_backends(tmp, args.repeats)
        result["int8_agreement"] = int8_agreement(tmp, ckpt, args.checkpoint, args.data)
        media = Path(args.media)
        result["end_to_end"] = end_to_end(tmp, ckpt, media) if media.is_dir() else {"skipped": f"{media} not found"}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
