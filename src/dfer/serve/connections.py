"""Connections `dfer serve` accepts: a bounded number, and none left hanging half-sent.

uvicorn's `limit_concurrency` answers 503 only once a request's headers have arrived and never closes
an idle connection that has not finished its headers, so a client that opens hundreds of connections
and sends a few bytes on each holds them all (slowloris). This protocol (uvicorn's h11 protocol with
two additions) closes a connection beyond `max_connections` at once with a 503, and one whose request
line and headers are not complete `header_timeout` seconds after it opened (or after the previous
response on a kept-alive connection) with a 408. The body has its own deadline where it is read
(dfer.serve.upload). Internet-facing deployments still belong behind a reverse proxy, which also
buffers slow clients.
"""

from __future__ import annotations

import asyncio
import json
import resource

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def default_max_connections() -> int:
    """A quarter of the open-file limit (each connection is a file descriptor; uploads, the job database,
    logs and the worker pipes need the rest), at most 1024."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft = 4096 if soft == resource.RLIM_INFINITY else soft
    return max(16, min(1024, soft // 4))


def _answer(status: int, reason: str, message: str, extra: str = "") -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n{extra}\r\n")
    return head.encode() + body


def guarded_protocol(max_connections: int, header_timeout: float) -> type[asyncio.Protocol]:
    """An h11 protocol class for `uvicorn.Config(http=...)` with these two limits."""

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.write(_answer(503, "Service Unavailable",
                                        f"the server has {max_connections} connections open, its limit; try again later",
                                        "retry-after: 5\r\n"))
                transport.close()
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                if self._header_timer is None:  # part of a request line or header arrived: the clock runs
                    self._arm()
            else:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm()  # uvicorn's keep-alive timeout covers the idle time until the next request

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.write(_answer(408, "Request Timeout",
                                             f"the request's headers did not arrive within {header_timeout:g} s"))
                self.transport.close()

    return GuardedH11Protocol
