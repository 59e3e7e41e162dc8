"""Run the service with uvicorn: bind, print the URL, stop cleanly on SIGINT / SIGTERM."""

from __future__ import annotations

import sys
from pathlib import Path

from dfer.errors import ConfigError
from dfer.remote import resolve_checkpoint
from dfer.serve.app import create_app
from dfer.serve.config import ServeConfig
from dfer.serve.security import is_loopback
from dfer.serve.spec import ModelSpec


def serve(checkpoint: str | Path, *, host: str = "127.0.0.1", port: int = 8000, data_dir: str | Path = "dfer-serve",
          token: str | None = None, backend: str = "auto", device: str = "auto", precision: str = "auto",
          streams: int = 0, threads: int = 0, insecure: bool = False, **limits) -> None:
    """Start the worker processes (each loads the model once), then serve until interrupted; jobs left
    running are re-queued on the next start. `limits` are ServeConfig fields (workers, max_queue, ...)."""
    import os

    import uvicorn

    def log(msg: str) -> None:
        print(f"dfer serve: {msg}", file=sys.stderr, flush=True)

    if not is_loopback(host) and not token and not insecure:
        raise ConfigError(f"refusing to listen on {host} without a token: anyone who can reach the port could submit "
                          "and read jobs. Set --token (or DFER_TOKEN), or pass --insecure to do it anyway")
    local = resolve_checkpoint(checkpoint)  # a URL is downloaded and verified once
    if not local.exists():
        raise ConfigError(f"checkpoint not found: {local}")
    workers = int(limits.get("workers", 1))
    ray = limits.get("ray")
    if threads == 0 and ray is not None:  # a Ray actor uses the CPUs it asked for
        threads = max(1, int(ray.cpus_per_worker))
    elif threads == 0 and workers > 1:  # the workers share the cores instead of each taking them all
        threads = max(1, (os.cpu_count() or 1) // workers)
    model = ModelSpec(local, backend=backend, device=device, precision=precision, streams=streams, threads=threads)
    config = ServeConfig(Path(data_dir), token=token or None, host=host,
                         explain_checkpoint=local if local.suffix.lower() == ".pt" else None, **limits)
    app = create_app(model, config, log=log)
    app.state.startup()  # before binding: a model the workers cannot load stops here with its reason
    if not is_loopback(host) and not config.token:
        log(f"warning: listening on {host} without a token (--insecure): anyone who can reach this port can submit videos")
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    shown = f"[{host}]" if ":" in host else host
    log(f"data in {Path(data_dir).resolve()}")
    log(f"serving on http://{shown}:{port}/  (API schema: http://{shown}:{port}/openapi.json; Ctrl-C stops)")
    server.run()  # uvicorn handles SIGINT/SIGTERM: the app's shutdown stops the workers
