"""Receiving an upload: the multipart form streamed once, straight into the data folder's `incoming/`
under its size limit and its deadlines, its parameters checked against their bounds, and the disk space
it will take reserved before the first byte is read.

Nothing is buffered elsewhere: the file part is written as it arrives (no spooled temporary file in
the system temp folder, no second copy), the other fields are a few bytes each and capped.
"""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from dfer.formatting import human_bytes
from dfer.serve.disk import DataDir
from dfer.serve.params import JobParams


class UploadAborted(Exception):
    """The client closed its connection mid-upload: one line in the log, the part file and reservation freed."""


class ApiError(Exception):
    """An answer other than success: its status, one sentence, and headers (Retry-After...)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.message = message


PARAMS = JobParams.bounds()  # the numeric fields' bounds: written once, in dfer.serve.params
FLAGS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
MAX_FIELD_BYTES = 64  # a form field other than the video: a number or a flag
MAX_FIELDS = 10
MAX_PARTS = 16  # parts of the form, whatever their names (one name repeated 469,511 times was 6.5 s of parsing)
MAX_BOUNDARY = 70  # RFC 2046: a multipart boundary is 1 to 70 characters
MAX_HEADER_BYTES = 1024  # a part's header name or value
MIN_RATE = 10 * 1024  # bytes/s an upload must average once --body-timeout has passed (a trickle is dropped)
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers around the file


# -- disk space ---------------------------------------------------------------------------------
@dataclass
class Reservation:
    expected: int
    written: int = 0

    @property
    def outstanding(self) -> int:
        return max(0, self.expected - self.written)


@dataclass
class UploadSpace:
    """Free space promised to uploads still streaming in: an upload is refused (507) when the disk's
    free space, less what the uploads already under way will still write, less this one's size, would
    fall under --min-free. A body without Content-Length reserves the upload limit."""

    disk: DataDir
    min_free: int
    _held: list[Reservation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reserve(self, expected: int) -> Reservation:
        with self._lock:
            pending = sum(r.outstanding for r in self._held)
            free = self.disk.free_bytes()
            if free < self.min_free:
                check_free_space(self.disk, self.min_free)
            if free - pending - expected < self.min_free:
                raise ApiError(507, f"the server has {human_bytes(free)} of free disk space ({human_bytes(pending)} "
                                    f"of it promised to uploads under way), not enough for {human_bytes(expected)} "
                                    f"over its minimum of {human_bytes(self.min_free)} (--min-free); try again later",
                               headers={"Retry-After": "60"})
            ticket = Reservation(expected)
            self._held.append(ticket)
            return ticket

    def release(self, ticket: Reservation) -> None:
        with self._lock:
            if ticket in self._held:
                self._held.remove(ticket)

    @property
    def uploads(self) -> int:
        return len(self._held)


def check_free_space(disk: DataDir, min_free: int) -> None:
    free = disk.free_bytes()
    if free < min_free:
        raise ApiError(507, f"the server has {human_bytes(free)} of free disk space, under its minimum of "
                            f"{human_bytes(min_free)} (--min-free); try again later", headers={"Retry-After": "60"})


def expected_size(request: Request, max_bytes: int) -> int:
    """The body's declared size (413 over the limit), or the limit when it declares none."""
    length = request.headers.get("content-length")
    if length is not None and not length.isdigit():
        raise ApiError(400, f"Content-Length must be a number of bytes, got {length[:40]!r}")
    if length and int(length) > max_bytes + FORM_OVERHEAD:
        raise ApiError(413, f"upload larger than the limit of {max_bytes / 2**20:.0f} MB")
    return int(length) if length else max_bytes + FORM_OVERHEAD


