"""Inference speed and agreement, measured in one run, as ratios against a baseline of the same run.

    python benchmarks/bench_inference.py [--media ../shared/media] [--checkpoint CKPT ... --data CACHE]
                                         [--seconds 60] [--out bench_inference.json]

Prints (and writes) one JSON object:
- backends: clips/s at 16x112x112, batch 1, for torchvision r2plus1d_18 eager fp32 (the baseline) and
  the full-size dfer network on PyTorch eager, ONNX Runtime fp32 / static int8, OpenVINO f32 / native
  precision / int8 (the QDQ graph, and NNCF's int8 without accuracy control: the upper bound of what
  accuracy control keeps), one request at a time, and OpenVINO native as `auto` runs it (throughput
  streams, as many calls in flight), each with its ratio to the baseline;
- agreement_per_fold (with --checkpoint and --data, each checkpoint's split.json beside it): top-1
  agreement with PyTorch fp32 on every test clip of the fold, for the int8 exports (OpenVINO by NNCF
  with accuracy control, calibrated and validated on the fold's train part; ONNX Runtime QDQ) and
  OpenVINO's native precision when it is not f32; plus the share of convolutions NNCF kept in float;
- end_to_end: the whole `dfer predict` command (a subprocess: start-up, conversion cache warm, all
  outputs written) on a 640x360 30 fps video of --seconds (single_face.mp4 looped), real-time factor
  with the defaults (backend auto), with --no-video, with --streams 1 (one request at a time: the
  previous default) and with --backend torch (dfer 0.1's backend),
  for the full-size network and for the demo-size network (8x32x32, where the network costs little);
- tracking: mean IoU of the default tracking (dlib every 3rd frame + interpolation) vs dlib on
  every frame, on single_face.mp4 and carphone_pristine.mp4;
- live_streams: concurrent 30 fps 640x360 streams (one face each) that one process keeps up with:
  N threads sharing one model (as `dfer serve` workers do), each stream's real-time factor.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from dfer.checkpoint import make_checkpoint, model_from_checkpoint, save_checkpoint
from dfer.data import FaceSettings
from dfer.files import atomic_write_json
from dfer.inference import OnnxBackend, OpenVinoBackend, Recognizer, TorchBackend, export_model
from dfer.models import build_model
from dfer.preprocess import Preprocess


def clips_per_s(fn, x, repeats: int = 5) -> float:
    fn(x)  # warm-up (allocations, kernels)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t0)
    return x.shape[0] / best


def clips_per_s_concurrent(fn, x, callers: int, repeats: int = 5) -> float:
    """Clips/s with `callers` threads calling at once (a runtime with that many streams), best of `repeats` rounds."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(fn, [x] * callers))  # warm-up: one infer request per thread
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            list(pool.map(fn, [x] * (2 * callers)))
            best = min(best, time.perf_counter() - t0)
    return 2 * callers * x.shape[0] / best


def make_ckpt(path: Path, num_frames: int, size: int, **model_kw) -> Path:
    model = build_model(num_classes=7, **model_kw)
    pre = Preprocess(num_frames=num_frames, size=size, face=FaceSettings().to_dict(), clip_seconds=2.0)
    return save_checkpoint(path, make_checkpoint(model=model, class_names=[f"c{k}" for k in range(7)], preprocess=pre))


def bench_backends(tmp: Path, ckpt: Path, repeats: int) -> dict:
    import nncf
    import openvino as ov
    from torchvision.models.video import r2plus1d_18

    from dfer.inference.export import calibration_clips

    x = np.random.default_rng(0).standard_normal((1, 3, 16, 112, 112)).astype(np.float32)
    tv = r2plus1d_18().eval()

    def tv_fn(a):
        with torch.inference_mode():
            return tv(torch.from_numpy(a)).numpy()

    export_model(ckpt, tmp / "fp32.onnx")
    export_model(ckpt, tmp / "int8.onnx", quantize="int8", min_agreement=0)
    pre = Preprocess.from_dict(torch.load(ckpt, weights_only=False)["preprocess"])
    q = nncf.quantize(ov.Core().read_model(str(tmp / "fp32.onnx")),
                      nncf.Dataset(list(calibration_clips(pre, count=32)), lambda c: c[None]), subset_size=32)
    ov.save_model(q, str(tmp / "nncf_int8.xml"), compress_to_fp16=False)
    model, _ = model_from_checkpoint(ckpt)
    native = OpenVinoBackend(tmp / "fp32.onnx", streams=1)
    streams = OpenVinoBackend(tmp / "fp32.onnx")  # what `auto` runs: float -> OpenVINO's throughput streams
    runs = {
        "torchvision_r2plus1d_18_eager_fp32": tv_fn,
        "dfer_torch_eager_fp32": TorchBackend(model, "cpu"),
        "dfer_onnxruntime_fp32": OnnxBackend(tmp / "fp32.onnx"),
        "dfer_onnxruntime_int8_qdq": OnnxBackend(tmp / "int8.onnx"),
        "dfer_openvino_f32": OpenVinoBackend(tmp / "fp32.onnx", precision="f32", streams=1),
        f"dfer_openvino_native_{native.precision}, one request": native,
        "dfer_openvino_int8_qdq": OpenVinoBackend(tmp / "int8.onnx"),
        "dfer_openvino_int8_nncf": OpenVinoBackend(tmp / "nncf_int8.xml"),
    }
    rates = {name: clips_per_s(fn, x, repeats) for name, fn in runs.items()}
    name = f"dfer_openvino_native_{streams.precision}, {streams.concurrency} streams, calls in flight (backend auto)"
    rates[name] = clips_per_s_concurrent(streams, x, streams.concurrency, repeats)
    base = rates["torchvision_r2plus1d_18_eager_fp32"]
    return {name: {"clips_per_s": round(r, 3), "ratio_to_baseline": round(r / base, 3)} for name, r in rates.items()}


