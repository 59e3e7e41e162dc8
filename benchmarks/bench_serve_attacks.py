"""The pressure points of `dfer serve` measured on a real server on loopback (the figures in the notes).

- /metrics size and server memory after 3,000 requests with made-up methods and paths (no token);
- how many of 300 half-sent requests are still held 2 x --header-timeout later;
- the probe's peak memory on a MOV that holds one 8192x8192 PNG frame, beside a normal video;
- a form with one field name repeated 469,511 times (30 MB): seconds until the answer, and /healthz
  latency meanwhile;
- joining 300, 1,000 and 3,000 face tracks into people (dfer.inference.people.join_tracks): seconds;
- the peak memory of a job on a many-cuts video (--many-cuts: 1080p at 240 fps with a cut and a new face
  every 16 frames, detection on every frame, as a service job runs it): the worker's analysis in a
  process of its own, peak RSS read from the kernel.

    python benchmarks/bench_serve_attacks.py --out bench_serve_attacks.json [--many-cuts-seconds 16]

Only loopback is used; every loop is bounded. Run it with another dfer on PYTHONPATH for a before/after.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import hostile  # noqa: E402
from dfer.serve import ModelSpec, ServeConfig, create_app  # noqa: E402
from dfer.serve.server import uvicorn_config  # noqa: E402
from synthetic import write_face_video  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe_peak_kb(path: Path) -> int:
    code = ("import sys; from dfer.serve.probe import main; main([sys.argv[1]]); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    return int(subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True).stdout.split()[-1])


def repeated_fields(base: str, tmp: Path, count: int = 469_511) -> dict:
    """One form field name repeated `count` times around a tiny video: the answer's time and status, and
    /healthz's latency while the server parses it."""
    boundary = "dferbench"
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="stride"\r\n\r\n5\r\n'.encode()
    video = (tmp / "ok.mp4").read_bytes() if (tmp / "ok.mp4").exists() else b"\0" * 1024
    body = part * count + (f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="v.mp4"\r\n'
                           f"Content-Type: video/mp4\r\n\r\n").encode() + video + f"\r\n--{boundary}--\r\n".encode()
    health: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            try:
                httpx.get(base + "/healthz", timeout=30)
            except httpx.HTTPError:
                pass
            health.append(time.perf_counter() - t0)
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    t0 = time.perf_counter()
    r = httpx.post(base + "/v1/jobs", content=body, timeout=120,
                   headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    seconds = time.perf_counter() - t0
    done.set()
    poller.join()
    return {"body_mb": round(len(body) / 2**20, 1), "fields": count, "status": r.status_code,
            "answer": r.json().get("error", "")[:120], "seconds": round(seconds, 3),
            "healthz_max_ms": round(1000 * max(health, default=0.0), 1)}


def clustering_seconds(n: int) -> float:
    """join_tracks on n tracks of 10 people that never overlap in time."""
    import numpy as np

    from dfer.inference.people import join_tracks

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 0.3, (10, 128))
    desc = {t: (centres[t % 10] + rng.normal(0, 0.02, 128))[None].astype(np.float32) for t in range(n)}
    t0 = time.perf_counter()
    join_tracks(desc, {t: (10 * t, 10 * t + 5) for t in range(n)})
    return round(time.perf_counter() - t0, 3)