# -- the form ------------------------------------------------------------------------------------
class _Form:
    """Callbacks of python-multipart's streaming parser: the `video` part's bytes are handed out to be
    written; other fields are kept (short); anything else in the form is refused."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.pending: list[bytes] = []  # file bytes parsed from the last chunk, to write
        self.error: str | None = None
        self._headers: dict[str, str] = {}
        self._field = self._value = b""
        self._name: str | None = None
        self._is_file = False
        self._buf = bytearray()
        self.parts = 0

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self._begin, "on_header_field": self._hfield, "on_header_value": self._hvalue,
                "on_header_end": self._hend, "on_headers_finished": self._hdone, "on_part_data": self._data,
                "on_part_end": self._end}

    def _refuse(self, message: str) -> None:
        if self.error is None:
            self.error = message

    def _begin(self) -> None:
        self._headers, self._field, self._value, self._buf = {}, b"", b"", bytearray()
        self.parts += 1
        if self.parts > MAX_PARTS:
            self._refuse(f"more than {MAX_PARTS} parts in the form")

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        if self.error is None:
            self._field += data[start:end]
            if len(self._field) > MAX_HEADER_BYTES:
                self._refuse(f"a part header longer than {MAX_HEADER_BYTES} bytes")

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        if self.error is None:
            self._value += data[start:end]
            if len(self._value) > MAX_HEADER_BYTES:
                self._refuse(f"a part header longer than {MAX_HEADER_BYTES} bytes")

    def _hend(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode("latin-1")
        self._field = self._value = b""

    def _hdone(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._name, self._is_file = name, b"filename" in options
        if self._is_file:
            if name != "video":
                self._refuse(f"unexpected file field {name!r}; send the video in a field named 'video'")
            elif self.filename is not None:
                self._refuse("send one video per upload")
            else:
                self.filename = options[b"filename"].decode("utf-8", "replace")
        elif len(self.fields) >= MAX_FIELDS:
            self._refuse(f"more than {MAX_FIELDS} form fields")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        if self._is_file and self._name == "video":
            self.pending.append(bytes(data[start:end]))
        else:
            self._buf += data[start:end]
            if len(self._buf) > MAX_FIELD_BYTES:
                self._refuse(f"form field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes")

    def _end(self) -> None:
        if not self._is_file and self._name is not None and self.error is None:
            self.fields[self._name] = self._buf.decode("utf-8", "replace")


async def _next_chunk(stream, deadline: float, started: float, received: int) -> bytes | None:
    """The body's next chunk within `deadline` seconds (408 when it stalls longer); None at its end."""
    try:
        chunk = await asyncio.wait_for(anext(stream), deadline)
    except StopAsyncIteration:
        return None
    except asyncio.TimeoutError:
        raise ApiError(408, f"the upload stalled: no data for {deadline:g} s (--body-timeout)") from None
    elapsed = time.monotonic() - started
    if elapsed > deadline and received / elapsed < MIN_RATE:
        raise ApiError(408, f"the upload arrives too slowly ({received / elapsed / 1024:.1f} KB/s, under "
                            f"{MIN_RATE // 1024} KB/s after {deadline:g} s)")
    return chunk


async def receive(request: Request, part: Path, max_bytes: int, body_timeout: float,
                  ticket: Reservation) -> tuple[str, JobParams]:
    """Stream the multipart form: the video into `part` (created 0600), the fields checked. Returns
    (client file name, params). Leaves `part` behind on error: the caller removes it (in `finally`)."""
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not options.get(b"boundary"):
        raise ApiError(400, "send the video as multipart/form-data with a file field named 'video'")
    if len(options[b"boundary"]) > MAX_BOUNDARY:
        raise ApiError(400, f"the multipart boundary is {len(options[b'boundary'])} characters long; at most "
                            f"{MAX_BOUNDARY} (RFC 2046)")
    form = _Form()
    parser = MultipartParser(options[b"boundary"], form.callbacks())
    fd = await run_in_threadpool(os.open, part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                                 0o600)
    received, size, started = 0, 0, time.monotonic()
    stream = request.stream()
    try:
        while (chunk := await _next_chunk(stream, body_timeout, started, received)) is not None:
            received += len(chunk)
            if received > max_bytes + FORM_OVERHEAD:
                raise ApiError(413, f"upload larger than the limit of {max_bytes / 2**20:.0f} MB")
            parser.write(chunk)
            if form.error:
                raise ApiError(400, form.error)
            if form.pending:
                block, form.pending = b"".join(form.pending), []
                size += len(block)
                if size > max_bytes:
                    raise ApiError(413, f"upload larger than the limit of {max_bytes / 2**20:.0f} MB")
                await run_in_threadpool(_write_all, fd, block)  # disk writes off the event loop
                ticket.written = size
        parser.finalize()
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ApiError(507, "the server's disk filled up while receiving the upload; try again later",
                           headers={"Retry-After": "60"}) from None
        raise
    except ValueError as exc:  # python-multipart: a malformed form
        raise ApiError(400, f"malformed multipart form: {exc}") from None
    except ClientDisconnect:  # the client went away mid-upload: nothing to answer, nothing to keep
        raise UploadAborted(f"the client closed the connection after {received} bytes of the upload") from None
    finally:
        os.close(fd)
    if form.filename is None:
        raise ApiError(400, "no file field named 'video' in the form")
    name = display_name(form.filename)
    if size == 0:
        raise ApiError(415, f"{name}: the upload is empty (0 bytes)")
    return name, parse_params(form.fields)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def parse_params(fields: dict[str, str]) -> JobParams:
    """The form's fields checked against their bounds (400 naming the field otherwise)."""
    unknown = sorted(set(fields) - {"explain", *PARAMS})
    if unknown:
        raise ApiError(400, f"unknown form field {unknown[0]!r}; the fields are video, {', '.join(PARAMS)}, explain")
    params: dict[str, Any] = {}
    for key, (kind, lo, hi) in PARAMS.items():
        raw = fields.get(key)
        if raw is None:
            continue
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise ApiError(400, f"{key} must be a number, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ApiError(400, f"{key} must be between {lo} and {hi}, got {raw}")
        params[key] = value
    raw = fields.get("explain")
    if raw is not None:
        if raw.strip().lower() not in FLAGS:
            raise ApiError(400, f"explain must be true or false, got {raw!r}")
        params["explain"] = FLAGS[raw.strip().lower()]
    return JobParams(**params)


def display_name(name: str | None) -> str:
    """The client's file name, for display only: the last path part, printable, at most 120 chars."""
    base = (name or "video").replace("\\", "/").split("/")[-1]
    return "".join(c for c in base if c.isprintable())[:120] or "video"
