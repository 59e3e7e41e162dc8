"""A live session's worker process: the model loaded once, the streaming recogniser on frames as they come
(dfer.inference.live), and each frame's result sent back as soon as it is known. Like a job's worker, it
holds none of the service's secrets, dies with the server, and is the only process that parses what a
client sends (JPEG frames) or decodes what a camera sends.

Two sources:
- the browser's camera (`dfer serve`'s Live view): frames arrive through the pipe as
  `seq (uint32) | capture time (float64 ms) | JPEG`, each checked (bytes, frame size) before it is used;
  with `save`, the frames the recogniser took are written to a video that becomes a job when the session
  ends;
- a camera or stream the server reads itself (`dfer live --source`): frames are read here, with
  reconnects (back-off 1, 2, 4 ... 30 s) when the stream drops, said to the viewers; each result goes out
  with the frame itself as a JPEG (for the page to draw), and with a `save` folder the usual outputs are
  written as it goes, one segment per connection (a crash loses at most the segment under way).
Messages to the API process are dicts: {"type": "ready" | "frame" | "status" | "error" | "end", ...}.
"""

from __future__ import annotations

import os
import signal
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

HEADER = struct.Struct("<Id")  # sequence number, capture time (ms, the client's clock)
DISPLAY_WIDTH = 640  # camera mode: frames go to the page at most this wide


@dataclass(frozen=True)
class LiveSetup:
    """What a live worker needs: the model, the frame rate the client sends at, the bounds, where to save."""

    model: Any  # dfer.serve.spec.ModelSpec
    fps: float
    max_frame: tuple[int, int]
    max_bytes: int  # largest JPEG a client may send
    source: str = ""  # a camera index or stream URL the worker reads itself ("" : frames come through the pipe)
    save: str = ""  # browser mode: the video file to write; camera mode: the folder of segments
    idle: float = 10.0  # seconds without a frame before the session ends
    parent_pid: int = 0


