"""Deciding whether an upload is a video the service will run, in a separate, bounded process.

FFmpeg parses what strangers send. The probe runs as `python -m dfer.serve.probe FILE LIMITS` with:
- a deadline (some files make a demuxer read for a long time), an address-space limit (a decoder
  that allocates wildly fails there, not in the API) and a limit on probes running at once;
- an environment without the service's secrets (DFER_TOKEN and the like);
- an allow-list of containers (ALLOWED_FORMATS: the demuxers of ordinary video files; no image
  sequences, playlists, concat lists or network protocols) opened with `protocol_whitelist=file`;
- the frame size and rate read from the container header and checked against the service's limits
  before any frame is decoded (a tiny file can declare an 8192x8192 frame), and decoders told the
  largest frame they may allocate (`max_pixels`);
- the frames counted from the container's packets (without decoding), so a header that says
  2 frames cannot queue 3,000 (the worker stops at the counted length too);
- then one frame decoded, to know that the video decodes at all.
A crash in native code kills only the probe. `ServeConfig.probe_command` can put a sandbox wrapper
in front of it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

# FFmpeg demuxer names (container.format.name) of the containers an upload may be.
ALLOWED_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "mpegts", "mpeg", "flv", "asf", "ogg"})
ALLOWED_LIST = "MP4/MOV, MKV/WebM, AVI, MPEG-TS, MPEG-PS, FLV, ASF/WMV, Ogg"
SECRET_ENV = ("DFER_TOKEN", "RAY_AUTH_TOKEN", "HF_TOKEN")  # never handed to a process that parses uploads


class ProbeError(Exception):
    """The upload is not a readable video (or could not be probed in time): the reason, without paths."""


class OverLimit(ProbeError):
    """A readable video over one of the service's limits (413)."""


@dataclass(frozen=True)
class Limits:
    max_frame: tuple[int, int] = (4096, 2160)  # largest frame, either orientation
    max_fps: float = 240.0
    max_duration: float = 3600.0  # seconds

    def args(self) -> list[str]:
        return ["--limits", json.dumps(asdict(self))]


def over_limit(fps: float, frames: int, width: int, height: int, limits: Limits) -> str | None:
    """Which limit a video is over (frame size, frame rate, duration), named with its option."""
    long_side, short_side = max(limits.max_frame), min(limits.max_frame)
    if fps > limits.max_fps:
        return f"{fps:g} frames per second is over the limit of {limits.max_fps:g} (--max-fps)"
    if max(width, height) > long_side or min(width, height) > short_side:
        return f"frames of {width}x{height} are over the limit of {long_side}x{short_side} (--max-frame)"
    if fps > 0 and frames / fps > limits.max_duration:
        return f"{frames / fps:.1f} s of video is over the limit of {limits.max_duration:g} s (--max-duration)"
    return None


def child_env() -> dict[str, str]:
    """This process's environment less the secrets: what processes that parse uploads get."""
    return {k: v for k, v in os.environ.items() if k not in SECRET_ENV}


async def probe_upload(path: Path, command: list[str], timeout: float, limits: Limits, *,
                       memory: int = 0, slots: asyncio.Semaphore | None = None) -> dict:
    """{"frames", "width", "height", "fps", "format", "streams"} of a video file; OverLimit (413) or
    ProbeError (415) otherwise. `memory`: the probe's address-space limit in bytes (0: none);
    `slots`: the probes allowed at once (a caller beyond them waits)."""
    if slots is None:
        return await _run(path, command, timeout, limits, memory)
    async with slots:
        return await _run(path, command, timeout, limits, memory)


async def _run(path: Path, command: list[str], timeout: float, limits: Limits, memory: int) -> dict:
    def bounded() -> None:  # in the child, before exec
        if memory > 0:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    proc = await asyncio.create_subprocess_exec(*command, str(path), *limits.args(), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL, env=child_env(),
                                                preexec_fn=bounded)  # noqa: PLW1509 - only setrlimit, no locks
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise ProbeError(f"could not be read within {timeout:g} s (the decoder did not finish)") from None
    try:
        info = json.loads(out.decode() or "{}")
    except ValueError:
        info = {}
    if "limit" in info:
        raise OverLimit(info["limit"])
    if proc.returncode != 0 or "error" in info or "frames" not in info:
        reason = info.get("error") or (f"the probe failed (exit {proc.returncode}"
                                       + (", out of memory?)" if memory and proc.returncode else ")"))
        raise ProbeError(reason)
    return info


# -- in the probe process ----------------------------------------------------------------------
def inspect(path: Path, limits: Limits) -> dict:
    """What main() prints: the header's facts and the counted frames, or {"error"} / {"limit"}."""
    import av

    # Decoders refuse frames over the limit's area instead of allocating them (FFmpeg's max_pixels): a
    # header without the frame size makes FFmpeg decode a frame to learn it, and that frame may be huge.
    guard = {"container_options": {"protocol_whitelist": "file"},
             "stream_options": [{"max_pixels": str(limits.max_frame[0] * limits.max_frame[1])}]}
    try:
        container = av.open(str(path), **guard)
    except Exception as exc:  # noqa: BLE001 - FFmpeg's error types vary; the reason is what matters
        return {"error": f"not a readable video ({exc.__class__.__name__})"}
    try:
        fmt = container.format.name
        if fmt not in ALLOWED_FORMATS:
            return {"error": f"a {fmt!r} file is not accepted; the service takes {ALLOWED_LIST}"}
        if not container.streams.video:
            return {"error": "contains no video stream"}
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        if width <= 0 or height <= 0:  # the decoder refused to allocate a frame over the limit's area
            return {"limit": f"frames over the limit of {max(limits.max_frame)}x{min(limits.max_frame)} (--max-frame), "
                             "or a frame size the container does not give"}
        head = {"fps": fps, "width": width, "height": height, "format": fmt,
                "streams": sorted({s.type for s in container.streams})}
        limit = over_limit(fps, 0, width, height, limits)  # size and rate before anything is decoded
        if limit:
            return {"limit": limit}
        frames = _count_packets(container, stream, fps, limits)
        if isinstance(frames, str):
            return {"limit": frames}
    finally:
        container.close()
    if frames == 0:
        return {"error": "no video frame in the file"}
    try:
        with av.open(str(path), **guard) as again:
            next(again.decode(video=0))
    except StopIteration:
        return {"error": "no frame could be decoded"}
    except Exception as exc:  # noqa: BLE001
        return {"error": f"cannot decode a frame ({exc.__class__.__name__})"}
    return {**head, "frames": frames}


def _count_packets(container, stream, fps: float, limits: Limits) -> int | str:
    """Video packets (= frames) from demuxing alone, stopped once past --max-duration (the reason)."""
    cap = int(limits.max_duration * fps) if fps > 0 else None
    n = 0
    for packet in container.demux(stream):
        if packet.size:
            n += 1
            if cap is not None and n > cap:
                seconds = f"{limits.max_duration:g} s"
                return f"more than {seconds} of video: over the limit of {seconds} (--max-duration)"
    return n


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    path = Path(argv[0])
    limits = Limits()
    if "--limits" in argv:
        raw = json.loads(argv[argv.index("--limits") + 1])
        limits = Limits(max_frame=tuple(raw["max_frame"]), max_fps=float(raw["max_fps"]),
                        max_duration=float(raw["max_duration"]))
    info = inspect(path, limits)
    print(json.dumps(info))
    return 0 if "frames" in info else 1


if __name__ == "__main__":
    sys.exit(main())
