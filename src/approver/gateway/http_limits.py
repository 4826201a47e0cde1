"""The HTTP server's own limits, so no local program can hold the gateway's connections hostage.

Any local program can connect to 127.0.0.1, token or not. uvicorn with its C parser keeps a
connection as long as a request on it is unfinished, and buffers every header line it gets: 1,100
requests that never finish their headers held every file descriptor (and locked real clients out
for good), and 300 MiB of header lines were held in memory. :func:`guarded_protocol` is uvicorn's
httptools protocol with these limits:

* :attr:`HttpLimits.max_header_bytes`: the request line and headers of a request (431 past it);
* :attr:`HttpLimits.header_timeout`: seconds from a connection's first moment, or a request's
  first byte, until its headers are complete (408 past it);
* :attr:`HttpLimits.body_timeout`: seconds a request body may pause (the connection is closed);
* :attr:`HttpLimits.max_connections`: open connections. A connection over the limit makes room
  by closing the connection that has waited longest without a request in progress (a request
  still sending its headers first, then an idle keep-alive one), so a flood of half-sent
  requests pushes out only its own connections. A request being answered (a call waiting for
  approval included) is never closed for room; with nothing else to close, the new connection
  gets 503.

Each time a limit is hit the client gets a clear error, and the log says so (at most once per
:data:`LOG_EVERY` seconds for each limit, with a count, so a flood does not flood the log).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

LOG_EVERY: Final = 10.0
"""Seconds between two log lines about the same limit."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one client connection may take of the gateway's HTTP server."""

    max_header_bytes: int = 64 * 1024
    """The request line and headers of one request, in bytes."""
    header_timeout: float = 10.0
    """Seconds for a request's headers to arrive (from its first byte, or from the connection's start)."""
    body_timeout: float = 30.0
    """Seconds a request body may go without a byte."""
    max_connections: int = 256
    """Open connections; lowered to half the process's file-descriptor limit when that is smaller."""

    def connection_cap(self) -> int:
        """:attr:`max_connections`, or half the soft limit on open files when that is lower."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return max(16, min(self.max_connections, soft // 2))


class _Said:
    """Counts limit hits per kind and logs them at most once per :data:`LOG_EVERY` seconds."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def hit(self, kind: str, message: str, now: float) -> None:
        self._counts[kind] = self._counts.get(kind, 0) + 1
        if now - self._last.get(kind, -LOG_EVERY) >= LOG_EVERY:
            count, self._counts[kind] = self._counts[kind], 0
            self._last[kind] = now
            logger.warning(
                "%s (%d time%s since the last such line)", message, count, "" if count == 1 else "s"
            )


def _response(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol within :attr:`limits` (see the module docstring)."""

    limits: ClassVar[HttpLimits] = HttpLimits()
    cap: ClassVar[int] = HttpLimits().max_connections
    said: ClassVar[_Said] = _Said()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_message = False
        """The parser is inside a request (from its first byte to the end of its body)."""
        self._headers_done = False
        """That request's headers are complete."""
        self._responding = False
        """A request of this connection is being answered."""
        self._since = self.loop.time()
        """When the connection last began to wait, or a request began."""
        self._header_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._refused = False

    @property
    def busy(self) -> bool:
        """Whether a request of this connection is being received (past its headers) or answered."""
        return self._responding or (self._in_message and self._headers_done)

    @property
    def sending_headers(self) -> bool:
        """Whether a request's headers are arriving."""
        return self._in_message and not self._headers_done

    # -- the connection -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout, self._headers_late)
        if len(self.connections) > self.cap:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        counted = not (self._in_message and self._headers_done)  # not a body: headers to come
        if counted:
            self._header_bytes += len(data)
        super().data_received(data)
        if counted and not self._headers_done and self._header_bytes > self.limits.max_header_bytes:
            self._too_large()

    # -- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_message, self._headers_done = True, False
        self._since = self.loop.time()
        if self._timer is None:
            self._arm(self.limits.header_timeout, self._headers_late)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._too_large()
            return
        self._headers_done, self._responding, self._header_bytes = True, True, 0
        self._since = self.loop.time()
        self._arm(self.limits.body_timeout, self._body_late)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._arm(self.limits.body_timeout, self._body_late)
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._in_message = False
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        self._responding = pipelined  # else uvicorn's keep-alive timeout takes over
        self._since = self.loop.time()

    # -- limits -------------------------------------------------------------------------------

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._refused = True
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_response(status, reason, message))
            self.transport.close()

    def _too_large(self) -> None:
        limit = self.limits.max_header_bytes
        message = f"request headers over {limit // 1024} KiB: approver refuses them (limit max_header_bytes)"
        self.said.hit("headers-too-large", f"closed connections whose {message}", self.loop.time())
        self._refuse(431, "Request Header Fields Too Large", message)

    def _headers_late(self) -> None:
        self._timer = None
        if self.busy or self.transport.is_closing():
            return
        seconds = self.limits.header_timeout
        message = f"no complete request headers within {seconds:g} s: approver closed the connection"
        self.said.hit("header-timeout", f"{message} (limit header_timeout)", self.loop.time())
        self._refuse(408, "Request Timeout", message)

    def _body_late(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        seconds = self.limits.body_timeout
        message = (
            f"a request body paused for {seconds:g} s: approver closed the connection (limit body_timeout)"
        )
        self.said.hit("body-timeout", message, self.loop.time())
        self._refused = True
        self.transport.close()

    def _make_room(self) -> None:
        """Close the connection that waited longest without a request in progress, else this one."""
        others = [c for c in self.connections if isinstance(c, GuardedHttpProtocol) and c is not self]
        idle = [c for c in others if not c.busy and not c.transport.is_closing()]
        if idle:
            victim = min(idle, key=lambda c: (not c.sending_headers, c._since))
            message = (
                f"over {self.cap} open connections: approver closed the one that waited longest "
                "without a request in progress (limit max_connections)"
            )
            self.said.hit("connections", message, self.loop.time())
            victim._refuse(503, "Service Unavailable", message)
            return
        message = f"over {self.cap} open connections, each with a request in progress (limit max_connections)"
        self.said.hit("connections-busy", f"refused a connection: {message}", self.loop.time())
        self._refuse(503, "Service Unavailable", f"approver refused this connection: {message}")


def guarded_protocol(limits: HttpLimits | None = None) -> type[GuardedHttpProtocol]:
    """A :class:`GuardedHttpProtocol` class with ``limits`` (one per server: its counts are its own)."""
    chosen = limits or HttpLimits()
    return type(
        "GuardedHttpProtocol",
        (GuardedHttpProtocol,),
        {"limits": chosen, "cap": chosen.connection_cap(), "said": _Said()},
    )