def live_main(setup: LiveSetup, conn) -> None:
    """Entry point of a live worker process (spawned)."""
    from dfer.serve.probe import SECRET_ENV
    from dfer.serve.worker import _die_with_parent, describe

    _die_with_parent(setup.parent_pid)
    os.umask(0o077)
    for name in SECRET_ENV:
        os.environ.pop(name, None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lock = threading.Lock()
    try:
        rec = setup.model.load()
    except Exception as exc:  # noqa: BLE001 - told to the API process, which tells the page
        _send(conn, lock, {"type": "error", "message": f"the model could not be loaded: {exc}"})
        return
    _send(conn, lock, {"type": "ready", "model": describe(rec)})
    try:
        if setup.source:
            _camera(rec, setup, conn, lock)
        else:
            _browser(rec, setup, conn, lock)
    except (BrokenPipeError, EOFError, OSError):
        return  # the API process went away


def _send(conn, lock: threading.Lock, msg: dict[str, Any], payload: bytes = b"") -> None:
    """One message to the API process: 4-byte length, JSON, then the frame's JPEG (camera mode) if any."""
    import json

    head = json.dumps(msg).encode()
    with lock:
        conn.send_bytes(struct.pack("<I", len(head)) + head + payload)


def decode_frame(data: bytes, setup: LiveSetup):
    """(seq, capture time, Frame) of a message from the browser; ValueError naming what is wrong."""
    from dfer.data.frame import Frame

    if len(data) <= HEADER.size:
        raise ValueError("a frame message too short to hold a frame")
    if len(data) - HEADER.size > setup.max_bytes:
        raise ValueError(f"a frame of {len(data) - HEADER.size} bytes, over the limit of {setup.max_bytes} bytes")
    seq, t = HEADER.unpack_from(data)
    jpeg = np.frombuffer(data, np.uint8, offset=HEADER.size)
    # the size from the JPEG header first: an oversized frame is refused before it is decoded
    head = cv2.imdecode(jpeg, cv2.IMREAD_REDUCED_GRAYSCALE_8)
    if head is None:
        raise ValueError("a frame that is not a JPEG image")
    w, h = head.shape[1] * 8, head.shape[0] * 8
    long_side, short_side = max(setup.max_frame), min(setup.max_frame)
    if max(w, h) > long_side + 8 or min(w, h) > short_side + 8:
        raise ValueError(f"a frame of about {w}x{h}, over the limit of {long_side}x{short_side} (--max-frame)")
    bgr = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("a frame that is not a JPEG image")
    if max(bgr.shape[:2]) > long_side or min(bgr.shape[:2]) > short_side:
        raise ValueError(f"a frame of {bgr.shape[1]}x{bgr.shape[0]}, over the limit of {long_side}x{short_side} "
                         "(--max-frame)")
    return seq, t, Frame.from_rgb(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _browser(rec, setup: LiveSetup, conn, lock: threading.Lock) -> None:
    """Frames from the pipe into the mailbox (a reader thread: it always drains the pipe, so the API
    process never blocks on it), the recogniser on the mailbox, results back. With `save`, every frame
    received is written (by the reader: the video has the client's frame rate, whatever the model skips)."""
    from dfer.data.video import VideoWriter
    from dfer.inference.live import Mailbox, Stamped, run_live

    mailbox = Mailbox()
    failure: list[str] = []
    writer: list = []

    def save(frame) -> None:
        if not writer:  # a later frame of another size is scaled to the first's
            writer.append(VideoWriter(setup.save, setup.fps, frame.width, frame.height))
        writer[0].write(frame)

    def read() -> None:
        try:
            while True:
                data = conn.recv_bytes()
                if not data:  # the session's end
                    break
                try:
                    seq, t, frame = decode_frame(data, setup)
                    if setup.save:
                        save(frame)
                except ValueError as exc:
                    failure.append(str(exc))
                    break
                mailbox.put(Stamped(seq, t, frame))
        except (EOFError, OSError):
            pass
        finally:
            mailbox.close()

    reader = threading.Thread(target=read, name="dfer-live-read", daemon=True)
    reader.start()
    try:
        run_live(rec, mailbox, setup.fps, lambda lf, frame: _send(conn, lock, lf.to_dict()), idle=setup.idle)
    finally:
        mailbox.close()
        reader.join(5)  # the reader may be writing the last frame
        if writer:
            writer[0].close()
        end = {"type": "end", "received": mailbox.received, "dropped": mailbox.dropped,
               "saved_frames": writer[0].frames if writer else 0}  # no path: the API process knows it
        if failure:
            _send(conn, lock, {"type": "error", "message": failure[0]})
        _send(conn, lock, end)


def _camera(rec, setup: LiveSetup, conn, lock: threading.Lock) -> None:
    """A camera or stream read here, segment after segment: a drop ends the segment (its outputs written)
    and the stream is opened again after a back-off."""
    from dfer.errors import VideoError

    wait, segment = 1.0, _next_segment(setup.save)
    while True:
        try:
            _camera_segment(rec, setup, conn, lock, segment)
            message = "the stream ended"
        except VideoError as exc:
            message = str(exc)
        _send(conn, lock, {"type": "status", "message": f"{message}; reconnecting in {wait:g} s"})
        time.sleep(wait)
        wait = min(30.0, wait * 2)
        segment += 1


def _next_segment(folder: str) -> int:
    """The number the next segment takes: after those already in the save folder (a restart goes on)."""
    if not folder or not Path(folder).is_dir():
        return 1
    done = [int(p.name.split("-")[1]) for p in Path(folder).glob("segment-*") if p.name.split("-")[1].isdigit()]
    return max(done, default=0) + 1


def _camera_segment(rec, setup: LiveSetup, conn, lock: threading.Lock, segment: int) -> None:
    """One connection to the source: frames into the mailbox, results (with the frame as a JPEG) to the
    viewers, and with a save folder the usual outputs of the segment written when it ends."""
    from dfer.data.video import FrameGuard, VideoWriter, open_source
    from dfer.inference.live import Mailbox, Stamped, run_live
    from dfer.inference.predict import write_outputs
    from dfer.inference.render import annotate_frame

    src = open_source(setup.source, guard=FrameGuard(max_frame=setup.max_frame))
    mailbox = Mailbox()
    errors: list[BaseException] = []

    paced = src.kind in ("file", "folder")  # a file plays at its frame rate, as a camera would deliver it
    t0 = time.monotonic()

    def read() -> None:
        try:
            for seq, frame in enumerate(src.decoded()):
                if paced:
                    time.sleep(max(0.0, t0 + seq / src.fps - time.monotonic()))
                mailbox.put(Stamped(seq, time.time() * 1000, frame))
        except BaseException as exc:  # noqa: BLE001 - raised again in the segment's thread below
            errors.append(exc)
        finally:
            mailbox.close()

    threading.Thread(target=read, name="dfer-live-camera", daemon=True).start()
    folder = Path(setup.save) / f"segment-{segment:04d}" if setup.save else None
    builder = rec.result_builder(src) if folder else None
    writer: list = []
    latest: dict[int, Any] = {}

    def emit(lf, frame) -> None:
        scale = min(1.0, DISPLAY_WIDTH / frame.width)
        rgb = frame.rgb()
        small = rgb if scale == 1.0 else cv2.resize(rgb, (round(frame.width * scale), round(frame.height * scale)),
                                                   interpolation=cv2.INTER_AREA)
        jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 75])[1].tobytes()
        _send(conn, lock, lf.to_dict(), jpeg)
        if folder is not None:
            if not writer:
                writer.append(VideoWriter(folder / "annotated.mp4", src.fps, frame.width, frame.height))
            faces = [(f.track, f.box, None if latest.get(f.track) is None else latest[f.track].probs, f.person, None)
                     for f in lf.faces]
            annotate_frame(frame, faces, rec.class_names)
            writer[0].write(frame)

    def on_event(ev) -> None:
        if builder is not None:
            builder.add(ev)
        for w in ev.new_windows:
            latest[w.track_id] = w

    try:
        run_live(rec, mailbox, src.fps, emit, idle=30.0, on_event=on_event)
    finally:
        if writer:
            writer[0].close()
        if builder is not None and builder.result.num_frames:
            write_outputs(builder.finish(), folder)
    if errors:
        raise errors[0]


__all__ = ["HEADER", "LiveSetup", "decode_frame", "live_main"]
