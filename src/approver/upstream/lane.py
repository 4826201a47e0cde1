"""Tool calls to a stdio upstream, sent beside the SDK's client session instead of through it.

The SDK's ``ClientSession`` takes every request through several layers: pydantic models for the
request, a dispatcher and its tasks, a per-version validation of the result and a check of
structured content against the tool's output schema. The profiler put those at about a sixth of
approver's CPU for an allowed call. A :class:`ToolLane` shares the upstream's pipes
(:mod:`approver.upstream.stdio_link`) and sends ``tools/call`` itself:

- its requests carry string ids of their own (``approver-N``; the SDK numbers its requests with
  integers), and :meth:`ToolLane.take`, offered every message the upstream writes, takes their
  responses and progress notifications before the session sees them;
- the arguments sent are the very bytes the decision was made on (and a person saw, when one
  approved the call), spliced into the request rather than parsed and encoded again;
- everything else the upstream sends still goes to the session: its sampling, elicitation and
  roots requests during a call, log messages, list changes. Those relays are unchanged.

The lane is used only for 2025-era stdio upstreams, whose ``tools/call`` is a plain JSON-RPC
request (see :func:`lane_suits`). The 2026 era (metadata on every request) and Streamable HTTP
(headers on every request) keep the SDK's session. The result is validated as a
``CallToolResult``. Its ``structuredContent`` is not checked against the tool's output schema
here: approver exposes that schema unchanged, and the client checks the content against it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, Final

import anyio
import mcp.types as types
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from approver.upstream.stdio_link import LinkClosed

logger = logging.getLogger(__name__)

ID_PREFIX: Final = "approver-"
"""Start of the lane's request ids; the SDK's own ids are integers, so the two never meet."""
CANCEL_WRITE_TIMEOUT: Final = 2.0
"""Seconds a courtesy ``notifications/cancelled`` may take to write before it is given up."""

SendLine = Callable[[bytes], Awaitable[None]]
"""Writes one message line to the upstream; raises LinkClosed when it cannot."""


def lane_suits(transport: str, protocol_version: str) -> bool:
    """Whether tool calls to an upstream with this transport and negotiated version may use a lane."""
    return transport == "stdio" and protocol_version not in MODERN_PROTOCOL_VERSIONS


class ToolLane:
    """Sends ``tools/call`` on an upstream's pipes and takes the answers off its output."""

    def __init__(self, send_line: SendLine) -> None:
        self._send_line = send_line
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._progress: dict[str, ProgressFnT] = {}
        self._relays: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pending(self) -> int:
        """Calls sent and not yet answered."""
        return len(self._pending)

    def take(self, message: dict[str, Any]) -> bool:
        """Whether ``message``, from the upstream, belongs to a lane call (and was handled here).

        A response to a lane id nobody waits for any more (a call cancelled a moment earlier) is
        taken and dropped: the session never sent it, so it would only log an unknown id.
        """
        if "method" in message:
            if message["method"] == "notifications/progress" and isinstance(message.get("params"), dict):
                return self._take_progress(message["params"])
            return False
        request_id = message.get("id")
        if not isinstance(request_id, str) or not request_id.startswith(ID_PREFIX):
            return False
        future = self._pending.get(request_id)
        if future is not None and not future.done():
            future.set_result(message)
        return True

    def _take_progress(self, params: dict[str, Any]) -> bool:
        token = params.get("progressToken")
        if not isinstance(token, str) or not token.startswith(ID_PREFIX):
            return False
        report = self._progress.get(token)
        progress = params.get("progress")
        if report is None or isinstance(progress, bool) or not isinstance(progress, int | float):
            return True
        total = params.get("total")
        message = params.get("message")
        # A task, as the SDK does: a slow client stream must not stall the upstream's output.
        relay = asyncio.get_running_loop().create_task(
            report(
                float(progress),
                float(total) if isinstance(total, int | float) and not isinstance(total, bool) else None,
                message if isinstance(message, str) else None,
            )
        )
        self._relays.add(relay)
        relay.add_done_callback(self._relay_done)
        return True

    def _relay_done(self, relay: asyncio.Task[None]) -> None:
        self._relays.discard(relay)
        if not relay.cancelled() and relay.exception() is not None:
            logger.debug("progress not relayed: %s", relay.exception())

    async def call_tool(
        self, name: str, arguments: bytes, progress: ProgressFnT | None = None
    ) -> types.CallToolResult:
        """Call ``name`` with ``arguments`` (a JSON object, UTF-8) and return its validated result.

        Raises MCPError for an error response or a closed connection. When the caller is
        cancelled, the upstream is told with ``notifications/cancelled``.
        """
        if self._closed:
            raise _closed_error()
        request_id = f"{ID_PREFIX}{next(self._ids)}"
        meta = b""
        if progress is not None:
            meta = b',"_meta":{"progressToken":"' + request_id.encode() + b'"}'
            self._progress[request_id] = progress
        line = b"".join(
            (
                b'{"jsonrpc":"2.0","id":"',
                request_id.encode(),
                b'","method":"tools/call","params":{"name":',
                json.dumps(name).encode(),
                b',"arguments":',
                arguments,
                meta,
                b"}}\n",
            )
        )
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            try:
                await self._send_line(line)
            except LinkClosed:
                raise _closed_error() from None
            reply = await future
        except asyncio.CancelledError:
            # Even a send interrupted by cancellation may have delivered the request.
            if not self._closed:
                await self._cancel(request_id)
            raise
        finally:
            self._pending.pop(request_id, None)
            self._progress.pop(request_id, None)
        return _result(reply)

    async def _cancel(self, request_id: str) -> None:
        notice = {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": request_id, "reason": "the client cancelled the call"},
        }
        line = json.dumps(notice, separators=(",", ":")).encode() + b"\n"
        with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_WRITE_TIMEOUT), suppress(LinkClosed):
            await self._send_line(line)

    def close(self) -> None:
        """The connection ended: every waiting call fails with a closed-connection error."""
        self._closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(_closed_error())


def _result(reply: dict[str, Any]) -> types.CallToolResult:
    """The result of a response, or MCPError for an error response (malformed ones included)."""
    if "error" in reply:
        try:
            error = types.ErrorData.model_validate(reply["error"], by_name=False)
        except ValueError:
            raise MCPError(
                code=types.INTERNAL_ERROR, message="the upstream answered with a malformed error"
            ) from None
        raise MCPError(code=error.code, message=error.message, data=error.data)
    return types.CallToolResult.model_validate(reply.get("result"), by_name=False)


def _closed_error() -> MCPError:
    return MCPError(code=types.CONNECTION_CLOSED, message="Connection closed")