def float_conv_share(xml: Path) -> float:
    """Share of Convolution nodes whose weights reach them without a FakeQuantize or int8 constant (kept in float)."""
    import openvino as ov

    def quantised(node) -> bool:
        src = node.input_value(1).get_node()
        for _ in range(6):
            kind = src.get_type_name()
            if kind == "FakeQuantize":
                return True
            if kind == "Constant":
                return src.get_output_element_type(0).get_type_name() in ("i8", "u8")
            if src.get_input_size() == 0:
                return False
            src = src.input_value(0).get_node()
        return False

    convs = [n for n in ov.Core().read_model(str(xml)).get_ordered_ops() if n.get_type_name() == "Convolution"]
    return round(sum(not quantised(c) for c in convs) / max(1, len(convs)), 3)


def agreement_per_fold(tmp: Path, checkpoints: list[str], data: str | None) -> dict:
    from dfer.inference.export import calibration_clips, parity

    out = {}
    for k, ckpt in enumerate(checkpoints if data else []):
        split = Path(ckpt).parent / "split.json"
        row = {"checkpoint": str(ckpt)}
        for name, fmt in (("openvino_int8_nncf_accuracy_control", "openvino"), ("onnxruntime_int8_qdq", "onnx")):
            path = tmp / f"fold{k}_{fmt}.{'xml' if fmt == 'openvino' else 'onnx'}"
            meta = export_model(ckpt, path, format=fmt, quantize="int8", calibration=data, calibration_split=split,
                                min_agreement=0)
            row[name] = meta.parity_vs_torch_fp32
            if fmt == "openvino":
                row["openvino_int8_float_conv_share"] = float_conv_share(path)
        export_model(ckpt, tmp / f"fold{k}_fp32.xml", format="openvino")
        native = OpenVinoBackend(tmp / f"fold{k}_fp32.xml", streams=1)
        if native.precision != "f32":  # bf16 on CPUs with native bf16: its agreement on the same test clips
            model, ck = model_from_checkpoint(ckpt)
            pre = Preprocess.from_dict(ck["preprocess"])
            ids = json.loads(split.read_text())["test"]
            x = calibration_clips(pre, data=data, count=len(ids), ids=ids)
            ref = np.concatenate([TorchBackend(model, "cpu")(x[i : i + 16]) for i in range(0, len(x), 16)])
            got = np.concatenate([native(x[i : i + 16]) for i in range(0, len(x), 16)])
            row[f"openvino_native_{native.precision}"] = parity(ref, got)
        out[f"fold_{k + 1}"] = row
    return out


def looped_video(src: Path, out: Path, seconds: float) -> Path:
    from dfer.data import read_video, write_video

    frames, info = read_video(src)
    need = int(seconds * info.fps)
    seq = []
    k = 0
    while len(seq) < need:
        seq.extend(frames if k % 2 == 0 else frames[::-1])  # ping-pong: no jump
        k += 1
    return write_video(out, seq[:need], fps=info.fps)


