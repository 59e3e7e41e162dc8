"""Live sessions in the API process: tickets, the WebSocket, and relaying between a client and its live
worker (dfer.serve.live_worker), which alone decodes frames and runs the model.

    POST /v1/live      (the token, same origin) -> {"ticket", "expires_in", "mode", limits}: a ticket
                       good for one WebSocket within 30 s (a browser cannot put a token on a WebSocket)
    GET  /v1/live      the mode ("browser": the page's camera; "camera": a source the server reads),
                       sessions open and the limits
    WS   /v1/live/ws   first message {"ticket", "fps", "save"}; then the client sends binary frames
                       (`seq uint32 | capture ms float64 | JPEG`, little-endian) and gets a JSON text
                       message per processed frame; {"type": "stop"} ends the session.

A WebSocket is refused (403 before it opens) when its Host is not this server's or its Origin is another
site's; it is closed with a reason when its first message is not a valid, unused, unexpired ticket, when a
frame is over the limits (bytes here, pixels in the worker), or when the server has --live-sessions
sessions open already. Memory stays bounded whatever the client does: a frame that arrives while the
previous one is still being handed to the worker is dropped, and results wait for a client that does not
read in a queue of a few, the oldest frame results dropped first. A session ends when the client stops or
leaves, or after IDLE_S seconds without a frame; its worker is then stopped (killed if it does not stop).
With `save`, the frames the worker received become a job (the usual outputs) when the session ends.

In camera mode (`dfer live --source`), one worker reads the source for every viewer, and is started again
when it dies; each viewer gets the frames (JPEG) with their results.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import secrets
import struct
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from dfer.serve.disk import DataDir
from dfer.serve.jobs import JobStore
from dfer.serve.params import QueuedParams
from dfer.serve.security import Policy, host_of
from dfer.serve.spec import FRAME_HEADER, LiveSetup, ModelSpec

TICKET_TTL_S = 30.0
MAX_TICKETS = 64  # unused tickets held at once (each a few bytes; the oldest go first)
MAX_FRAME_BYTES = 2 << 20  # a browser frame's JPEG: a 1280x720 frame at quality 100 is about 0.5 MB
IDLE_S = 10.0  # a session without a frame for this long ends
FIRST_MESSAGE_S = 10.0  # seconds a new WebSocket has to send its ticket
KEEP_RESULTS = 4  # frame results waiting for a slow client (older ones are dropped)
STOP_GRACE_S = 15.0  # a stopping worker's time to finish its saved video before it is killed
MODES = ("off", "browser", "camera")


class LiveStart(BaseModel):
    """A live WebSocket's first message."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    ticket: str = Field(max_length=100)
    fps: float = Field(15.0, ge=1.0, le=30.0, description="frames a second the client sends")
    save: bool = Field(False, description="keep the frames as a video that becomes a job when the session ends")


class Tickets:
    """Single-use tickets, each good for TICKET_TTL_S seconds."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self) -> str:
        ticket, now = secrets.token_urlsafe(24), time.monotonic()
        with self._lock:
            self._until = {t: u for t, u in self._until.items() if u > now}
            while len(self._until) >= MAX_TICKETS:
                self._until.pop(next(iter(self._until)))
            self._until[ticket] = now + TICKET_TTL_S
        return ticket

    def use(self, ticket: str) -> bool:
        with self._lock:
            until = self._until.pop(ticket, 0.0)
        return until > time.monotonic()


class Outbox:
    """Messages for one client: every control message, and at most `keep` frame results (the oldest of
    those dropped first when the client reads slower than frames are processed)."""

    def __init__(self, keep: int = KEEP_RESULTS) -> None:
        self.keep = keep
        self._items: deque[tuple[dict[str, Any], bytes | None]] = deque()
        self._frames = 0
        self._event = asyncio.Event()
        self.dropped = 0

    def put(self, msg: dict[str, Any], payload: bytes | None = None) -> None:
        if msg.get("type") == "frame":
            if self._frames >= self.keep:
                oldest = next(i for i, (m, _) in enumerate(self._items) if m.get("type") == "frame")
                del self._items[oldest]
                self._frames -= 1
                self.dropped += 1
            self._frames += 1
        self._items.append((msg, payload))
        self._event.set()

    async def get(self) -> tuple[dict[str, Any], bytes | None]:
        while not self._items:
            self._event.clear()
            await self._event.wait()
        msg, payload = self._items.popleft()
        if msg.get("type") == "frame":
            self._frames -= 1
        return msg, payload


def parse_message(data: bytes) -> tuple[dict[str, Any], bytes | None]:
    """A live worker's message: 4-byte length, JSON, then the JPEG of the frame (camera mode) if any."""
    (n,) = struct.unpack_from("<I", data)
    return json.loads(data[4:4 + n]), (data[4 + n:] or None)


