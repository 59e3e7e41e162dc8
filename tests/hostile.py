"""Files an attacker would upload to `dfer serve`, built small in a temp dir."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def huge_png_mov(path: Path, side: int = 8192) -> Path:
    """A MOV holding one PNG frame of side x side pixels: a few tens of KB that decode to side^2 x 3 bytes."""
    with av.open(str(path), "w", format="mov") as out:
        stream = out.add_stream("png", rate=1)
        stream.width = stream.height = side
        stream.pix_fmt = "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((side, side, 3), np.uint8), format="rgb24")
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def lying_avi(path: Path, frames: int = 3000, claimed: int = 2, fps: int = 25, size: int = 32) -> Path:
    """An AVI of `frames` tiny MJPEG frames whose header claims `claimed` frames."""
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("mjpeg", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuvj420p"
        stream.time_base = Fraction(1, fps)
        img = np.full((size, size, 3), 128, np.uint8)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = bytearray(path.read_bytes())
    avih = data.find(b"avih")  # dwTotalFrames: the 5th DWORD of the main header
    struct.pack_into("<I", data, avih + 8 + 16, claimed)
    strh = data.find(b"strh")  # dwLength: the 9th DWORD after fccType/fccHandler in the stream header
    struct.pack_into("<I", data, strh + 8 + 32, claimed)
    idx = data.find(b"idx1")  # without the index the demuxer cannot shortcut; keep it but it still lists every frame
    assert idx > 0
    path.write_bytes(bytes(data))
    return path


def still_png(path: Path, side: int = 64) -> Path:
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("png", rate=1)
        stream.width = stream.height = side
        stream.pix_fmt = "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((side, side, 3), np.uint8), format="rgb24")):
            out.mux(packet)
    return path


def ffconcat(path: Path, target: Path) -> Path:
    """An ffconcat list that makes FFmpeg read another file (here `target`) from the server's disk."""
    path.write_text(f"ffconcat version 1.0\nfile '{target}'\n")
    return path


def size_switch(path: Path, sizes: list[tuple[int, int, int]], fps: int = 25, frames=None) -> Path:
    """An MJPEG video (AVI or MKV, by `path`'s suffix) whose frames change size: `sizes` is (count, width,
    height) runs; the header says the first run's size. `frames(i, w, h)` gives frame i's RGB (default: grey)."""
    import cv2

    fmt = "avi" if path.suffix == ".avi" else "matroska"
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream("mjpeg", rate=fps)
        stream.width, stream.height = sizes[0][1], sizes[0][2]
        stream.pix_fmt = "yuvj420p"
        stream.time_base = Fraction(1, fps)
        i = 0
        for count, w, h in sizes:
            for _ in range(count):
                rgb = frames(i, w, h) if frames else np.full((h, w, 3), 128, np.uint8)
                jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
                packet = av.Packet(jpeg)
                packet.stream = stream
                packet.pts = packet.dts = i
                packet.time_base = stream.time_base
                packet.is_keyframe = True
                out.mux(packet)
                i += 1
    return path