def run_predict(video: Path, ckpt: Path, out: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dfer.cli", "predict", str(video), "--checkpoint", str(ckpt), "--out", str(out),
                    "--overwrite", "--quiet", *extra], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def end_to_end(tmp: Path, video: Path, seconds: float, checkpoints: dict[str, Path]) -> dict:
    res = {"video": f"{video.name}: {seconds:.0f} s, 640x360, 30 fps (single_face.mp4 ping-pong looped)"}
    for label, ckpt in checkpoints.items():
        run_predict(video, ckpt, tmp / "warm", "--max-seconds", "2")  # converts once into the cache (not timed)
        row = {}
        for name, extra in (("defaults (auto), all outputs", ()), ("defaults, --no-video", ("--no-video",)),
                            ("--streams 1 (one request at a time), all outputs", ("--streams", "1")),
                            ("--backend torch, all outputs", ("--backend", "torch"))):
            wall = run_predict(video, ckpt, tmp / "e2e", *extra)
            row[name] = {"wall_s": round(wall, 2), "realtime_factor": round(seconds / wall, 3)}
        summary = json.loads(next((tmp / "e2e").glob("*/summary.json")).read_text())
        row["windows"] = sum(t["windows"] for t in summary["tracks"])
        out_dir = next((tmp / "e2e").iterdir())
        row["annotated_mp4_MB"] = round((out_dir / "annotated.mp4").stat().st_size / 1e6, 2)
        res[label] = row
    return res


def tracking(media: Path) -> dict:
    from dfer.data import read_video
    from dfer.data.faces import iou, make_detector
    from dfer.data.tracking import FaceTracker

    out = {}
    for name in ("single_face.mp4", "carphone_pristine.mp4"):
        frames, _ = read_video(media / name)
        settings = FaceSettings(upsample=1 if name.startswith("carphone") else 0)
        every = FaceSettings(**{**settings.to_dict(), "detect_every": 1})
        a = {tf.index: tf.faces for tf in FaceTracker(make_detector(settings), settings).run(list(frames))}
        b = {tf.index: tf.faces for tf in FaceTracker(make_detector(every), every).run(list(frames))}
        ious = [iou(min(a[i].values(), key=lambda t: -t.box.area).box, min(b[i].values(), key=lambda t: -t.box.area).box)
                for i in a if a[i] and b.get(i)]
        out[name] = {"mean_iou_vs_every_frame": round(float(np.mean(ious)), 4), "frames": len(ious)}
    return out


def live_streams(video: Path, ckpt: Path, max_streams: int = 4) -> dict:
    """N streams at once, one thread each, one shared model; a stream keeps up when its factor >= 1."""
    base = Recognizer.from_checkpoint(ckpt)
    out = {"backend": base.backend.detail}
    for n in range(1, max_streams + 1):
        factors = [0.0] * n

        def one(k: int, factors: list[float] = factors) -> None:
            rec = Recognizer(base.backend, base.class_names, base.preprocess, base.settings)
            factors[k] = rec.predict_video(video, max_frames=600).realtime_factor  # 20 s of each stream

        threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out[f"{n}_streams"] = {"per_stream_realtime_factor": [round(f, 2) for f in factors], "keep_up": min(factors) >= 1.0}
        if min(factors) < 1.0:
            break
    out["capacity_streams"] = max([int(k.split("_")[0]) for k, v in out.items() if isinstance(v, dict) and v["keep_up"]],
                                  default=0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "media"))
    ap.add_argument("--checkpoint", nargs="*", default=[], help="trained fold checkpoints (split.json beside each)")
    ap.add_argument("--data", help="the clip cache they were trained on")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the end-to-end video")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip", nargs="*", default=[], help="sections to skip: backends agreement end_to_end tracking live")
    ap.add_argument("--out", default="bench_inference.json")
    args = ap.parse_args()
    result = {"threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("DFER_CACHE_DIR", str(tmp / "cache"))
        full = make_ckpt(tmp / "full.pt", 16, 112)
        demo = make_ckpt(tmp / "demo.pt", 8, 32)
        media = Path(args.media)
        sections = [
            ("backends", lambda: bench_backends(tmp, full, args.repeats)),
            ("agreement", lambda: agreement_per_fold(tmp, args.checkpoint, args.data)),
            ("tracking", lambda: tracking(media)),
        ]
        if media.is_dir():
            video = looped_video(media / "single_face.mp4", tmp / "long.mp4", args.seconds)
            sections += [("end_to_end", lambda: end_to_end(tmp, video, args.seconds, {"full_size_16x112x112": full,
                                                                                     "demo_size_8x32x32": demo})),
                         ("live", lambda: {"full_size_16x112x112": live_streams(video, full),
                                           "demo_size_8x32x32": live_streams(video, demo, max_streams=8)})]
        for name, fn in sections:
            if name in args.skip:
                continue
            t0 = time.perf_counter()
            result[name] = fn()
            print(f"[{name}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
            atomic_write_json(args.out, result)  # what is measured so far survives an interrupted run
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
