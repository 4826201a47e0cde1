"""The front door's fast path for 2025-era tool calls.

Every tool call an agent makes passes through approver, and the MCP SDK's server stack costs
more CPU per request than a whole plain proxy (``docs/BENCHMARKS.md``): memory streams, a task
group and a pydantic round trip per message, and an SSE stream per POST. A ``tools/call`` from
an established 2025-era session needs none of that, so the front door answers it here: it
parses the request, has :meth:`Gateway.call` decide, record and forward it exactly as the SDK's
handler would, and writes the answer itself.

What a client can do through the SDK stays possible here, over the same wire:

* the answer is plain JSON when nothing else was sent first; once there is something to send
  before it (progress, a log message, a request from the upstream), the response turns into an
  SSE stream, as the SDK's does;
* requests from the upstream during the call (sampling, elicitation, roots) go out on that
  stream with ids of their own (``approver-N``), and the client's answers, which it POSTs back,
  are taken here before the SDK sees them;
* a ``notifications/cancelled`` for a call running here cancels it here.

Anything else (another method, a 2026-era request, an unknown or foreign session, a session
the gateway has not registered for notifications yet, a request shape this module does not
fully understand) goes to the SDK untouched: the fast path only takes what it can answer
exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio
import mcp.types as types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.shared.exceptions import MCPError
from starlette.types import Scope, Send

from approver.approval.keepalive import Report, unless_gone
from approver.gateway.request_scope import client_gone, principal_of

if TYPE_CHECKING:
    from mcp.server.streamable_http import StreamableHTTPServerTransport
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from approver.gateway.gateway import Gateway

logger = logging.getLogger(__name__)

FAST_VERSIONS: Final = frozenset({"2025-03-26", "2025-06-18", "2025-11-25"})
"""Protocol versions whose tool calls are answered here (a missing header means 2025-03-26)."""
REQUEST_CANCELLED: Final = -32800
"""The error a 2025-era cancelled request is answered with (what the SDK sends)."""
_REQUEST_KEYS: Final = frozenset({"jsonrpc", "id", "method", "params"})
_PARAM_KEYS: Final = frozenset({"name", "arguments", "_meta"})
_ANSWER_KEYS: Final = frozenset({"jsonrpc", "id", "result", "error"})
_SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
]


class FastCalls:
    """Answers 2025-era ``tools/call`` requests of established sessions in the front door."""

    def __init__(self, gateway: Gateway, sessions: StreamableHTTPSessionManager) -> None:
        self.gateway = gateway
        self._sessions = sessions
        self.handled = 0
        """Tool calls answered here (for tests and benchmarks)."""
        self._ids = itertools.count(1)
        self._asks: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}
        """Requests sent to clients, by (session, id), waiting for the client's answer."""
        self._running: dict[tuple[str, str | int], anyio.CancelScope] = {}
        """Calls running here, by (session, request id), so a cancellation can find them."""
        self.enabled = hasattr(sessions, "_server_instances") and hasattr(sessions, "_session_owners")
        if not self.enabled:
            logger.warning("this MCP SDK's session manager is unfamiliar; every call takes the SDK's path")

    # -- which requests are fast ----------------------------------------------------------------

    def session_of(self, scope: Scope, headers: Mapping[str, str]) -> str | None:
        """The session id when the request's headers allow the fast path, else ``None``.

        Checks what the SDK would check before reading a body: the method, an open session owned
        by this client, a 2025-era protocol version, ``Content-Type`` and ``Accept``.
        """
        if not self.enabled or scope.get("method") != "POST":
            return None
        session = headers.get("mcp-session-id")
        if not session:
            return None
        version = headers.get("mcp-protocol-version")
        if version is not None and version not in FAST_VERSIONS:
            return None
        if headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
            return None
        if not _accepts_json_and_sse(headers.get("accept", "")):
            return None
        transport = self._sessions._server_instances.get(session)
        if transport is None or transport.is_terminated or not _can_hold_open(transport):
            return None
        user = scope.get("user")
        owner = authorization_context(user) if isinstance(user, AuthenticatedUser) else None
        if owner != self._sessions._session_owners.get(session):
            return None  # the SDK answers 404, as if the session did not exist
        return session

    async def handle(self, session: str, scope: Scope, body: bytes, send: Send, client: str) -> bool:
        """Answer the request if it is one for the fast path; ``False`` leaves it to the SDK."""
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            return False  # the SDK's parse error says what is wrong
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return False
        if "method" not in message:
            return await self._take_answer(session, message, send)
        if message.get("method") == "notifications/cancelled":
            return await self._take_cancel(session, message, send)
        call = _tool_call(message)
        if call is None:
            return False
        if not self.gateway.tracks(session):
            # A call through the SDK registers the session for notifications (list changes, log
            # messages); clients list tools before calling, so this is rarely a call.
            return False
        transport = self._sessions._server_instances.get(session)
        if transport is None:
            return False  # closed since its headers were checked: the SDK answers 404
        with _held_open(transport):
            return await self._call(session, scope, send, client, call)

    async def _call(self, session: str, scope: Scope, send: Send, client: str, call: _ToolCall) -> bool:
        request_id, name, arguments, token = call
        reply = _Reply(send, session)
        caller = _FastCaller(self, client, session, scope, reply, token)
        key = (session, request_id)
        if key in self._running:
            return False  # an id already in flight here: the SDK serves it, so cancels stay unambiguous
        # Run in this task, not one of its own (each task costs a turn of the event loop): a
        # client's cancellation cancels this scope; the server stopping cancels the whole task.
        cancel = anyio.CancelScope()
        self._running[key] = cancel
        self.handled += 1
        try:
            answer: dict[str, Any] = _error(request_id, REQUEST_CANCELLED, "Request cancelled")
            with cancel:
                result = await self.gateway.call(caller, name, arguments)
                answer = {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "result": result.model_dump(by_alias=True, mode="json", exclude_none=True),
                }
        except Exception as exc:
            logger.exception("the fast path failed on %s", name)
            answer = _error(request_id, types.INTERNAL_ERROR, f"approver: {type(exc).__name__}: {exc}")
        finally:
            self._running.pop(key, None)
        await reply.answer(answer)
        return True

    async def _take_answer(self, session: str, message: dict[str, Any], send: Send) -> bool:
        """A client's answer to a request sent from here."""
        request_id = message.get("id")
        if not isinstance(request_id, str) or not set(message) <= _ANSWER_KEYS:
            return False
        future = self._asks.get((session, request_id))
        if future is None:
            return False
        if not future.done():
            future.set_result(message)
        await _accepted(send, session)
        return True

    async def _take_cancel(self, session: str, message: dict[str, Any], send: Send) -> bool:
        params = message.get("params")
        request_id = params.get("requestId") if isinstance(params, dict) else None
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            return False
        scope = self._running.get((session, request_id))
        if scope is None:
            return False
        scope.cancel()
        await _accepted(send, session)
        return True

    # -- requests to the client, from the upstream --------------------------------------------

    async def ask(self, caller: _FastCaller, request: types.ServerRequest, answer_type: type[Any]) -> Any:
        request_id = f"approver-{next(self._ids)}"
        key = (caller.session_id, request_id)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._asks[key] = future
        try:
            dumped = request.model_dump(by_alias=True, mode="json", exclude_none=True)
            await caller.reply.event({"jsonrpc": "2.0", "id": request_id, **dumped})
            answer = await unless_gone(future, client_gone(caller.scope))
        finally:
            self._asks.pop(key, None)
        if answer is None:
            raise MCPError(types.CONNECTION_CLOSED, "the client went away before it answered")
        if "error" in answer:
            error = types.ErrorData.model_validate(answer["error"])
            raise MCPError(error.code, error.message, error.data)
        return answer_type.model_validate(answer.get("result"), by_name=False)