async def send(ws: WebSocket, msg: dict[str, Any], payload: bytes | None = None) -> None:
    """JSON as a text message; with a frame, one binary message: 4-byte length, JSON, JPEG."""
    if payload is None:
        await ws.send_text(json.dumps(msg))
    else:
        head = json.dumps(msg).encode()
        await ws.send_bytes(struct.pack("<I", len(head)) + head + payload)


class WorkerLink:
    """A live worker process and its pipe, seen from the event loop: messages arrive in `outbox` (read by
    a thread, so the loop never blocks on the pipe), frames go out one at a time."""

    def __init__(self, setup: LiveSetup, loop: asyncio.AbstractEventLoop, deliver) -> None:
        ctx = mp.get_context("spawn")  # nothing inherited from the API process
        self.conn, child = ctx.Pipe()
        # Started from the event loop's thread, which lives as long as the server: the worker's
        # PR_SET_PDEATHSIG is tied to the thread that started it.
        self.proc = ctx.Process(target=_live_entry, args=(setup, child), name="dfer-live", daemon=True)
        self.proc.start()
        child.close()
        self._loop, self._deliver = loop, deliver
        self._busy = False
        self.relay_dropped = 0
        threading.Thread(target=self._read, name="dfer-live-relay", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                msg, payload = parse_message(self.conn.recv_bytes())
            except (EOFError, OSError):
                msg, payload = {"type": "gone"}, None
            except (ValueError, struct.error):
                continue  # not from our worker's _send: ignored
            try:
                self._loop.call_soon_threadsafe(self._deliver, msg, payload)
            except RuntimeError:  # the loop is closed: the server is stopping
                return
            if msg["type"] == "gone":
                return

    async def offer(self, data: bytes) -> None:
        """Hand a frame to the worker, unless the previous one is still on its way (then it is dropped)."""
        if self._busy:
            self.relay_dropped += 1
            return
        self._busy = True
        try:
            await run_in_threadpool(self.conn.send_bytes, data)
        except (OSError, ValueError):
            pass  # the worker is gone: its reader says so
        finally:
            self._busy = False

    def end_input(self) -> None:
        try:
            self.conn.send_bytes(b"")
        except (OSError, ValueError):
            pass

    def stop(self, grace: float) -> None:
        """Wait `grace` seconds for the worker to end, then kill it (blocking: run it in a thread)."""
        self.proc.join(grace)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


@dataclass
class LiveHub:
    """Live use of one service: tickets, sessions and their limit, the camera feed (camera mode)."""

    model: ModelSpec
    disk: DataDir
    store: JobStore
    policy: Policy
    max_sessions: int
    max_frame: tuple[int, int]
    max_queue: int
    log: Any
    source: str = ""  # camera mode: what the server reads
    save: str = ""  # camera mode: the folder of saved segments
    tickets: Tickets = field(default_factory=Tickets)
    sessions: int = 0
    camera: CameraFeed | None = None

    @property
    def mode(self) -> str:
        return "camera" if self.source else ("browser" if self.max_sessions > 0 else "off")

    def info(self) -> dict[str, Any]:
        return {"mode": self.mode, "sessions": self.sessions, "max_sessions": self.max_sessions,
                "viewers": self.camera.viewers if self.camera else 0,
                "max_frame": list(self.max_frame), "max_frame_bytes": MAX_FRAME_BYTES, "fps": [1, 30],
                "idle_s": IDLE_S, "ticket_s": TICKET_TTL_S}

    def model_description(self) -> dict[str, Any] | None:
        """Camera mode: the model as the camera worker loaded it (GET /v1/model; there are no job workers)."""
        ready = self.camera.ready if self.camera is not None else None
        return ready["model"] if ready else None

    def start(self) -> None:
        if self.source and self.camera is None:
            self.camera = CameraFeed(self)
            self.camera.start()

    def stop(self) -> None:
        if self.camera is not None:
            self.camera.stop()

    # -- the WebSocket ---------------------------------------------------------------------------
    def refusal(self, ws: WebSocket) -> str | None:
        """Why a WebSocket is refused before it opens: a Host that is not ours (DNS rebinding), an Origin
        of another site (a page elsewhere opening a socket with the user's browser)."""
        host_header = ws.headers.get("host", "")
        if host_of(host_header) not in self.policy.allowed_hosts:
            return f"Host {host_of(host_header)!r} is not a name of this server"
        origin = ws.headers.get("origin")
        if origin and urlsplit(origin).netloc.lower() != host_header.lower():
            return f"cross-site WebSocket refused (Origin {origin})"
        return None

    async def serve(self, ws: WebSocket) -> None:
        why = self.refusal(ws)
        if why is not None:
            self.log(f"live: {why}")
            await ws.close(code=1008, reason=why[:120])  # before accept: the client gets a 403
            return
        await ws.accept()
        try:
            start = await self._first_message(ws)
        except ValueError as exc:
            await send(ws, {"type": "error", "message": str(exc)})
            await ws.close(code=1008, reason=str(exc)[:120])
            return
        except WebSocketDisconnect:
            return
        if self.mode == "camera":
            await self.camera.watch(ws)
        elif self.sessions >= self.max_sessions:
            message = (f"the server has {self.max_sessions} live session(s) open, its limit (--live-sessions); "
                       "try again when one ends")
            await send(ws, {"type": "error", "message": message})
            await ws.close(code=1013, reason="too many live sessions")
        else:
            self.sessions += 1
            try:
                await BrowserSession(self, ws, start).run()
            finally:
                self.sessions -= 1

    async def _first_message(self, ws: WebSocket) -> LiveStart:
        try:
            text = await asyncio.wait_for(ws.receive_text(), FIRST_MESSAGE_S)
        except asyncio.TimeoutError:
            raise ValueError(f"no ticket within {FIRST_MESSAGE_S:g} s") from None
        except KeyError:  # a binary message first
            raise ValueError("the first message must be JSON: {\"ticket\": ..., \"fps\": ..., \"save\": ...}") from None
        try:
            raw = json.loads(text)
        except ValueError:
            raw = None
        # A ticket presented is spent, whatever else the message gets wrong.
        valid_ticket = isinstance(raw, dict) and isinstance(raw.get("ticket"), str) and self.tickets.use(raw["ticket"])
        try:
            start = LiveStart.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ValueError(f"bad first message: {where} {first.get('msg', '')}".strip()) from None
        if not valid_ticket:
            raise ValueError("no such ticket, or it was used or has expired: get one with POST /v1/live")
        return start

    # -- a browser session's saved video becomes a job -------------------------------------------
    def saved_job(self, job_id: str, saved: Path, frames: int, fps: float) -> str | None:
        """The saved video moved under uploads/ and queued as a job (None: the queue is full; nothing kept)."""
        upload = self.disk.upload(job_id)
        saved.replace(upload)
        params = QueuedParams(num_frames=frames, duration_s=round(frames / fps, 3))
        name = time.strftime("live-%Y%m%d-%H%M%S.mp4")
        if self.store.create_if_room(job_id, params, name, self.max_queue) is None:
            upload.unlink(missing_ok=True)
            return None
        return job_id


class BrowserSession:
    """One browser's camera: its worker, the two directions of the relay, and the session's end."""

    def __init__(self, hub: LiveHub, ws: WebSocket, start: LiveStart) -> None:
        self.hub, self.ws, self.start = hub, ws, start
        self.job_id = str(uuid.uuid4())
        self.outbox = Outbox()
        self.outbox_end: dict[str, Any] | None = None  # the worker's last message

    async def run(self) -> None:
        hub, start = self.hub, self.start
        saved = hub.disk.root / "incoming" / f"{self.job_id}.live.mp4" if start.save else None
        setup = LiveSetup(hub.model, start.fps, hub.max_frame, MAX_FRAME_BYTES, save=str(saved or ""), idle=IDLE_S,
                          parent_pid=os.getpid())
        link = WorkerLink(setup, asyncio.get_running_loop(), self.outbox.put)
        await send(self.ws, {"type": "status", "message": "starting the model"})
        inbound = asyncio.create_task(self._inbound(link))
        outbound = asyncio.create_task(self._outbound())
        done, _ = await asyncio.wait({inbound, outbound}, return_when=asyncio.FIRST_COMPLETED)
        reason = inbound.result() if inbound in done and inbound.exception() is None else ""
        link.end_input()  # the worker finishes what it has (and its saved video), then says "end"
        if outbound not in done:
            try:
                await asyncio.wait_for(asyncio.shield(outbound), STOP_GRACE_S)
            except asyncio.TimeoutError:
                pass
        inbound.cancel()
        outbound.cancel()
        await run_in_threadpool(link.stop, 2.0)
        end = self.outbox_end or {"type": "end"}
        end["relay_dropped"] = link.relay_dropped
        end["result_dropped"] = self.outbox.dropped
        await self._finish(end, saved, reason)

    async def _inbound(self, link: WorkerLink) -> str:
        """Client -> worker: frames (size checked), or a stop. Returns why it ended."""
        limit = MAX_FRAME_BYTES + FRAME_HEADER.size
        while True:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return "left"
            data = msg.get("bytes")
            if data is not None:
                if len(data) > limit:
                    return f"a frame of {len(data)} bytes, over the limit of {limit} bytes"
                await link.offer(data)
            elif msg.get("text") is not None:
                try:
                    if json.loads(msg["text"]).get("type") == "stop":
                        return "stopped"
                except (ValueError, AttributeError):
                    return "a text message that is not {\"type\": \"stop\"}"

    async def _outbound(self) -> None:
        """Worker -> client: each message as it comes (a slow client: see Outbox), until the worker ends."""
        while True:
            msg, payload = await self.outbox.get()
            if msg["type"] in ("end", "gone"):
                self.outbox_end = msg if msg["type"] == "end" else self.outbox_end
                return
            try:
                await send(self.ws, msg, payload)
            except (WebSocketDisconnect, RuntimeError):
                pass  # the client left: keep draining until the worker ends

    async def _finish(self, end: dict[str, Any], saved: Path | None, reason: str) -> None:
        """The session's last message (with the job its saved video became), and the socket closed."""
        hub = self.hub
        if end.get("type") != "end":
            end = {"type": "end", **{k: v for k, v in end.items() if k != "type"},
                   "error": "the live worker ended unexpectedly"}
        if reason and reason not in ("left", "stopped"):
            end["error"] = reason
        frames = int(end.get("saved_frames") or 0)
        if saved is not None and frames and saved.is_file():
            job = await run_in_threadpool(hub.saved_job, self.job_id, saved, frames, self.start.fps)
            end["job"] = job
            if job is None:
                end["error"] = f"the video was not kept: the queue is full ({hub.max_queue} jobs waiting)"
            else:
                hub.log(f"live session saved as job {job} ({frames} frames)")
        elif saved is not None:
            saved.unlink(missing_ok=True)
        try:
            await send(self.ws, end)
            await self.ws.close(code=1000 if "error" not in end else 1008)
        except (WebSocketDisconnect, RuntimeError):
            pass


class CameraFeed:
    """Camera mode: one worker reading the source, started again (after a back-off) when it dies, and its
    messages fanned out to every viewer."""

    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub
        self._viewers: set[Outbox] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.ready: dict[str, Any] | None = None  # the worker's "ready" message
        self._status: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._proc = None

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def start(self) -> None:
        threading.Thread(target=self._supervise, name="dfer-live-camera", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()

    def _supervise(self) -> None:
        """Start the worker (from this thread, which lives as long as the service), read it, start it again."""
        ctx, wait = mp.get_context("spawn"), 1.0
        hub = self.hub
        setup = LiveSetup(hub.model, 0.0, hub.max_frame, MAX_FRAME_BYTES, source=hub.source, save=hub.save,
                          parent_pid=os.getpid())
        while not self._stop.is_set():
            conn, child = ctx.Pipe()
            self._proc = ctx.Process(target=_live_entry, args=(setup, child), name="dfer-live-camera", daemon=True)
            self._proc.start()
            child.close()
            while True:
                try:
                    msg, payload = parse_message(conn.recv_bytes())
                except (EOFError, OSError):
                    break
                if msg["type"] == "ready":
                    self.ready, wait = msg, 1.0
                elif msg["type"] in ("status", "error"):
                    self._status = msg
                    hub.log(f"live: {msg['message']}")
                self._fan_out(msg, payload)
            self._proc.join(5)
            if self._stop.is_set():
                return
            reason = f"the camera worker stopped (exit code {self._proc.exitcode}); starting it again in {wait:g} s"
            hub.log(f"live: {reason}")
            self._fan_out({"type": "status", "message": reason}, None)
            self._stop.wait(wait)
            wait = min(30.0, wait * 2)

    def _fan_out(self, msg: dict[str, Any], payload: bytes | None) -> None:
        loop = self._loop
        if loop is None:
            return
        for box in list(self._viewers):
            try:
                loop.call_soon_threadsafe(box.put, msg, payload)
            except RuntimeError:
                return

    async def watch(self, ws: WebSocket) -> None:
        self._loop = asyncio.get_running_loop()
        box = Outbox(keep=2)
        for msg in (self.ready, self._status):
            if msg is not None:
                box.put(msg)
        self._viewers.add(box)

        async def inbound() -> None:
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass

        async def outbound() -> None:
            while True:
                msg, payload = await box.get()
                await send(ws, msg, payload)

        tasks = {asyncio.create_task(inbound()), asyncio.create_task(outbound())}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._viewers.discard(box)
            for t in tasks:
                t.cancel()


def _live_entry(setup: LiveSetup, conn) -> None:
    """A spawned live worker's first call: its imports (the recogniser, torch, the runtimes) happen there,
    never in the API process."""
    from dfer.serve.live_worker import live_main

    live_main(setup, conn)


__all__ = ["LiveHub", "LiveStart", "MAX_FRAME_BYTES", "Outbox", "Tickets", "parse_message"]
