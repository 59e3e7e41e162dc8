"""Write RGB frames to a real video file with PyAV (H.264 mp4, MPEG-4 avi, HEVC mov, FFV1 mkv)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

CODEC_BY_EXT = {".mp4": "libx264", ".avi": "mpeg4", ".mov": "libx265", ".mkv": "ffv1"}


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float = 25.0,
    codec: str | None = None,
    gray: bool = False,
    quality: int = 18,
) -> Path:
    """Encode RGB uint8 frames (H, W, 3); even sizes are needed by yuv420p codecs."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = codec or CODEC_BY_EXT.get(path.suffix.lower(), "libx264")
    frames = iter(frames)
    first = next(frames)
    h, w = first.shape[:2]
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height = w, h
        if gray:
            stream.pix_fmt = "gray"
        elif codec == "ffv1":
            stream.pix_fmt = "bgr0"
        else:
            stream.pix_fmt = "yuv420p"
        if codec in ("libx264", "libx265"):
            stream.options = {"crf": str(quality), "preset": "ultrafast"}
            if codec == "libx265":
                stream.options["x265-params"] = "log-level=error"
        elif codec == "mpeg4":
            stream.options = {"qscale": "3"}
        for img in _chain(first, frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _chain(first, rest):
    yield first
    yield from rest
