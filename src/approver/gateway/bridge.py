"""``approver connect``: a stdio bridge to the running gateway, for stdio-only MCP clients.

Claude Desktop and other clients that only launch commands run ``approver connect``; it relays
JSON-RPC between its stdin/stdout and the gateway's HTTP endpoint, authenticated with the client's
own token. It never talks to an upstream itself: when no gateway is running, every request is
answered with an error that says how to start one.

The gateway decides on what the client sent, not on what the bridge made of it. The MCP SDK's
transports read a line into a pydantic model and write it out again, which turns ``NaN``,
``Infinity`` and ``1e400`` into ``null`` (so an ``n > 100`` condition would see nothing to deny),
and refuse a lone surrogate escape (``"\ud800"``) that HTTP reads. Such a message is sent to
the gateway as the client wrote it (:func:`relay_as_written`), and the gateway answers it as it
answers the same bytes over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
from collections.abc import Callable, Mapping
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
    jsonrpc_message_adapter,
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
        return _routing_headers(message.method, message.params, negotiated)
    return {"mcp-protocol-version": negotiated} if negotiated is not None else None


def _routing_headers(method: Any, params: Any, negotiated: str | None) -> dict[str, str] | None:
    """:func:`_headers_for` a request given as its method and params."""
    meta = params.get("_meta") if isinstance(params, dict) else None
    version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None
    if isinstance(params, dict) and isinstance(version, str) and version in MODERN_PROTOCOL_VERSIONS:
        headers = {"mcp-protocol-version": version, "mcp-method": str(method)}
        key = NAME_BEARING_METHODS.get(str(method))
        if key is not None and isinstance(params.get(key), str):
            headers["mcp-name"] = encode_header_value(params[key])
        return headers
    return {"mcp-protocol-version": negotiated} if negotiated is not None else None


def as_written(item: SessionMessage | Exception) -> bytes | None:
    """The message to send to the gateway byte for byte, when the SDK would change or refuse it.

    That is a message holding a number JSON cannot carry (``NaN``, ``Infinity``, or one too large
    for a float), which the SDK would send as ``null``, and a line the SDK's parser refuses but
    Python's (the one the gateway reads HTTP with) reads as a JSON-RPC message, such as one with
    a lone surrogate escape. ``None`` for everything the SDK relays faithfully.
    """
    if isinstance(item, Exception):
        errors = item.errors() if isinstance(item, ValidationError) else []
        if not errors or errors[0]["type"] != "json_invalid" or not isinstance(errors[0]["input"], str):
            return None
        line: str = errors[0]["input"]
        try:
            data = json.loads(line)
        except (ValueError, RecursionError):
            return None  # not JSON to the gateway either: the parse error stands
        is_message = isinstance(data, dict) and data.get("jsonrpc") == "2.0"
        return line.encode() if is_message and ("method" in data or "id" in data) else None
    message = item.message
    content = getattr(message, "params", None) if not isinstance(message, JSONRPCResponse) else message.result
    if not _non_finite(content):
        return None
    dumped = message.model_dump(by_alias=True, mode="python", exclude_unset=True)
    return json.dumps(dumped, ensure_ascii=False, separators=(",", ":")).encode()


def _non_finite(value: Any) -> bool:
    """Whether ``value`` holds a float that is NaN or infinite, at any depth."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, Mapping):
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


async def relay_as_written(
    http: httpx2.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    client_write: Any,
) -> None:
    """POST ``body`` to the gateway as it is and pass every message of the answer to the client.

    A request always gets an answer: when the gateway's cannot be read, or the gateway cannot be
    reached, the client gets an error with the request's own id.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    request_id = data.get("id") if isinstance(data, dict) and "method" in data else None
    is_request = isinstance(request_id, str | int) and not isinstance(request_id, bool)
    sent = False
    try:
        async with http.stream("POST", url, content=body, headers=dict(headers)) as response:
            kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
            if kind == "text/event-stream":
                async for event in httpx2.EventSource(response, max_event_size=None):
                    if event.data:
                        sent = (
                            await _pass_on(event.data, request_id if is_request else None, client_write)
                            or sent
                        )
            elif kind == "application/json":
                sent = await _pass_on(
                    (await response.aread()).decode(), request_id if is_request else None, client_write
                )
            else:
                await response.aread()
    except httpx2.HTTPError as exc:
        logger.warning("gateway connection problem: %s", exc)
    if is_request and not sent:
        error = ErrorData(
            code=GATEWAY_UNAVAILABLE, message="approver's bridge got no answer from the gateway"
        )
        await client_write.send(SessionMessage(JSONRPCError(jsonrpc="2.0", id=request_id, error=error)))


async def _pass_on(text: str, request_id: Any, client_write: Any) -> bool:
    """Send one JSON-RPC message from the gateway to the client; True when it answered ``request_id``."""
    try:
        message = jsonrpc_message_adapter.validate_json(text, by_name=False)
    except ValidationError as exc:
        logger.warning(
            "unreadable answer from the gateway: %s", exc.errors()[0]["msg"] if exc.errors() else exc
        )
        return False
    if isinstance(message, JSONRPCError) and message.id is None and request_id is not None:
        # The gateway refused the message before reading its id: it is still this request's answer.
        message = JSONRPCError(jsonrpc="2.0", id=request_id, error=message.error)
    await client_write.send(SessionMessage(message))
    answered = isinstance(message, JSONRPCResponse | JSONRPCError) and message.id == request_id
    return request_id is not None and answered


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
        session: dict[str, str] = {}
        """The gateway's ``mcp-session-id`` for this client once it has one."""

        async def remember_session(response: httpx2.Response) -> None:
            if found := response.headers.get("mcp-session-id"):
                session["mcp-session-id"] = found

        http = httpx2.AsyncClient(
            auth=StoreToken(token, current_token),
            timeout=httpx2.Timeout(30.0, read=None),
            event_hooks={"response": [remember_session]},
        )
        async with http, streamable_http_client(url, http_client=http) as (gateway_read, gateway_write):
            negotiated: str | None = None
            initialize_ids: set[Any] = set()

            def relay(body: bytes) -> None:
                data = json.loads(body)
                routing = _routing_headers(data.get("method"), data.get("params"), negotiated)
                headers = {
                    "accept": "application/json, text/event-stream",
                    "content-type": "application/json",
                }
                headers |= session | (routing or {})
                group.start_soon(relay_as_written, http, url, body, headers, client_write)

            async def upstream_pump() -> None:
                async with gateway_write:
                    async for item in client_read:
                        body = as_written(item)
                        if body is not None:
                            relay(body)
                            continue
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
            request_id = _request_id(item)
            if request_id is not None:
                error = ErrorData(code=GATEWAY_UNAVAILABLE, message=NOT_RUNNING)
                await client_write.send(
                    SessionMessage(JSONRPCError(jsonrpc="2.0", id=request_id, error=error))
                )
            elif isinstance(item, Exception):
                await _answer_unreadable(client_write, item)
    print(NOT_RUNNING, file=sys.stderr)


def _request_id(item: SessionMessage | Exception) -> str | int | None:
    """The id of a request, also of one that only Python's JSON parser reads (see :func:`as_written`)."""
    if isinstance(item, Exception):
        body = as_written(item)
        data = json.loads(body) if body is not None else None
        request_id = data.get("id") if isinstance(data, dict) and "method" in data else None
    else:
        request_id = item.message.id if isinstance(item.message, JSONRPCRequest) else None
    return request_id if isinstance(request_id, str | int) and not isinstance(request_id, bool) else None
