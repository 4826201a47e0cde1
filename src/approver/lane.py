"""Tool calls to a stdio upstream, sent beside the SDK's client session instead of through it.

The SDK's ``ClientSession`` takes every request through several layers: pydantic models for the
request, a dispatcher and its tasks, a per-version validation of the result and a check of
structured content against the tool's output schema. The profiler put those at about a sixth of
approver's CPU for an allowed call. A :class:`ToolLane` shares the session's transport streams
and sends ``tools/call`` itself:

- its requests carry string ids of their own (``approver-N``; the SDK numbers its requests with
  integers), and :meth:`ToolLane.take`, called for every message the upstream sends, picks their
  responses and progress notifications off the stream before the session sees them;
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
import logging
from contextlib import suppress
from typing import Any, Final

import anyio
import mcp.types as types
from anyio.abc import ObjectSendStream
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

logger = logging.getLogger(__name__)

ID_PREFIX: Final = "approver-"
"""Start of the lane's request ids; the SDK's own ids are integers, so the two never meet."""
CANCEL_WRITE_TIMEOUT: Final = 2.0
"""Seconds a courtesy ``notifications/cancelled`` may take to write before it is given up."""

_Reply = types.JSONRPCResponse | types.JSONRPCError


def lane_suits(transport: str, protocol_version: str) -> bool:
    """Whether tool calls to an upstream with this transport and negotiated version may use a lane."""
    return transport == "stdio" and protocol_version not in MODERN_PROTOCOL_VERSIONS


class ToolLane:
    """Sends ``tools/call`` on an upstream's transport and takes the answers off its read side."""

    def __init__(self, write: ObjectSendStream[SessionMessage]) -> None:
        self._write = write
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[_Reply]] = {}
        self._progress: dict[str, ProgressFnT] = {}
        self._relays: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pending(self) -> int:
        """Calls sent and not yet answered."""
        return len(self._pending)

    def take(self, item: object) -> bool:
        """Whether ``item``, read from the upstream, belongs to a lane call (and was handled here).

        A response to a lane id nobody waits for any more (a call cancelled a moment earlier) is
        taken and dropped: the session never sent it, so it would only log an unknown id.
        """
        if not isinstance(item, SessionMessage):
            return False
        message = item.message
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
            request_id = message.id
            if not isinstance(request_id, str) or not request_id.startswith(ID_PREFIX):
                return False
            future = self._pending.get(request_id)
            if future is not None and not future.done():
                future.set_result(message)
            return True
        if isinstance(message, types.JSONRPCNotification) and message.method == "notifications/progress":
            return self._take_progress(message.params or {})
        return False

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
        # A task, as the SDK does: a slow client stream must not stall the upstream's read side.
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
        self, name: str, arguments: dict[str, Any], progress: ProgressFnT | None = None
    ) -> types.CallToolResult:
        """Call ``name`` on the upstream and return its validated result.

        Raises MCPError for an error response or a closed connection. When the caller is
        cancelled, the upstream is told with ``notifications/cancelled``.
        """
        if self._closed:
            raise _closed_error()
        request_id = f"{ID_PREFIX}{next(self._ids)}"
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if progress is not None:
            params["_meta"] = {"progressToken": request_id}
            self._progress[request_id] = progress
        future: asyncio.Future[_Reply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        request = types.JSONRPCRequest(jsonrpc="2.0", id=request_id, method="tools/call", params=params)
        try:
            try:
                await self._write.send(SessionMessage(request))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
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
        if isinstance(reply, types.JSONRPCError):
            raise MCPError(code=reply.error.code, message=reply.error.message, data=reply.error.data)
        return types.CallToolResult.model_validate(reply.result, by_name=False)

    async def _cancel(self, request_id: str) -> None:
        notice = types.JSONRPCNotification(
            jsonrpc="2.0",
            method="notifications/cancelled",
            params={"requestId": request_id, "reason": "the client cancelled the call"},
        )
        closed = (anyio.BrokenResourceError, anyio.ClosedResourceError)
        with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_WRITE_TIMEOUT), suppress(*closed):
            await self._write.send(SessionMessage(notice))

    def close(self) -> None:
        """The connection ended: every waiting call fails with a closed-connection error."""
        self._closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(_closed_error())


def _closed_error() -> MCPError:
    return MCPError(code=types.CONNECTION_CLOSED, message="Connection closed")
