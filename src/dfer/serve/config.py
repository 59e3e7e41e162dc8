"""`ServeConfig`: everything `dfer serve` can be told, with its defaults. A field made with `flag` is also
`dfer serve`'s flag of that name (dfer.cli.args.add_config_flags): its type, default and help live here only."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from dfer.options import flag
from dfer.scale import RayOptions


@dataclass
class ServeConfig:
    data_dir: Path = flag(Path("dfer-serve"), kind="dir", help="job database, uploads and results")
    token: str | None = None
    host: str = flag("127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; another address "
                                       "needs --token, or --insecure)")
    workers: int = flag(1, kind="positive_int", help="worker processes: videos processed at once, each worker with its "
                                                    "own copy of the model")
    max_attempts: int = flag(2, kind="positive_int", help="runs of a job whose worker died (crash, signal, out of "
                                                         "memory) before it fails")
    job_timeout: float = flag(0.0, kind="nonneg_float", help="seconds a job may run (0: 120 s + 20 s per second of "
                                                            "video, 3x with explain)")
    worker_memory: int = flag(0, kind="bytes", help="memory (RSS) a worker may use, e.g. 4G; over it the job fails "
                                                   "(0: 80% of RAM / workers)")
    keep_uploads: bool = flag(False, kind="switch", help="keep each upload after its job ends")
    retention: float = flag(7 * 86400.0, kind="nonneg_float", unit=86400.0,
                            help="days a finished job's results are kept (0: forever)")
    min_free: int = flag(1 << 30, kind="bytes", help="refuse uploads (507) while the disk has less free space "
                                                    "(default 1G)")
    sweep_every: float = 600.0  # seconds between retention / orphan sweeps (also one at start-up)
    explain_checkpoint: Path | None = None  # the .pt that explain=true jobs run on PyTorch (None: not offered)
    probe_timeout: float = 60.0  # seconds the probe may take to decide that an upload is a video
    max_connections: int = flag(0, kind="nonneg_int", help="open connections at once; more are answered 503 and closed "
                                                          "(0: a quarter of the open-file limit, at most 1024)")
    header_timeout: float = flag(10.0, kind="positive_float", help="seconds a connection may take to send its request "
                                                                  "line and headers (then 408, closed)")
    body_timeout: float = flag(30.0, kind="positive_float", help="seconds an upload may stall; it is dropped, and its "
                                                                "partial file removed (408)")
    probe_memory: int = flag(2 << 30, kind="bytes", help="address space of the process that checks an upload, e.g. 2G "
                                                        "(0: no limit)")
    max_probes: int = flag(0, kind="nonneg_int", help="uploads checked at once; more wait their turn (0: the number "
                                                     "of cores)")
    max_upload_mb: float = flag(500.0, kind="positive_float", help="largest upload, in MB")
    max_duration: float = flag(3600.0, kind="positive_float", help="seconds of video an upload may hold")
    max_frame: tuple[int, int] = flag((4096, 2160), kind="frame", help="largest frame WxH, either orientation")
    max_fps: float = flag(240.0, kind="positive_float", help="highest frame rate of an upload")
    max_queue: int = flag(32, kind="positive_int", help="queued jobs before new ones are refused (503)")
    probe_command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "dfer.serve.probe"])
    engine: str = "local"  # local: worker processes on this machine; ray: Ray actors (dfer.serve.ray_engine)
    ray: RayOptions | None = None  # where Ray runs and what each actor asks for (--engine ray)
    shared_dir: Path | None = flag(None, kind="dir", help="--engine ray: a folder every node sees at the same path, "
                                                         "for uploads and results (default: they travel through "
                                                         "Ray's object store)")
    access_log: bool = flag(False, kind="switch", help="one JSON line per request on stderr (off: only job events "
                                                       "and problems are logged)")
    allowed_hosts: tuple[str, ...] = ()  # further Host names to accept (a reverse proxy's public name)
    live_sessions: int = flag(1, kind="nonneg_int", help="live camera sessions from browsers at once, each a process "
                                                        "with its own copy of the model (0: no live view)")
    live_max_frame: tuple[int, int] = flag((1280, 720), kind="frame", help="largest frame a browser may send live, "
                                                                          "WxH, either orientation")
    live_source: str = ""  # dfer live: the camera index or stream URL the server reads for every viewer
    live_save: Path | None = None  # dfer live --save: the folder of saved segments
