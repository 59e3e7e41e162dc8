"""Run the service with uvicorn: bind, print the URL, stop cleanly on SIGINT / SIGTERM."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dfer.errors import ConfigError
from dfer.remote import resolve_checkpoint
from dfer.scale import RayOptions
from dfer.serve.app import create_app
from dfer.serve.config import ServeConfig
from dfer.serve.connections import default_max_connections, guarded_protocol
from dfer.serve.live_session import MAX_FRAME_BYTES
from dfer.serve.security import is_loopback
from dfer.serve.spec import ModelSpec


def resolve_token(flag: str | None = None, token_file: str | Path | None = None) -> str | None:
    """The service's token from --token-file, DFER_TOKEN or --token (in that order of preference). DFER_TOKEN
    is removed from this process's environment, so the probe and the workers (which parse untrusted
    files) never inherit it. A token on the command line is visible to every local user in the process
    list: it works, with a warning."""
    from_env = os.environ.pop("DFER_TOKEN", None)
    if token_file is not None:
        path = Path(token_file)
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"--token-file {path}: cannot read it ({exc.strerror})") from None
        if not token:
            raise ConfigError(f"--token-file {path}: the file is empty")
        if path.stat().st_mode & 0o077:
            print(f"dfer serve: warning: {path} is readable by other users; chmod 600 it", file=sys.stderr)
        return token
    if flag:
        print("dfer serve: warning: --token puts the token in the process list for every local user to read; "
              "use --token-file or DFER_TOKEN", file=sys.stderr)
        return flag
    return from_env or None


def ray_authenticated(options: RayOptions | None) -> bool:
    """Whether Ray will demand its token: RAY_AUTH_MODE=token here (Ray >= 2.52 then authenticates every
    connection to the cluster). A local Ray that dfer starts itself is started with it on."""
    if options is not None and options.address is None:
        os.environ.setdefault("RAY_AUTH_MODE", "token")  # ray.init() makes and uses a token for its own cluster
    return os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "token"


def serve(checkpoint: str | Path, *, host: str = "127.0.0.1", port: int = 8000, data_dir: str | Path = "dfer-serve",
          token: str | None = None, backend: str = "auto", device: str = "auto", precision: str = "auto",
          streams: int = 0, threads: int = 0, insecure: bool = False, **limits) -> None:
    """Start the worker processes (each loads the model once), then serve until interrupted; jobs left
    running are re-queued on the next start. `limits` are ServeConfig fields (workers, max_queue, ...)."""
    import uvicorn

    def log(msg: str) -> None:
        print(f"dfer serve: {msg}", file=sys.stderr, flush=True)

    if not is_loopback(host) and not token and not insecure:
        raise ConfigError(f"refusing to listen on {host} without a token: anyone who can reach the port could submit "
                          "and read jobs. Set --token-file (or DFER_TOKEN), or pass --insecure to do it anyway")
    if limits.get("engine") == "ray" and not ray_authenticated(limits.get("ray")) and not insecure:
        raise ConfigError("refusing --engine ray on a Ray cluster without token authentication: whoever reaches the "
                          "cluster could run code on it and hand this server results. Start every node with "
                          "RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN or `ray get-auth-token`), set "
                          "the same here, or pass --insecure to do it anyway")
    check_port(host, port)  # before anything is loaded: a port in use is one line, not a traceback minutes later
    os.umask(0o077)  # uploads and results hold people's faces: this user's only (the workers inherit it)
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
    server = uvicorn.Server(uvicorn_config(app, config, port))
    shown = f"[{host}]" if ":" in host else host
    log(f"data in {Path(data_dir).resolve()}")
    log(f"serving on http://{shown}:{port}/  (API schema: http://{shown}:{port}/openapi.json; Ctrl-C stops)")
    server.run()  # uvicorn handles SIGINT/SIGTERM: the app's shutdown stops the workers


def check_port(host: str, port: int) -> None:
    """ConfigError when `port` on `host` cannot be listened on (in use, or not ours to take)."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a closed server's port is free
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is in use (another dfer serve?); stop it or choose "
                                  "another with --port") from None
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror})") from None


def uvicorn_config(app, config: ServeConfig, port: int):
    """uvicorn's settings for the service: h11 with the connection limits of dfer.serve.connections."""
    import uvicorn

    limit = config.max_connections or default_max_connections()
    return uvicorn.Config(app, host=config.host, port=port, log_level="warning", access_log=False,
                          http=guarded_protocol(limit, config.header_timeout), timeout_keep_alive=5,
                          h11_max_incomplete_event_size=16 * 1024,  # request line + headers: 16 KB at most
                          # live WebSockets: a frame's message at most (bigger: closed with 1009 before it is
                          # read whole), few messages queued, no compression (JPEG gains nothing; a deflate
                          # bomb would cost memory)
                          ws="websockets-sansio", ws_max_size=MAX_FRAME_BYTES + 64, ws_max_queue=4,
                          ws_per_message_deflate=False)
