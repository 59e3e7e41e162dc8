"""`dfer serve`: the HTTP service and its web page."""

from __future__ import annotations

import argparse

from dfer.cli.args import (
    CHECKPOINT_HELP,
    NONNEG_INT,
    STREAMS_HELP,
    add_config_flags,
    add_engine_args,
    checkpoint_ref,
    config_values,
    number,
    ray_options,
)
from dfer.options import BACKENDS, PRECISIONS
from dfer.serve.config import ServeConfig


def add(sub) -> None:
    p = sub.add_parser("serve", help="HTTP service and web page: upload videos, get annotated results")
    add_service_args(p)
    p.set_defaults(func=run)


# dfer live's service: no uploads, no jobs; these ServeConfig flags are all that apply to it
LIVE_FLAGS = ("data_dir", "host", "max_connections", "header_timeout", "max_frame", "access_log")


def add_service_args(p: argparse.ArgumentParser, *, live: bool = False) -> None:
    """The flags of a running service: the model, the port, the limits, the token (`live`: dfer live's)."""
    p.add_argument("--checkpoint", required=True, type=checkpoint_ref,
                   help="dfer checkpoint (.pt) or exported model; " + CHECKPOINT_HELP)
    p.add_argument("--port", type=number(int, 1, 65535), default=8000, help="TCP port to listen on (default 8000)")
    # the service's limits: one flag per ServeConfig field made with `flag`
    add_config_flags(p, ServeConfig, skip=(lambda path: path not in LIVE_FLAGS) if live else (lambda path: False))
    p.add_argument("--insecure", action="store_true",
                   help="listen on a non-loopback address without a token, or use a Ray cluster without token "
                        "authentication")
    p.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="a further Host name to accept (e.g. the public name a reverse proxy forwards); repeatable")
    p.add_argument("--token-file", metavar="FILE",
                   help="require 'Authorization: Bearer TOKEN' on the API, TOKEN read from FILE (chmod 600); "
                        "or set DFER_TOKEN")
    p.add_argument("--token", help="the token itself (visible in the process list: prefer --token-file or DFER_TOKEN)")
    p.add_argument("--threads", type=NONNEG_INT, default=0,
                   help="runtime threads per worker (0: all cores with one worker, else cores / workers)")
    p.add_argument("--backend", default="auto", choices=BACKENDS, help="as for dfer predict")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help="as for dfer predict")
    p.add_argument("--streams", type=NONNEG_INT, default=0, help=STREAMS_HELP)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    if live:  # one process reads the source: no engine to choose
        p.set_defaults(engine="local", ray_workers=0)
        return
    add_engine_args(p)  # --engine ray: jobs on Ray actors, one per --workers


def run(args: argparse.Namespace, **extra) -> int:
    """Start the service from the parsed flags; `extra`: further ServeConfig fields (dfer live's source)."""
    from dfer.serve import serve
    from dfer.serve.server import resolve_token

    limits = config_values(ServeConfig, args) | extra
    if args.engine == "ray" and args.ray_workers:
        limits["workers"] = args.ray_workers
    serve(args.checkpoint, port=args.port, token=resolve_token(args.token, args.token_file), backend=args.backend,
          device=args.device, precision=args.precision, streams=args.streams, threads=args.threads,
          insecure=args.insecure, allowed_hosts=tuple(args.allowed_host or ()), engine=args.engine,
          ray=ray_options(args), **limits)
    return 0
