"""`dfer serve` under a bounded load, on loopback only, stopping by itself.

    python benchmarks/bench_serve.py [--clients 8] [--videos-per-client 3] [--workers 2] [--media ../shared/media]
                                     [--skip-memory]

Starts a real server (subprocess, 127.0.0.1, a fresh data dir, a demo-size network: 8x32x32
clips, random weights, so the figures are the service's and the face pipeline's), then:
- load: N client threads each upload V videos (single_face.mp4, 2.4 s) and wait for them, while a
  poller with one persistent HTTP connection asks `GET /v1/jobs/{id}` and `/healthz` ten times a
  second; reports videos/minute, p50/p95 of both as the poller saw them and as the server's timing
  middleware logged them (its JSON request lines), the peak RSS of the API process and of each
  worker, and checks that every job is done with all its artifacts;
- memory: a 10-minute 640x360 video (single_face.mp4 looped), run once with the default request
  parameters and once with the worst accepted ones (window 10 s, stride 100000, detect_every 30),
  each on a fresh one-worker server: the worker's peak RSS (VmHWM) for each;
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

    from dfer.checkpoint import make_checkpoint, save_checkpoint
    from dfer.data import FaceSettings
    from dfer.models import build_model
    from dfer.preprocess import Preprocess

    torch.manual_seed(0)
    pre = Preprocess(num_frames=8, size=32, face=FaceSettings(size=40).to_dict(), clip_seconds=1.3)
    names = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]
    return save_checkpoint(path, make_checkpoint(model=build_model(num_classes=7), class_names=names, preprocess=pre))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(ckpt: Path, data: Path, port: int, workers: int, log: Path | None = None) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "dfer.cli", "serve", "--checkpoint", str(ckpt), "--data-dir", str(data),
           "--port", str(port), "--workers", str(workers), "--max-queue", "100"]
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - the server's lifetime
    proc = subprocess.Popen(cmd, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    for _ in range(1200):
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


def submit(base: str, video: Path, **params) -> str:
    with open(video, "rb") as f:
        r = httpx.post(base + "/v1/jobs", files={"video": (video.name, f, "video/mp4")},
                       data={k: str(v) for k, v in params.items()}, timeout=120)
    r.raise_for_status()
    return r.json()["id"]


def quantiles_ms(values: list[float]) -> dict:
    if len(values) < 2:
        return {"requests": len(values)}
    q = statistics.quantiles(values, n=20)
    return {"p50": round(1000 * statistics.median(values), 1), "p95": round(1000 * q[18], 1), "requests": len(values)}


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


def load(base: str, proc: subprocess.Popen, log: Path, video: Path, clients: int, per_client: int) -> dict:
    jobs: list[dict] = []
    lock = threading.Lock()
    busy = threading.Event()
    seen: dict[str, list[float]] = {"job": [], "healthz": []}
    peak_workers: dict[int, float] = {}
    ids: list[str] = []

    def client() -> None:
        with httpx.Client(base_url=base, timeout=120) as http:
            mine = []
            for _ in range(per_client):
                with open(video, "rb") as f:
                    mine.append(http.post("/v1/jobs", files={"video": (video.name, f, "video/mp4")}).json()["id"])
                with lock:
                    ids.append(mine[-1])
            for job_id in mine:
                while (job := http.get(f"/v1/jobs/{job_id}").json())["status"] not in ("done", "failed"):
                    time.sleep(0.5)
                with lock:
                    jobs.append(job)

    def poller() -> None:  # one persistent connection, as a dashboard would hold
        with httpx.Client(base_url=base, timeout=30) as http:
            while busy.is_set():
                if ids:
                    t0 = time.perf_counter()
                    http.get(f"/v1/jobs/{ids[-1]}")
                    seen["job"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                health = http.get("/healthz").json()
                seen["healthz"].append(time.perf_counter() - t0)
                for w in health["workers"]:
                    if w["pid"]:
                        try:
                            peak_workers[w["pid"]] = hwm_mb(w["pid"])
                        except (OSError, StopIteration):
                            pass
                time.sleep(0.1)

    busy.set()
    watcher = threading.Thread(target=poller)
    watcher.start()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    busy.clear()
    watcher.join()
    server: dict[str, list[float]] = {"/v1/jobs/{job_id}": [], "/healthz": [], "/v1/jobs": []}
    for line in log.read_text().splitlines():
        entry = line.split("dfer serve: ", 1)[-1]
        if entry.startswith("{") and '"request"' in entry:
            e = json.loads(entry)
            if e["route"] in server:
                server[e["route"]].append(e["ms"] / 1000)
    return {"clients": clients, "videos": len(jobs), "wall_s": round(wall, 1),
            "videos_per_minute": round(60 * len(jobs) / wall, 2),
            "poller_ms": {"GET /v1/jobs/{id}": quantiles_ms(seen["job"]), "GET /healthz": quantiles_ms(seen["healthz"])},
            "server_ms": {"GET /v1/jobs/{id}": quantiles_ms(server["/v1/jobs/{job_id}"]),
                          "GET /healthz": quantiles_ms(server["/healthz"]),
                          "POST /v1/jobs (upload + probe)": quantiles_ms(server["/v1/jobs"])},
            "api_peak_rss_mb": round(hwm_mb(proc.pid), 1),
            "worker_peak_rss_mb": sorted(round(v, 1) for v in peak_workers.values()),
            "all_done_with_artifacts": all(complete(base, j) for j in jobs)}


def long_video(src: Path, dest: Path, seconds: float) -> Path:
    """`src` looped to `seconds` (same size and rate), written once."""
    import av

    with av.open(str(src)) as c:
        stream = c.streams.video[0]
        fps = float(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    frames += frames[-2:0:-1]  # forth and back: no jump at the loop point
    with av.open(str(dest), "w") as out:
        s = out.add_stream("libx264", rate=round(fps))
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "28"}
        for i in range(int(seconds * fps)):
            for packet in s.encode(av.VideoFrame.from_ndarray(frames[i % len(frames)], format="rgb24")):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    return dest


def memory(ckpt: Path, tmp: Path, video: Path) -> dict:
    """Peak RSS of a worker over one 10-minute video, default vs worst accepted parameters."""
    out = {}
    for name, params in (("defaults", {}), ("worst accepted", {"window": 10, "stride": 100000, "detect_every": 30})):
        proc, base = start(ckpt, tmp / f"mem-{len(out)}", free_port(), 1)
        try:
            t0 = time.perf_counter()
            job = wait(base, submit(base, video, **params))
            pid = httpx.get(base + "/healthz").json()["workers"][0]["pid"]
            out[name] = {"params": params, "status": job["status"], "seconds": round(time.perf_counter() - t0, 1),
                         "worker_peak_rss_mb": round(hwm_mb(pid), 1)}
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    return out


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
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-memory", action="store_true", help="skip the 10-minute video runs")
    args = ap.parse_args()
    video = Path(args.media) / "single_face.mp4"
    if not video.is_file():
        raise SystemExit(f"{video}: not found (--media)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = small_checkpoint(tmp / "small.pt")
        log = tmp / "server.log"
        proc, base = start(ckpt, tmp / "load", free_port(), args.workers, log)
        try:
            result = {"video": f"{video.name} (2.4 s, 640x360)", "workers": args.workers,
                      "load": load(base, proc, log, video, args.clients, args.videos_per_client)}
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        if not args.skip_memory:
            result["memory_10min_640x360"] = memory(ckpt, tmp, long_video(video, tmp / "ten_minutes.mp4", 600))
        result["restart"] = restart(ckpt, tmp / "restart", video, args.workers)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
