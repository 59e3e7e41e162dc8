"""The pressure points of `dfer serve` measured on a real server on loopback (the figures in the notes).

- /metrics size and server memory after 3,000 requests with made-up methods and paths (no token);
- how many of 300 half-sent requests are still held 2 x --header-timeout later;
- the probe's peak memory on a MOV that holds one 8192x8192 PNG frame, beside a normal video.

    python benchmarks/bench_serve_attacks.py --out bench_serve_attacks.json

Only loopback is used; every loop is bounded.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_serve_attacks.json")
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--half-open", type=int, default=300)
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
    server.should_exit = True

    huge = hostile.huge_png_mov(tmp / "huge.mov")
    normal = write_face_video(tmp / "ok.mp4", n=30, size=(160, 120))
    out["probe"] = {"huge_png_mov_bytes": huge.stat().st_size, "huge_png_mov_peak_mb": round(probe_peak_kb(huge) / 1024, 1),
                    "normal_video_peak_mb": round(probe_peak_kb(normal) / 1024, 1)}
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
