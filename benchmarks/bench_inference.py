"""Inference speed, measured in one run: ratios against torchvision's r2plus1d_18 in eager fp32.

    python benchmarks/bench_inference.py [--media ../shared/media] [--checkpoint CKPT [CKPT ...] --data CACHE]

Prints one JSON object:
- backends: clips/s at 16x112x112, batch 1, for torchvision r2plus1d_18 eager fp32 (the baseline), the
  dfer network eager fp32 and channels_last_3d, ONNX Runtime fp32 and static int8 (QDQ), and (when
  installed) OpenVINO on the same ONNX graphs in f32, at its default precision (bf16 on CPUs with
  native bf16) and int8, each with its ratio to the baseline measured in the same run;
- agreement: top-1 agreement and logit cosine of each reduced-precision runtime vs PyTorch fp32 on
  held-out clips. With --checkpoint/--data, each trained model on every clip of the cache but the 32
  its int8 model was calibrated on; always also the full-size random-init network on synthetic face clips (a harsh
  case: near-tied logits);
- end_to_end: real-time factor of `dfer predict` (decode + dlib every 3rd frame + tracking + crops +
  windows of 2 s every 1 s) with the full-size network on single_face.mp4 (640x360, 30 fps), looped to
  about 19 s so start-up does not dominate, for torch fp32, ONNX Runtime int8 and OpenVINO int8.
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
from dfer.data import FaceSettings
from dfer.inference import InferenceSettings, OnnxBackend, OpenVinoBackend, Recognizer, TorchBackend, export_onnx
from dfer.inference.export import calibration_clips, parity
from dfer.models import build_model

try:
    import openvino  # noqa: F401

    HAVE_OPENVINO = True
except ImportError:
    HAVE_OPENVINO = False


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
    pre = Preprocess(face=FaceSettings().to_dict(), clip_seconds=2.0)
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
    if HAVE_OPENVINO:
        runs["dfer_openvino_f32"] = OpenVinoBackend(tmp / "fp32.onnx", precision="f32")
        auto = OpenVinoBackend(tmp / "fp32.onnx")
        runs[f"dfer_openvino_default_{auto.precision}"] = auto
        runs["dfer_openvino_int8_static"] = OpenVinoBackend(tmp / "int8.onnx")
    rates = {name: clips_per_s(fn, x, repeats) for name, fn in runs.items()}
    base = rates["torchvision_r2plus1d_18_eager_fp32"]
    out = {name: {"clips_per_s": round(r, 3), "ratio_to_baseline": round(r / base, 3)} for name, r in rates.items()}
    return out, ckpt


def reduced_runtimes(fp32: Path, int8: Path) -> dict:
    """The runtimes that do not compute in float32: name -> backend."""
    out = {"onnxruntime_int8": OnnxBackend(int8)}
    if HAVE_OPENVINO:
        out["openvino_int8"] = OpenVinoBackend(int8)
        auto = OpenVinoBackend(fp32)
        if auto.precision != "f32":
            out[f"openvino_{auto.precision}"] = auto
    return out


def batched(fn, x: np.ndarray, bs: int = 16) -> np.ndarray:
    return np.concatenate([fn(x[k : k + bs]) for k in range(0, len(x), bs)])


def agreement(tmp: Path, ckpt_full: Path, checkpoints: list[str], data: str | None) -> dict:
    res = {}
    pre = Preprocess(face={"size": 128})
    clips = calibration_clips(pre, count=24, seed=7)  # held out: calibration used seeds 0 (and parity 1)
    model = build_model(num_classes=7).eval()
    model.load_state_dict(torch.load(ckpt_full, weights_only=True)["model"]["state_dict"])
    ref = TorchBackend(model, "cpu")(clips)
    res["random_init_full_size_synthetic_faces"] = {
        name: parity(ref, batched(fn, clips)) for name, fn in reduced_runtimes(tmp / "fp32.onnx", tmp / "int8.onnx").items()}
    for k, checkpoint in enumerate(checkpoints if data else []):
        from dfer.checkpoint import model_from_checkpoint
        from dfer.data.dataset import ClipDataset
        from dfer.data.transforms import ClipTransformConfig

        m, ck = model_from_checkpoint(checkpoint)
        p = Preprocess.from_dict(ck["preprocess"])
        export_onnx(checkpoint, tmp / "trained_fp32.onnx")
        export_onnx(checkpoint, tmp / "trained_int8.onnx", quantize="int8", calibration=data, calibration_clips_count=32)
        ds = ClipDataset(data, num_frames=p.num_frames, transform_config=ClipTransformConfig(size=p.size))
        # every clip but the 32 that export_onnx calibrated on (the first 32 of its seed-0 permutation)
        idx = np.sort(np.random.default_rng(0).permutation(len(ds))[32:])
        x = np.stack([ds[int(i)][0].numpy() for i in idx])
        ref = batched(TorchBackend(m, "cpu"), x)
        runtimes = reduced_runtimes(tmp / "trained_fp32.onnx", tmp / "trained_int8.onnx")
        res[f"trained_checkpoint_{k + 1}"] = {"checkpoint": str(checkpoint), "clip": [p.num_frames, p.size, p.size],
                                             **{name: parity(ref, batched(fn, x)) for name, fn in runtimes.items()}}
    return res


def looped_video(src: Path, out: Path, loops: int = 8) -> Path:
    from dfer.data import read_video, write_video

    frames, info = read_video(src)
    seq = [f for k in range(loops) for f in (frames if k % 2 == 0 else frames[::-1])]  # ping-pong: no jump
    return write_video(out, seq, fps=info.fps)


def end_to_end(tmp: Path, ckpt_full: Path, media: Path) -> dict:
    video = looped_video(media / "single_face.mp4", tmp / "single_face_looped.mp4")
    settings = InferenceSettings()  # the defaults: 2 s windows every 1 s, the checkpoint's face settings
    out = {"video": f"{video.name} (single_face.mp4 ping-pong looped 8x)"}
    runs = [("torch_fp32", ckpt_full, "torch"), ("onnxruntime_int8", tmp / "int8.onnx", "onnx")]
    if HAVE_OPENVINO:
        runs.append(("openvino_int8", tmp / "int8.onnx", "openvino"))
    for name, path, backend in runs:
        rec = Recognizer.from_checkpoint(path, device="cpu", backend=backend, settings=settings)
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
    ap.add_argument("--checkpoint", nargs="*", default=[], help="trained dfer checkpoints for the agreement figures")
    ap.add_argument("--data", help="the clip cache they were trained on")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    result = {"threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        result["backends"], ckpt = bench_backends(tmp, args.repeats)
        result["agreement_vs_torch_fp32"] = agreement(tmp, ckpt, args.checkpoint, args.data)
        media = Path(args.media)
        result["end_to_end"] = end_to_end(tmp, ckpt, media) if media.is_dir() else {"skipped": f"{media} not found"}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