class _FastCaller:
    """The client end of a call on the fast path (see :class:`approver.gateway.callers.Caller`)."""

    modern = False

    def __init__(
        self,
        calls: FastCalls,
        client: str,
        session: str,
        scope: Scope,
        reply: _Reply,
        token: str | int | None,
    ) -> None:
        self.calls = calls
        self.client = client
        self.principal = principal_of(scope) or client
        self.session_id = session
        self.session: str | None = session  # session_of checked that this principal owns it
        self.scope: Mapping[str, Any] | None = scope
        self.reply = reply
        self._token = token

    def progress_reporter(self) -> Report | None:
        return self._report if self._token is not None else None

    async def _report(self, progress: float, total: float | None, message: str | None) -> None:
        params: dict[str, Any] = {"progressToken": self._token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self.reply.event({"jsonrpc": "2.0", "method": "notifications/progress", "params": params})

    async def ask(self, request: types.ServerRequest, answer_type: type[Any]) -> Any:
        return await self.calls.ask(self, request, answer_type)

    async def notify(self, notification: types.ServerNotification) -> None:
        dumped = notification.model_dump(by_alias=True, mode="json", exclude_none=True)
        await self.reply.event({"jsonrpc": "2.0", **dumped})


class _Reply:
    """One POST's response: plain JSON, or an SSE stream once something precedes the answer."""

    def __init__(self, send: Send, session: str) -> None:
        self._send = send
        self._session = session.encode("latin-1")
        self._lock = asyncio.Lock()
        self._streaming = False
        self._done = False

    async def event(self, message: dict[str, Any]) -> None:
        """Send a message that is not the answer; starts the SSE stream if needed."""
        async with self._lock:
            if self._done:
                raise MCPError(types.INTERNAL_ERROR, "the call has already been answered")
            if not self._streaming:
                self._streaming = True
                await self._send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [*_SSE_HEADERS, (b"mcp-session-id", self._session)],
                    }
                )
            await self._send({"type": "http.response.body", "body": _sse(message), "more_body": True})

    async def answer(self, message: dict[str, Any]) -> None:
        """Send the answer and end the response."""
        try:
            body = _encode(message)
        except ValueError:  # NaN or Infinity in a result: not JSON, so not forwarded
            text = "approver: the upstream's result holds a number JSON cannot carry (NaN or Infinity)"
            body = _encode(_error(message["id"], types.INTERNAL_ERROR, text))
        async with self._lock:
            if self._done:
                return
            self._done = True
            if self._streaming:
                await self._send({"type": "http.response.body", "body": _sse_body(body)})
                return
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"mcp-session-id", self._session),
            ]
            await self._send({"type": "http.response.start", "status": 200, "headers": headers})
            await self._send({"type": "http.response.body", "body": body})


