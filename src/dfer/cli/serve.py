"""`dfer serve`: the HTTP service and its web page."""

from __future__ import annotations

import argparse

from dfer.cli.args import (
    CHECKPOINT_HELP,
    NONNEG_FLOAT,
    NONNEG_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    STREAMS_HELP,
    add_engine_args,
    byte_size,
    checkpoint_ref,
    defaults_of,
    frame_size,
    number,
    out_dir,
    ray_options,
)
from dfer.options import BACKENDS, PRECISIONS
from dfer.serve.config import ServeConfig

D = defaults_of(ServeConfig)


def add(sub) -> None:
    p = sub.add_parser("serve", help="HTTP service and web page: upload videos, get annotated results")
    p.add_argument("--checkpoint", required=True, type=checkpoint_ref,
                   help="dfer checkpoint (.pt) or exported model; " + CHECKPOINT_HELP)
    p.add_argument("--host", default=D["host"], help="address to listen on (default 127.0.0.1: this machine only; "
                                                        "another address needs --token, or --insecure)")
    p.add_argument("--insecure", action="store_true",
                   help="listen on a non-loopback address without a token, or use a Ray cluster without token "
                        "authentication")
    p.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="a further Host name to accept (e.g. the public name a reverse proxy forwards); repeatable")
    p.add_argument("--port", type=number(int, 1, 65535), default=8000)
    p.add_argument("--data-dir", type=out_dir, default="dfer-serve", help="job database, uploads and results")
    p.add_argument("--workers", type=POSITIVE_INT, default=D["workers"],
                   help="worker processes: videos processed at once, each worker with its own copy of the model")
    p.add_argument("--threads", type=NONNEG_INT, default=0,
                   help="runtime threads per worker (0: all cores with one worker, else cores / workers)")
    p.add_argument("--max-attempts", type=POSITIVE_INT, default=D["max_attempts"],
                   help="runs of a job whose worker died (crash, signal, out of memory) before it fails")
    p.add_argument("--job-timeout", type=NONNEG_FLOAT, default=D["job_timeout"],
                   help="seconds a job may run (0: 120 s + 20 s per second of video, 3x with explain)")
    p.add_argument("--worker-memory", type=byte_size, default=D["worker_memory"],
                   help="memory (RSS) a worker may use, e.g. 4G; over it the job fails (0: 80%% of RAM / workers)")
    p.add_argument("--keep-uploads", action="store_true", help="keep each upload after its job ends")
    p.add_argument("--retention", type=NONNEG_FLOAT, default=D["retention"] / 86400,
                   help="days a finished job's results are kept (0: forever)")
    p.add_argument("--min-free", type=byte_size, default=D["min_free"],
                   help="refuse uploads (507) while the disk has less free space (default 1G)")
    p.add_argument("--token-file", metavar="FILE",
                   help="require 'Authorization: Bearer TOKEN' on the API, TOKEN read from FILE (chmod 600); "
                        "or set DFER_TOKEN")
    p.add_argument("--token", help="the token itself (visible in the process list: prefer --token-file or DFER_TOKEN)")
    p.add_argument("--max-connections", type=NONNEG_INT, default=D["max_connections"],
                   help="open connections at once; more are answered 503 and closed (0: a quarter of the open-file "
                        "limit, at most 1024)")
    p.add_argument("--header-timeout", type=POSITIVE_FLOAT, default=D["header_timeout"],
                   help="seconds a connection may take to send its request line and headers (then 408, closed)")
    p.add_argument("--body-timeout", type=POSITIVE_FLOAT, default=D["body_timeout"],
                   help="seconds an upload may stall; it is dropped, and its partial file removed (408)")
    p.add_argument("--probe-memory", type=byte_size, default=D["probe_memory"],
                   help="address space of the process that checks an upload, e.g. 2G (0: no limit)")
    p.add_argument("--max-probes", type=NONNEG_INT, default=D["max_probes"],
                   help="uploads checked at once; more wait their turn (0: the number of cores)")
    p.add_argument("--max-upload-mb", type=POSITIVE_FLOAT, default=D["max_upload_mb"])
    p.add_argument("--max-duration", type=POSITIVE_FLOAT, default=D["max_duration"], help="seconds of video an upload may hold")
    p.add_argument("--max-frame", type=frame_size, default=D["max_frame"], help="largest frame WxH, either orientation")
    p.add_argument("--max-fps", type=POSITIVE_FLOAT, default=D["max_fps"], help="highest frame rate of an upload")
    p.add_argument("--max-queue", type=POSITIVE_INT, default=D["max_queue"], help="queued jobs before new ones are refused (503)")
    p.add_argument("--backend", default="auto", choices=BACKENDS, help="as for dfer predict")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help="as for dfer predict")
    p.add_argument("--streams", type=NONNEG_INT, default=0, help=STREAMS_HELP)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    add_engine_args(p)  # --engine ray: jobs on Ray actors, one per --workers
    p.add_argument("--shared-dir", type=out_dir,
                   help="--engine ray: a folder every node sees at the same path, for uploads and results "
                        "(default: they travel through Ray's object store)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dfer.serve import serve
    from dfer.serve.server import resolve_token

    serve(args.checkpoint, host=args.host, port=args.port, data_dir=args.data_dir,
          token=resolve_token(args.token, args.token_file), backend=args.backend, device=args.device,
          precision=args.precision, streams=args.streams, threads=args.threads, insecure=args.insecure,
          workers=args.ray_workers if args.engine == "ray" and args.ray_workers else args.workers,
          max_upload_mb=args.max_upload_mb, max_queue=args.max_queue,
          allowed_hosts=tuple(args.allowed_host or ()), max_duration=args.max_duration, max_frame=args.max_frame,
          max_fps=args.max_fps, max_attempts=args.max_attempts, job_timeout=args.job_timeout,
          worker_memory=args.worker_memory, keep_uploads=args.keep_uploads, retention=args.retention * 86400,
          min_free=args.min_free, engine=args.engine, ray=ray_options(args), shared_dir=args.shared_dir,
          max_connections=args.max_connections, header_timeout=args.header_timeout, body_timeout=args.body_timeout,
          probe_memory=args.probe_memory, max_probes=args.max_probes)
    return 0
