"""`ServeConfig`: everything `dfer serve` can be told, with its defaults (the CLI reads them from here)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from dfer.scale import RayOptions


@dataclass
class ServeConfig:
    data_dir: Path
    token: str | None = None
    max_upload_mb: float = 500.0
    max_queue: int = 32  # queued jobs beyond this are refused (503) until the workers catch up
    workers: int = 1  # worker processes, each with its own copy of the model
    max_attempts: int = 2  # runs of a job whose worker died before it fails
    job_timeout: float = 0.0  # seconds per job; 0: 120 s + 20 s per second of video (x3 with explain)
    worker_memory: int = 0  # bytes of RSS per worker; 0: 80% of RAM / workers
    keep_uploads: bool = False  # keep a finished job's upload (default: deleted when the job ends)
    retention: float = 7 * 86400.0  # seconds a finished job's results are kept; 0: forever
    min_free: int = 1 << 30  # uploads are refused (507) while the disk has less free space
    sweep_every: float = 600.0  # seconds between retention / orphan sweeps (also one at start-up)
    explain_checkpoint: Path | None = None  # the .pt that explain=true jobs run on PyTorch (None: not offered)
    probe_timeout: float = 60.0  # seconds the probe may take to decide that an upload is a video
    probe_memory: int = 2 << 30  # address space a probe process may map (bytes; 0: no limit)
    max_probes: int = 0  # probes running at once (0: the number of cores); further uploads wait their turn
    max_connections: int = 0  # open connections (0: a quarter of the open-file limit, at most 1024)
    header_timeout: float = 10.0  # seconds a connection may take to send its request line and headers
    body_timeout: float = 30.0  # seconds an upload may stall (no bytes) before it is dropped
    max_duration: float = 3600.0  # seconds of video an upload may hold
    max_frame: tuple[int, int] = (4096, 2160)  # largest frame, either orientation
    max_fps: float = 240.0
    probe_command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "dfer.serve.probe"])
    engine: str = "local"  # local: worker processes on this machine; ray: Ray actors (dfer.serve.ray_engine)
    ray: RayOptions | None = None  # where Ray runs and what each actor asks for (--engine ray)
    shared_dir: Path | None = None  # --engine ray: uploads and results in a folder every node sees
    host: str = "127.0.0.1"  # the address the server listens on: its Host names follow from it
    allowed_hosts: tuple[str, ...] = ()  # further Host names to accept (a reverse proxy's public name)