_ToolCall = tuple[str | int, str, dict[str, Any] | None, str | int | None]


def _tool_call(message: dict[str, Any]) -> _ToolCall | None:
    """(id, name, arguments, progress token) of a plain ``tools/call`` request, else ``None``."""
    if message.get("method") != "tools/call" or not set(message) <= _REQUEST_KEYS:
        return None
    request_id = message.get("id")
    if not isinstance(request_id, str | int) or isinstance(request_id, bool):
        return None
    params = message.get("params")
    if not isinstance(params, dict) or not set(params) <= _PARAM_KEYS:
        return None  # a task-augmented call, or fields this path would drop
    name = params.get("name")
    arguments = params.get("arguments")
    meta = params.get("_meta")
    if not isinstance(name, str) or not (arguments is None or isinstance(arguments, dict)):
        return None
    if not (meta is None or isinstance(meta, dict)):
        return None
    token = meta.get("progressToken") if meta else None
    if token is not None and (not isinstance(token, str | int) or isinstance(token, bool)):
        return None
    return request_id, name, arguments, token


def _can_hold_open(transport: StreamableHTTPServerTransport) -> bool:
    """Whether :func:`_held_open` can keep this session from expiring (the SDK knows how)."""
    if transport.idle_scope is None:
        return True  # a session without an idle limit
    return not transport.idle_scope.cancel_called and isinstance(
        getattr(transport, "_requests_in_flight", None), int
    )


@contextlib.contextmanager
def _held_open(transport: StreamableHTTPServerTransport) -> Iterator[None]:
    """Count a request as in flight for the session's idle timer, as the SDK's transport does.

    The SDK ends a session after some time without a request in flight (30 minutes); requests
    answered here never reach its transport, so a client calling only tools would otherwise
    lose its session in the middle of its work.
    """
    idle = transport.idle_scope
    timeout = getattr(transport, "_idle_timeout", None)
    if idle is None or timeout is None:
        yield
        return
    transport._requests_in_flight += 1
    idle.deadline = math.inf
    try:
        yield
    finally:
        transport._requests_in_flight -= 1
        if not transport._requests_in_flight:
            idle.deadline = anyio.current_time() + timeout


def _accepts_json_and_sse(accept: str) -> bool:
    """The SDK's rule: both ``application/json`` and ``text/event-stream``, wildcards allowed."""
    kinds = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    if "*/*" in kinds:
        return True
    json_ok = bool(kinds & {"application/json", "application/*"})
    return json_ok and bool(kinds & {"text/event-stream", "text/*"})


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _sse(message: dict[str, Any]) -> bytes:
    return _sse_body(_encode(message))


def _sse_body(data: bytes) -> bytes:
    # JSON text never holds a raw line break, so one data line carries the whole message.
    return b"event: message\ndata: " + data + b"\n\n"


def _error(request_id: str | int, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


async def _accepted(send: Send, session: str) -> None:
    headers = [(b"content-length", b"0"), (b"mcp-session-id", session.encode("latin-1"))]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
