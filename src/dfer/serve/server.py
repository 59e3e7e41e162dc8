"""Run the service with uvicorn: bind, print the URL, stop cleanly on SIGINT / SIGTERM."""

from __future__ import annotations

import sys
from pathlib import Path

from dfer.errors import ConfigError
from dfer.remote import resolve_checkpoint
from dfer.serve.app import ServeConfig, create_app
from dfer.serve.security import is_loopback


def serve(checkpoint: str | Path, *, host: str = "127.0.0.1", port: int = 8000, data_dir: str | Path = "dfer-serve",
          workers: int = 1, token: str | None = None, max_upload_mb: float = 500.0, max_queue: int = 32,
          backend: str = "auto", device: str = "auto", precision: str = "auto", streams: int = 0,
          insecure: bool = False, allowed_hosts: tuple[str, ...] = (), max_duration: float = 3600.0,
          max_frame: tuple[int, int] = (4096, 2160), max_fps: float = 240.0) -> None:
    """Load the model once, then serve until interrupted; jobs left running are re-queued on the next start."""
    import uvicorn

    from dfer.inference import Recognizer

    def log(msg: str) -> None:
        print(f"dfer serve: {msg}", file=sys.stderr, flush=True)

    if not is_loopback(host) and not token and not insecure:
        raise ConfigError(f"refusing to listen on {host} without a token: anyone who can reach the port could submit "
                          "and read jobs. Set --token (or DFER_TOKEN), or pass --insecure to do it anyway")
    local = resolve_checkpoint(checkpoint)  # a URL is downloaded and verified once
    rec = Recognizer.from_checkpoint(local, device=device, backend=backend, precision=precision, streams=streams)
    config = ServeConfig(Path(data_dir), token=token or None, max_upload_mb=max_upload_mb, max_queue=max_queue,
                         workers=workers, explain_checkpoint=local if local.suffix.lower() == ".pt" else None,
                         host=host, allowed_hosts=tuple(allowed_hosts), max_duration=max_duration, max_frame=max_frame,
                         max_fps=max_fps)
    app = create_app(rec, config, log=log)
    if not is_loopback(host) and not config.token:
        log(f"warning: listening on {host} without a token (--insecure): anyone who can reach this port can submit videos")
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    shown = f"[{host}]" if ":" in host else host
    log(f"model {rec.backend.detail} ({rec.backend_choice['why']}); data in {Path(data_dir).resolve()}; {workers} worker(s)")
    log(f"serving on http://{shown}:{port}/  (API schema: http://{shown}:{port}/openapi.json; Ctrl-C stops)")
    server.run()  # uvicorn handles SIGINT/SIGTERM: the app's shutdown stops the workers
