"""What a worker needs to know to start: the model to open and where the service keeps its files.

Light on purpose (no torch, no runtimes): the API process builds these and never loads the model.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dfer.inference.recognizer import Recognizer


@dataclass(frozen=True)
class ModelSpec:
    """How each worker opens the model (a dfer checkpoint or an exported model), as for `dfer predict`."""

    checkpoint: Path
    backend: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    streams: int = 0
    threads: int = 0  # per worker; 0: the runtime's default

    def load(self) -> Recognizer:
        from dfer.inference.recognizer import Recognizer  # heavy: only where the model runs (a worker)

        return Recognizer.from_checkpoint(self.checkpoint, device=self.device, backend=self.backend,
                                          precision=self.precision, streams=self.streams, threads=self.threads)


@dataclass(frozen=True)
class WorkerSetup:
    model: ModelSpec
    data_dir: Path
    keep_uploads: bool = False
    explain_checkpoint: Path | None = None  # the .pt that explain=true jobs run on PyTorch
    parent_pid: int = 0  # the server: the worker ends when it does
    database: Path | None = None  # the job database when it is not DATA/jobs.sqlite (a --shared-dir service)
    max_frame: tuple[int, int] | None = None  # every decoded frame of an upload is checked against it (--max-frame)


FRAME_HEADER = struct.Struct("<Id")  # a live frame's sequence number and capture time (ms, the client's clock)


@dataclass(frozen=True)
class LiveSetup:
    """What a live worker needs: the model, the frame rate the client sends at, the bounds, where to save."""

    model: ModelSpec
    fps: float
    max_frame: tuple[int, int]
    max_bytes: int  # largest JPEG a client may send
    source: str = ""  # a camera index or stream URL the worker reads itself ("": frames come through the pipe)
    save: str = ""  # browser mode: the video file to write; camera mode: the folder of segments
    idle: float = 10.0  # seconds without a frame before the session ends
    parent_pid: int = 0
