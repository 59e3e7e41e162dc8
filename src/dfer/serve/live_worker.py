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

import json
import os
import shutil
import signal
import struct
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dfer.data.frame import Frame
from dfer.data.video import FrameGuard, VideoWriter, open_source
from dfer.errors import VideoError
from dfer.inference.live import Mailbox, Stamped, run_live
from dfer.inference.predict import write_outputs
from dfer.inference.render import annotate_frame
from dfer.preprocess import SYNTHETIC_SHORT
from dfer.serve.disk import publish
from dfer.serve.probe import SECRET_ENV
from dfer.serve.spec import FRAME_HEADER, LiveSetup
from dfer.serve.worker import _die_with_parent, describe

DISPLAY_WIDTH = 640  # camera mode: frames go to the page at most this wide


def live_main(setup: LiveSetup, conn) -> None:
    """Entry point of a live worker process (spawned)."""
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
    head = json.dumps(msg).encode()
    with lock:
        conn.send_bytes(struct.pack("<I", len(head)) + head + payload)


def decode_frame(data: bytes, setup: LiveSetup):
    """(seq, capture time, Frame) of a message from the browser; ValueError naming what is wrong."""
    if len(data) <= FRAME_HEADER.size:
        raise ValueError("a frame message too short to hold a frame")
    if len(data) - FRAME_HEADER.size > setup.max_bytes:
        raise ValueError(f"a frame of {len(data) - FRAME_HEADER.size} bytes, over the limit of {setup.max_bytes} bytes")
    seq, t = FRAME_HEADER.unpack_from(data)
    jpeg = np.frombuffer(data, np.uint8, offset=FRAME_HEADER.size)
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
    wait, segment = 1.0, _next_segment(setup.save)
    if setup.save:  # what a crash left half-written is not a segment
        for partial in Path(setup.save).glob(".segment-*.partial"):
            shutil.rmtree(partial, ignore_errors=True)
    while True:
        try:
            _Segment(rec, setup, conn, lock, segment).run()
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


class _Segment:
    """One connection to the source: frames into the mailbox (a reader thread), each result with its frame
    as a JPEG to the viewers, and with a save folder the usual outputs written into
    `.segment-NNNN.partial/`, renamed to `segment-NNNN/` once complete (a crash leaves no half segment)."""

    def __init__(self, rec, setup: LiveSetup, conn, lock: threading.Lock, number: int) -> None:
        self.rec, self.conn, self.lock = rec, conn, lock
        self.src = open_source(setup.source, guard=FrameGuard(max_frame=setup.max_frame))
        self.mailbox, self.errors = Mailbox(), []
        save = Path(setup.save) if setup.save else None
        self.partial = save / f".segment-{number:04d}.partial" if save else None
        self.final = save / f"segment-{number:04d}" if save else None
        self.builder = rec.result_builder(self.src) if save else None
        self.writer: VideoWriter | None = None
        self.latest: dict[int, Any] = {}  # each track's latest window
        self.band = SYNTHETIC_SHORT if rec.model_info.get("warning") else ""

    def read(self) -> None:
        paced = self.src.kind in ("file", "folder")  # a file plays at its frame rate, as a camera delivers
        t0 = time.monotonic()
        try:
            for seq, frame in enumerate(self.src.decoded()):
                if paced:
                    time.sleep(max(0.0, t0 + seq / self.src.fps - time.monotonic()))
                self.mailbox.put(Stamped(seq, time.time() * 1000, frame))
        except BaseException as exc:  # noqa: BLE001 - raised again in the segment's thread (run)
            self.errors.append(exc)
        finally:
            self.mailbox.close()

    def emit(self, lf, frame: Frame) -> None:
        scale = min(1.0, DISPLAY_WIDTH / frame.width)
        rgb = frame.rgb()
        if scale < 1.0:
            rgb = cv2.resize(rgb, (round(frame.width * scale), round(frame.height * scale)), interpolation=cv2.INTER_AREA)
        jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 75])[1]
        _send(self.conn, self.lock, lf.to_dict(), jpeg.tobytes())
        if self.partial is not None:  # the annotated video as it goes (the frame is not used after this)
            if self.writer is None:
                self.writer = VideoWriter(self.partial / "annotated.mp4", self.src.fps, frame.width, frame.height)
            faces = [(f.track, f.box, self.latest[f.track].probs if f.track in self.latest else None, f.person, None)
                     for f in lf.faces]
            annotate_frame(frame, faces, self.rec.class_names, warning=self.band)
            self.writer.write(frame)

    def on_event(self, ev) -> None:
        if self.builder is not None:
            self.builder.add(ev)
        for w in ev.new_windows:
            self.latest[w.track_id] = w

    def run(self) -> None:
        threading.Thread(target=self.read, name="dfer-live-camera", daemon=True).start()
        try:
            run_live(self.rec, self.mailbox, self.src.fps, self.emit, idle=30.0, on_event=self.on_event)
        finally:
            if self.writer is not None:
                self.writer.close()
            if self.builder is not None and self.builder.result.num_frames:
                write_outputs(self.builder.finish(), self.partial)
                publish(self.partial, self.final)
        if self.errors:
            raise self.errors[0]


__all__ = ["decode_frame", "live_main"]
