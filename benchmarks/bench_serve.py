"""`dfer serve` under a bounded load, on loopback only, stopping by itself.

    python benchmarks/bench_serve.py [--clients 8] [--videos-per-client 3] [--workers 1] [--media ../shared/media]

Starts a real server (subprocess, 127.0.0.1, a fresh data dir, a demo-size network: 8x32x32
clips, random weights, so the figures are the service's and the face pipeline's), then:
- load: N client threads each submit V videos (single_face.mp4, 2.4 s) and wait for them;
  reports videos/minute, p50/p95 latency of `GET /v1/jobs/{id}` while the workers are busy,
  the server's peak RSS, and checks that every job is done with all its artifacts;
- restart: submits 6 jobs, kills the server with SIGKILL while a job runs, starts it again on the
  same data dir, and reports the time until every job is done (and that none was lost).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ARTIFACTS = ["predictions.csv", "tracks.csv", "summary.json", "timeline.png", "annotated.mp4"]


def small_checkpoint(path: Path) -> Path:
    import torch

    from dfer.checkpoint import Preprocess, make_checkpoint, save_checkpoint
    from dfer.data import FaceSettings
    from dfer.models import build_model

    torch.manual_seed(0)
    pre = Preprocess(num_frames=8, size=32, face=FaceSettings(size=40).to_dict(), clip_seconds=1.3)
    names = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]
    return save_checkpoint(path, make_checkpoint(model=build_model(num_classes=7), class_names=names, preprocess=pre))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(ckpt: Path, data: Path, port: int, workers: int) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "dfer.cli", "serve", "--checkpoint", str(ckpt), "--data-dir", str(data),
           "--port", str(port), "--workers", str(workers), "--max-queue", "100"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def hwm_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(next(ln.split()[1] for ln in text.splitlines() if ln.startswith("VmHWM"))) / 1024


def submit(base: str, video: Path) -> str:
    with open(video, "rb") as f:
        r = httpx.post(base + "/v1/jobs", files={"video": (video.name, f, "video/mp4")}, timeout=60)
    r.raise_for_status()
    return r.json()["id"]


def wait(base: str, job_id: str, latencies: list[float] | None = None, timeout: float = 1800) -> dict:
    t_end = time.time() + timeout
    while time.time() < t_end:
        t0 = time.perf_counter()
        try:
            job = httpx.get(f"{base}/v1/jobs/{job_id}", timeout=30).json()
        except httpx.HTTPError:
            time.sleep(0.5)  # the server is restarting
            continue
        if latencies is not None:
            latencies.append(time.perf_counter() - t0)
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.25)
    raise SystemExit(f"job {job_id} did not finish")


def complete(base: str, job: dict) -> bool:
    return job["status"] == "done" and all(
        httpx.get(f"{base}/v1/jobs/{job['id']}/{n}", timeout=30).status_code == 200 for n in ARTIFACTS)


def load(base: str, proc: subprocess.Popen, video: Path, clients: int, per_client: int) -> dict:
    latencies: list[float] = []
    jobs: list[dict] = []
    lock = threading.Lock()

    def client() -> None:
        ids = [submit(base, video) for _ in range(per_client)]
        for job_id in ids:
            job = wait(base, job_id, latencies)
            with lock:
                jobs.append(job)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=20)
    return {"clients": clients, "videos": len(jobs), "wall_s": round(wall, 1),
            "videos_per_minute": round(60 * len(jobs) / wall, 2),
            "status_latency_ms": {"p50": round(1000 * statistics.median(latencies), 1), "p95": round(1000 * q[18], 1),
                                  "requests": len(latencies)},
            "server_peak_rss_mb": round(hwm_mb(proc.pid), 1),
            "all_done_with_artifacts": all(complete(base, j) for j in jobs)}


def restart(ckpt: Path, data: Path, video: Path, workers: int) -> dict:
    port = free_port()
    proc, base = start(ckpt, data, port, workers)
    ids = [submit(base, video) for _ in range(6)]
    while httpx.get(f"{base}/v1/jobs/{ids[0]}").json()["status"] != "running":
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    t0 = time.perf_counter()
    proc, base = start(ckpt, data, port, workers)
    try:
        jobs = [wait(base, j) for j in ids]
        return {"jobs": len(ids), "killed_with": "SIGKILL while a job ran",
                "seconds_from_restart_to_all_done": round(time.perf_counter() - t0, 1),
                "all_done_with_artifacts": all(complete(base, j) for j in jobs)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "media"))
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--videos-per-client", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    video = Path(args.media) / "single_face.mp4"
    if not video.is_file():
        raise SystemExit(f"{video}: not found (--media)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = small_checkpoint(tmp / "small.pt")
        proc, base = start(ckpt, tmp / "load", free_port(), args.workers)
        try:
            result = {"video": f"{video.name} (2.4 s, 640x360)", "workers": args.workers,
                      "load": load(base, proc, video, args.clients, args.videos_per_client)}
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        result["restart"] = restart(ckpt, tmp / "restart", video, args.workers)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
