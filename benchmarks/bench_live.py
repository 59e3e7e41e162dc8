"""A live session as a browser makes one: a real `dfer serve` on loopback, a WebSocket client sending JPEG
frames at a fixed rate, each one's result timed when it comes back.

    python benchmarks/bench_live.py --checkpoint dfer-demo/best.pt [--fps 15] [--seconds 20] [--video FILE]
                                    [--width 640] [--out live.json]

The frames are a video's (default ../shared/media/single_face.mp4, else synthetic faces), played forward and
backward in a loop (a camera's view has no cut; a loop's jump would start a new face track each time), scaled to
at most --width px wide and JPEG-encoded beforehand (the client's own cost is not measured), sent one every
1/fps s as the page does: a frame is skipped while the previous one is still being sent. Without
--checkpoint, the demo's network with random weights runs (half width, 8 x 32 x 32 clips: its cost).

Reports (one JSON object, also written to --out): frames sent, processed (a result came back), dropped
(sent, never processed: the server skips frames it cannot keep up with), in all and after the first
label; latency from capture to result (the client's clock at both ends) after the first label (median,
p95, max) and p95 from the start; the seconds until the first expression label (the first window must
fill: the model's clip length, plus the session's first inference); the session's start-up (the worker
loading the model, before the first frame is sent), the processed frame rate, and the CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
from websockets.sync.client import connect

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_serve import free_port  # noqa: E402


def demo_size_checkpoint(path: Path) -> Path:
    """The demo's network (the paper's at half width, 8 x 32 x 32 clips, 1.28 s windows), random weights: the
    demo's cost without training it."""
    import torch

    from dfer.checkpoint import make_checkpoint, save_checkpoint
    from dfer.data import FaceSettings
    from dfer.demo_settings import DemoSettings
    from dfer.models import build_model
    from dfer.preprocess import Preprocess

    torch.manual_seed(0)
    d = DemoSettings()
    pre = Preprocess(num_frames=d.clip_frames, size=d.clip_size, clip_seconds=d.frames / 25,
                     face=FaceSettings(size=d.crop_size, margin=d.margin).to_dict())
    names = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]
    model = build_model(name=d.model, num_classes=7)
    return save_checkpoint(path, make_checkpoint(model=model, class_names=names, preprocess=pre))


def frames_of(video: Path | None, width: int, count: int) -> list[bytes]:
    """`count` JPEGs: the video's frames (looped) or synthetic faces, at most `width` px wide."""
    if video is not None and video.is_file():
        from dfer.data.video import open_source

        rgbs = [f.rgb() for f in open_source(video).decoded()]
    else:
        sys.path.insert(0, str(HERE.parent / "tests"))
        from synthetic import face_frames

        rgbs = face_frames(100, (320, 240))
    rgbs = rgbs + rgbs[-2:0:-1]  # forward, then backward: a camera's continuous view, no cut at the loop
    out = []
    for i in range(count):
        rgb = rgbs[i % len(rgbs)]
        scale = min(1.0, width / rgb.shape[1])
        if scale < 1.0:
            rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        out.append(cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    return out


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def session(base: str, jpegs: list[bytes], fps: float) -> dict:
    ticket = httpx.post(base + "/v1/live").json()["ticket"]
    results: list[tuple[float, dict]] = []
    t_open = time.time()
    with connect(base.replace("http", "ws") + "/v1/live/ws", max_size=None, open_timeout=30) as ws:
        ws.send(json.dumps({"ticket": ticket, "fps": fps}))
        while json.loads(ws.recv(timeout=300))["type"] != "ready":
            pass
        startup = time.time() - t_open

        def read() -> None:
            try:
                while True:
                    msg = json.loads(ws.recv())
                    results.append((time.time(), msg))
                    if msg["type"] == "end":
                        return
            except Exception:  # noqa: BLE001 - closed
                return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        t0, sent, skipped, skipped_seqs = time.time(), 0, 0, set()
        for i, jpeg in enumerate(jpegs):
            time.sleep(max(0.0, t0 + i / fps - time.time()))
            if i and time.time() - t0 > (i + 1) / fps:  # still sending the last one: skipped, as the page does
                skipped += 1
                skipped_seqs.add(i)
                continue
            ws.send(struct.pack("<Id", i, time.time() * 1000) + jpeg)
            sent += 1
        ws.send(json.dumps({"type": "stop"}))
        reader.join(120)
    frames = [(t, m) for t, m in results if m["type"] == "frame"]
    labelled = [(t, m) for t, m in frames if any(f["label"] for f in m["faces"])]
    # Steady state: from the first label on (before it, the first window fills and the runtime warms up).
    first_seq = labelled[0][1]["seq"] if labelled else len(jpegs)
    steady = [(t, m) for t, m in frames if m["seq"] >= first_seq]
    sent_after = sum(1 for i in range(first_seq, len(jpegs)) if i not in skipped_seqs)
    latency = sorted(1000 * t - m["t"] for t, m in steady)
    everything = sorted(1000 * t - m["t"] for t, m in frames)
    end = next((m for _, m in results if m["type"] == "end"), {})
    span = frames[-1][0] - frames[0][0] if len(frames) > 1 else 0.0

    def pct(values: list[float], q: float) -> float | None:
        return round(values[int(q * (len(values) - 1))], 1) if values else None

    return {"frames_sent": sent, "frames_skipped_at_client": skipped, "frames_processed": len(frames),
            "frames_dropped": sent - len(frames), "server_received": end.get("received"),
            "frames_dropped_after_first_label": sent_after - len(steady),
            "latency_ms_p50": pct(latency, 0.5), "latency_ms_p95": pct(latency, 0.95), "latency_ms_max": pct(latency, 1.0),
            "latency_ms_p95_from_the_start": pct(everything, 0.95),
            "first_label_s": round(labelled[0][0] - t0, 2) if labelled else None,
            "processed_fps": round((len(frames) - 1) / span, 2) if span else None,
            "session_startup_s": round(startup, 2),
            "frames_with_faces": sum(1 for _, m in frames if m["faces"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, help="a dfer checkpoint or exported model (default: demo-size, random)")
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--video", type=Path, default=HERE.parent.parent / "shared" / "media" / "single_face.mp4")
    ap.add_argument("--width", type=int, default=640, help="frames at most this wide, as the page sends them")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--serve-args", default="", help="further dfer serve flags, e.g. \"--threads 1\"")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint or demo_size_checkpoint(Path(tmp) / "demo.pt")
        jpegs = frames_of(args.video, args.width, int(args.fps * args.seconds))
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "dfer.cli", "serve", "--checkpoint", str(ckpt), "--data-dir",
                                 str(Path(tmp) / "srv"), "--port", str(port), *args.serve_args.split()],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            report = {"cpu": cpu_name(), "cores": __import__("os").cpu_count(), "fps": args.fps,
                      "seconds": args.seconds, "frame": list(cv2.imdecode(np.frombuffer(jpegs[0], np.uint8), 1).shape[1::-1]),
                      "video": args.video.name if args.video.is_file() else "synthetic faces",
                      "checkpoint": Path(ckpt).name if args.checkpoint else "the demo's network, random weights",
                      "serve_args": args.serve_args,
                      **session(base, jpegs, args.fps)}
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
