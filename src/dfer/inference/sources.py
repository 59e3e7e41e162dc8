"""Frame sources for inference: video files and frame folders (PyAV), webcams (OpenCV) and stream URLs (PyAV).

`open_source(spec)` returns a `FrameSource`: its rate, size and (when known) frame count, and an
iterator of RGB uint8 frames. Failures raise `VideoError` naming the source and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from dfer.data.video import DEFAULT_FOLDER_FPS, iter_frames, probe
from dfer.errors import VideoError

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass
class FrameSource:
    name: str  # what the user passed
    kind: str  # file | folder | webcam | stream
    fps: float
    width: int
    height: int
    num_frames: int | None  # None for live sources
    _frames: Callable[[], Iterator[np.ndarray]]

    @property
    def live(self) -> bool:
        return self.kind in ("webcam", "stream")

    @property
    def stem(self) -> str:
        if self.kind == "webcam":
            return f"webcam{self.name}"
        if self.kind == "stream":
            return re.sub(r"[^A-Za-z0-9._-]+", "_", self.name.split("://", 1)[-1]).strip("_")[:60] or "stream"
        return Path(self.name).stem or Path(self.name).name

    def frames(self) -> Iterator[np.ndarray]:
        return self._frames()


def is_webcam(spec: str | int) -> bool:
    return isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit())


def open_source(spec: str | int | Path, *, folder_fps: float = DEFAULT_FOLDER_FPS) -> FrameSource:
    if is_webcam(spec):
        return _webcam(int(spec))
    text = str(spec)
    if _URL.match(text) and not text.startswith("file://"):
        return _stream(text)
    path = Path(text[7:] if text.startswith("file://") else text)
    info = probe(path, folder_fps=folder_fps)  # raises VideoError for missing / empty / unreadable input
    kind = "folder" if path.is_dir() else "file"
    return FrameSource(str(path), kind, info.fps or folder_fps, info.width, info.height, info.num_frames,
                       lambda: iter_frames(path))


def _webcam(index: int) -> FrameSource:
    import cv2

    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        raise VideoError(f"webcam {index}: cannot be opened (no camera at this index, or no permission)")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()

    return FrameSource(str(index), "webcam", float(fps), w, h, None, frames)


def _stream(url: str) -> FrameSource:
    import av

    try:
        container = av.open(url, timeout=(10.0, 10.0), options={"rtsp_transport": "tcp"} if url.startswith("rtsp") else {})
    except Exception as exc:
        raise VideoError(f"{url}: cannot open the stream ({exc.__class__.__name__}: {exc})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{url}: the stream has no video")
    stream = container.streams.video[0]
    fps = float(stream.average_rate or stream.guessed_rate or 25.0)

    def frames() -> Iterator[np.ndarray]:
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except Exception as exc:
            raise VideoError(f"{url}: stream broke off ({exc.__class__.__name__}: {exc})") from None
        finally:
            container.close()

    return FrameSource(url, "stream", fps, stream.width, stream.height, None, frames)
