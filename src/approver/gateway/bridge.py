"""``approver connect``: a stdio bridge to the running gateway, for stdio-only MCP clients.

Claude Desktop and other clients that only launch commands run ``approver connect``; it relays
JSON-RPC between its stdin/stdout and the gateway's HTTP endpoint, authenticated with the client's
own token. It never talks to an upstream itself: when no gateway is running, every request is
answered with an error that says how to start one.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from typing import Any, Final

import anyio
import httpx2
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server
from mcp.shared.inbound import NAME_BEARING_METHODS, encode_header_value
from mcp.shared.message import ClientMessageMetadata, SessionMessage
from mcp_types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    PROTOCOL_VERSION_META_KEY,
    ErrorData,
    JSONRPCError,
    JSONRPCRequest,
    JSONRPCResponse,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

logger = logging.getLogger(__name__)

GATEWAY_UNAVAILABLE = -32002
NOT_RUNNING = (
    "approver is not running, so this client cannot reach its tools. Start it with `approver` "
    "(desktop app) or `approver serve` (headless), then reconnect this client."
)
UNREADABLE_LINE: Final = "Parse error: approver's bridge read a line that is not JSON (one message a line)"
"""The message answering a stdin line that is not JSON."""
NOT_A_REQUEST: Final = (
    "Invalid Request: approver's bridge read JSON that is not a JSON-RPC 2.0 message object "
    '(it needs "jsonrpc": "2.0", a string "method", an integer or string "id", and object "params")'
)
"""The message answering a JSON line that is not a JSON-RPC message (batches included)."""


def _headers_for(message: Any, negotiated: str | None) -> dict[str, str] | None:
    """The routing headers the gateway expects with a message (2026-era requests carry them)."""
    if isinstance(message, JSONRPCRequest):
        params = message.params or {}
        meta = params.get("_meta") if isinstance(params, dict) else None
        version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None
        if isinstance(version, str) and version in MODERN_PROTOCOL_VERSIONS:
            headers = {"mcp-protocol-version": version, "mcp-method": message.method}
            key = NAME_BEARING_METHODS.get(message.method)
            if key is not None and isinstance(params.get(key), str):
                headers["mcp-name"] = encode_header_value(params[key])
            return headers
    if negotiated is not None:
        return {"mcp-protocol-version": negotiated}
    return None


class StoreToken(httpx2.Auth):
    """The client's token as a bearer header, read again from the store when the gateway refuses it.

    A token rotated meanwhile (``approver token --rotate``, the Connect window) is then picked up
    without restarting the bridge; a revoked one stays refused.
    """

    def __init__(self, token: str, current: Callable[[], str | None] | None = None) -> None:
        self.token = token
        self._current = current

    def auth_flow(self, request: httpx2.Request) -> Any:
        """Send with the token; on 401 send once more with the store's token if it changed."""
        request.headers["authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code != 401 or self._current is None:
            return
        try:
            fresh = self._current()
        except Exception as exc:
            logger.warning("could not read this client's token again: %s", exc)
            return
        if fresh and fresh != self.token:
            self.token = fresh
            request.headers["authorization"] = f"Bearer {fresh}"
            yield request


async def run_bridge(
    find_gateway: Callable[[], str | None],
    token: str,
    stdin: Any = None,
    stdout: Any = None,
    *,
    current_token: Callable[[], str | None] | None = None,
) -> None:
    """Relay stdin/stdout to the gateway at the URL ``find_gateway()`` returns (None: not running).

    ``current_token`` reads the client's token from the store again, for when it was rotated.
    """
    async with stdio_server(stdin, stdout) as (client_read, client_write):
        url = find_gateway()
        if url is None:
            await _answer_unavailable(client_read, client_write, find_gateway)
            return
        http = httpx2.AsyncClient(
            auth=StoreToken(token, current_token), timeout=httpx2.Timeout(30.0, read=None)
        )
        async with http, streamable_http_client(url, http_client=http) as (gateway_read, gateway_write):
            negotiated: str | None = None
            initialize_ids: set[Any] = set()

            async def upstream_pump() -> None:
                async with gateway_write:
                    async for item in client_read:
                        if isinstance(item, Exception):
                            await _answer_unreadable(client_write, item)
                            continue
                        message = item.message
                        if isinstance(message, JSONRPCRequest) and message.method == "initialize":
                            initialize_ids.add(message.id)
                        headers = _headers_for(message, negotiated)
                        metadata = ClientMessageMetadata(headers=headers) if headers else None
                        await gateway_write.send(SessionMessage(message, metadata=metadata))
                group.cancel_scope.cancel()

            async def downstream_pump() -> None:
                nonlocal negotiated
                async with client_write:
                    async for item in gateway_read:
                        if isinstance(item, Exception):
                            # The transport reports a lost gateway as an exception, not a message.
                            logger.warning("gateway connection problem: %s", item)
                            continue
                        message = item.message
                        if isinstance(message, JSONRPCResponse) and message.id in initialize_ids:
                            initialize_ids.discard(message.id)
                            version = message.result.get("protocolVersion")
                            negotiated = version if isinstance(version, str) else negotiated
                        await client_write.send(SessionMessage(message))
                group.cancel_scope.cancel()

            async with anyio.create_task_group() as group:
                group.start_soon(upstream_pump)
                group.start_soon(downstream_pump)


def unreadable_input_error(exc: Exception) -> JSONRPCError | None:
    """The JSON-RPC error for a stdin line that is not a message; None when it was a malformed answer.

    The SDK's reader hands over only the validation error, not the line: the request's id is
    recovered from the errors about the whole object, so the client's waiting request fails.
    """
    errors = exc.errors() if isinstance(exc, ValidationError) else []
    if not errors or any(error["type"] == "json_invalid" for error in errors):
        return JSONRPCError(
            jsonrpc="2.0", id=None, error=ErrorData(code=PARSE_ERROR, message=UNREADABLE_LINE)
        )
    whole = next((e["input"] for e in errors if len(e["loc"]) <= 2 and isinstance(e["input"], dict)), None)
    if isinstance(whole, dict) and "method" not in whole and ("result" in whole or "error" in whole):
        return None  # an answer to a server request cannot itself be answered
    raw_id = whole.get("id") if isinstance(whole, dict) else None
    request_id = raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
    return JSONRPCError(
        jsonrpc="2.0", id=request_id, error=ErrorData(code=INVALID_REQUEST, message=NOT_A_REQUEST)
    )


async def _answer_unreadable(client_write: Any, exc: Exception) -> None:
    reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) and exc.errors() else str(exc)
    logger.warning("unreadable input from the client: %s", reason[:200])
    error = unreadable_input_error(exc)
    if error is not None:
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            await client_write.send(SessionMessage(error))


async def _answer_unavailable(
    client_read: Any, client_write: Any, find_gateway: Callable[[], str | None]
) -> None:
    """Answer every request with a clear error until stdin closes."""
    async with client_write:
        async for item in client_read:
            if isinstance(item, Exception):
                await _answer_unreadable(client_write, item)
                continue
            message = item.message
            if isinstance(message, JSONRPCRequest):
                error = JSONRPCError(
                    jsonrpc="2.0",
                    id=message.id,
                    error=ErrorData(code=GATEWAY_UNAVAILABLE, message=NOT_RUNNING),
                )
                await client_write.send(SessionMessage(error))
    print(NOT_RUNNING, file=sys.stderr)