def many_cuts_video(path: Path, seconds: float, fps: int = 240, size=(1920, 1080), every: int = 16) -> Path:
    """1080p at 240 fps, a cut and another face (skin, place, background) every `every` frames."""
    import numpy as np

    from dfer.data.video import VideoWriter
    from synthetic import face_frames

    rng = np.random.default_rng(0)
    small = (192, 108)  # drawn this small and scaled up, dlib finds the synthetic faces (drawn large, HOG misses them)
    with VideoWriter(path, fps, *size, preset="ultrafast", crf=30) as out:
        for shot in range(int(seconds * fps) // every):
            skin = tuple(int(v) for v in rng.integers(90, 230, 3))
            bg = tuple(int(v) for v in rng.integers(20, 200, 3))
            for f in face_frames(every, small, skin=skin, background=bg, seed=shot):
                import cv2

                out.write(cv2.resize(f, size, interpolation=cv2.INTER_LINEAR))
    return path


def many_cuts_peak(tmp: Path, seconds: float) -> dict:
    """A service job's analysis (detect_every 1, people on) of the many-cuts video in a process of its own:
    its peak RSS, its time and what it found."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_inference import make_ckpt

    video = many_cuts_video(tmp / "cuts.mp4", seconds)
    ckpt = make_ckpt(tmp / "demo.pt", 8, 32)
    argv = ["predict", str(video), "--checkpoint", str(ckpt), "--out", str(tmp / "cuts-out"), "--detect-every", "1",
            "--quiet", "--overwrite"]
    code = (f"from dfer.cli import main; main({argv!r}); "  # the job in this process; then its peak, from the kernel
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    peak = int(run.stdout.split()[-1])
    summary = json.loads((tmp / "cuts-out" / "cuts" / "summary.json").read_text())
    return {"video": f"{seconds:g} s of 1920x1080 at 240 fps, a cut every 16 frames",
            "bytes": video.stat().st_size, "seconds": round(time.perf_counter() - t0, 1),
            "peak_rss_mb": round(peak / 1024, 1), "tracks": len(summary["tracks"]),
            "people": len(summary["people"]), "cuts": len(summary["shot_cuts"]), "notes": summary.get("notes", [])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_serve_attacks.json")
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--half-open", type=int, default=300)
    ap.add_argument("--tracks", type=int, nargs="+", default=[300, 1000, 3000])
    ap.add_argument("--many-cuts-seconds", type=float, default=16.0, help="0: skip the many-cuts job")
    args = ap.parse_args()
    import uvicorn

    tmp = Path(tempfile.mkdtemp(prefix="dfer-attacks-"))
    config = ServeConfig(tmp / "srv", header_timeout=5.0)
    app = create_app(ModelSpec(tmp / "model.pt"), config, start_workers=False, log=lambda m: None)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, config, port))
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(base + "/healthz", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    me = psutil.Process()
    out: dict = {}
    with httpx.Client(base_url=base) as c:
        before, rss0 = len(c.get("/metrics").text), me.memory_info().rss
        for i in range(args.requests):
            c.request("X00042", f"/nope/{i}")
        after, rss1 = len(c.get("/metrics").text), me.memory_info().rss
    out["metrics"] = {"requests": args.requests, "metrics_bytes_before": before, "metrics_bytes_after": after,
                      "rss_growth_mb": round((rss1 - rss0) / 2**20, 1)}

    socks = []
    for _ in range(args.half_open):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            socks.append(s)
        except OSError:
            break
    time.sleep(2 * config.header_timeout)
    held = 0
    for s in socks:
        s.settimeout(0.05)
        try:
            s.recv(65536)  # b"" (closed) or the server's 408 / 503 before it closed
        except TimeoutError:
            held += 1  # nothing sent and not closed: still held
        except OSError:
            pass  # reset: closed
        s.close()
    out["half_open"] = {"opened": len(socks), "still_held_after_s": 2 * config.header_timeout, "held": held}

    out["repeated_fields"] = repeated_fields(base, tmp)
    server.should_exit = True

    huge = hostile.huge_png_mov(tmp / "huge.mov")
    normal = write_face_video(tmp / "ok.mp4", n=30, size=(160, 120))
    out["probe"] = {"huge_png_mov_bytes": huge.stat().st_size, "huge_png_mov_peak_mb": round(probe_peak_kb(huge) / 1024, 1),
                    "normal_video_peak_mb": round(probe_peak_kb(normal) / 1024, 1)}
    out["join_tracks_s"] = {n: clustering_seconds(n) for n in args.tracks}
    if args.many_cuts_seconds > 0:
        out["many_cuts_job"] = many_cuts_peak(tmp, args.many_cuts_seconds)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
