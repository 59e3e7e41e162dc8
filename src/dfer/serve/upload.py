"""Receiving an upload: the multipart form streamed to disk under its size limit, its parameters checked
against their bounds, the probe's answer checked against the service's limits, free space checked."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from dfer.serve.config import ServeConfig
from dfer.serve.disk import DataDir, human_bytes


class ApiError(Exception):
    """An answer other than success: its status, one sentence, and headers (Retry-After...)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.message = message


# Bounds that keep a worker's memory flat for every accepted combination: a face's crop buffer holds
# one window (<= 10 s x fps crops of 128x128x3: 118 MB per face at 240 fps), the tracker at most
# (max_missed + 1) x detect_every frames (<= 90), the annotator at most 512 MB of frames; the stride
# changes how often windows are scored, not what is held.
PARAMS = {"stride": (int, 1, 100_000), "window": (float, 0.1, 10.0), "detect_every": (int, 1, 30),
          "min_confidence": (float, 0.0, 1.0)}
FLAGS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


async def _limited(request: Request, max_bytes: int) -> AsyncGenerator[bytes, None]:
    """The request body, refused (413) as soon as it passes the limit: never held whole in memory."""
    n = 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > max_bytes:
            raise ApiError(413, f"upload larger than the limit of {max_bytes / 2**20:.0f} MB")
        yield chunk


async def receive(request: Request, tmp: Path, max_bytes: int) -> tuple[str, dict[str, Any], Path]:
    """Parse the multipart form (files spool to disk); returns (client file name, params, temp path)."""
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + 64 * 1024:
        raise ApiError(413, f"upload larger than the limit of {max_bytes / 2**20:.0f} MB")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "send the video as multipart/form-data with a file field named 'video'")
    try:
        form = await MultiPartParser(request.headers, _limited(request, max_bytes), max_files=1, max_fields=10).parse()
    except MultiPartException as exc:
        raise ApiError(400, f"malformed multipart form: {exc.message}") from None
    video = form.get("video")
    if not isinstance(video, UploadFile):
        raise ApiError(400, "no file field named 'video' in the form")
    unknown = sorted(set(form.keys()) - {"video", "explain", *PARAMS})
    if unknown:
        raise ApiError(400, f"unknown form field {unknown[0]!r}; the fields are video, {', '.join(PARAMS)}, explain")
    params = {}
    for key, (kind, lo, hi) in PARAMS.items():
        raw = form.get(key)
        if raw is None:
            continue
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise ApiError(400, f"{key} must be a number, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ApiError(400, f"{key} must be between {lo} and {hi}, got {raw}")
        params[key] = value
    raw = form.get("explain")
    if raw is not None:
        if str(raw).strip().lower() not in FLAGS:
            raise ApiError(400, f"explain must be true or false, got {raw!r}")
        params["explain"] = FLAGS[str(raw).strip().lower()]
    with tmp.open("wb") as out:
        await video.seek(0)
        while block := await video.read(1 << 20):
            await run_in_threadpool(out.write, block)  # disk writes off the event loop
    await video.close()
    if tmp.stat().st_size == 0:
        tmp.unlink()
        raise ApiError(415, f"{display_name(video.filename)}: the upload is empty (0 bytes)")
    return display_name(video.filename), params, tmp


def display_name(name: str | None) -> str:
    """The client's file name, for display only: the last path part, printable, at most 120 chars."""
    base = (name or "video").replace("\\", "/").split("/")[-1]
    return "".join(c for c in base if c.isprintable())[:120] or "video"


def over_limit(info: dict[str, Any], config: ServeConfig) -> str | None:
    """Which limit a probed upload is over (duration, frame size, frame rate), named with its option."""
    fps, frames = float(info.get("fps") or 0.0), int(info.get("frames") or 0)
    w, h = int(info.get("width") or 0), int(info.get("height") or 0)
    long_side, short_side = max(config.max_frame), min(config.max_frame)
    if fps > config.max_fps:
        return f"{fps:g} frames per second is over the limit of {config.max_fps:g} (--max-fps)"
    if max(w, h) > long_side or min(w, h) > short_side:
        return f"frames of {w}x{h} are over the limit of {long_side}x{short_side} (--max-frame)"
    if fps > 0 and frames / fps > config.max_duration:
        return f"{frames / fps:.1f} s of video is over the limit of {config.max_duration:g} s (--max-duration)"
    return None


def check_free_space(disk: DataDir, min_free: int) -> None:
    free = disk.free_bytes()
    if free < min_free:
        raise ApiError(507, f"the server has {human_bytes(free)} of free disk space, under its minimum of "
                            f"{human_bytes(min_free)} (--min-free); try again later", headers={"Retry-After": "60"})
