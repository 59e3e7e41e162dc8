"""Deciding whether an upload is a video, in a separate process with a deadline.

FFmpeg parses what strangers send; some files make a demuxer read for a long time (mkv / webm / ts
without a frame count are demuxed whole). The probe runs as `python -m dfer.serve.probe FILE` with a
timeout, so a file that hangs the decoder fails its upload while the API keeps answering, and a
crash in native code kills only the probe. `ServeConfig.probe_command` can put a sandbox wrapper
in front of it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path


class ProbeError(Exception):
    """The upload is not a readable video (or could not be probed in time): the reason, without paths."""


async def probe_upload(path: Path, command: list[str], timeout: float) -> dict:
    """{"frames", "width", "height", "fps"} of a video file, or ProbeError."""
    proc = await asyncio.create_subprocess_exec(*command, str(path), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL)
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
    if proc.returncode != 0 or "error" in info or "frames" not in info:
        raise ProbeError(info.get("error") or f"the probe failed (exit {proc.returncode})")
    return info


def main(argv: list[str] | None = None) -> int:
    from dfer.data.video import open_source
    from dfer.errors import DferError

    path = Path((argv or sys.argv[1:])[0])
    try:
        src = open_source(path)
        first = next(iter(src.frames()), None)
    except DferError as exc:
        reason = str(exc).replace(str(path), path.name).split(": ", 1)[-1]
        print(json.dumps({"error": reason}))
        return 1
    if first is None:
        print(json.dumps({"error": "no frame could be decoded"}))
        return 1
    print(json.dumps({"frames": int(src.num_frames or 0), "width": src.width, "height": src.height, "fps": src.fps}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
