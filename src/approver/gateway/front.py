"""The client-facing HTTP door: loopback only, Host/Origin checks, per-client bearer tokens.

Every request passes three checks before it reaches the MCP layer, in this order:

1. ``Host`` must be this gateway's own loopback address and port (else 421): a web page that
   rebinds its DNS name to 127.0.0.1 still sends its own name as Host.
2. ``Origin``, when present, must be this gateway's own origin (else 403): browsers send it on
   cross-site requests, so no web page can drive the gateway.
3. A client token, as ``Authorization: Bearer <token>`` or embedded in the URL path as
   ``/t/<token>/mcp`` for clients that only take a URL (else 401). The token names the client;
   its name is recorded with every call.

Behind them is ``/mcp``, and ``/hooks/<agent>`` where agents' hooks post their own tool calls.
"""

from __future__ import annotations

import http
import ipaddress
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from approver.gateway.disconnect import DisconnectWatch
from approver.gateway.request_scope import CLIENT_SCOPE_KEY, GONE_SCOPE_KEY, PRINCIPAL_SCOPE_KEY, principal

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
HOOKS_PATH = "/hooks/"
"""Where agents' hooks post their own tool calls (``/hooks/claude-code``), behind the same checks."""
TOKEN_PATH_PREFIX = "/t/"  # noqa: S105 - a URL path prefix, not a secret
DEFAULT_PORT = 39217
"""The stable default port of the gateway on 127.0.0.1."""
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
"""The largest request body the MCP layer reads (the SDK's ``DEFAULT_MAX_REQUEST_BODY_SIZE``, 4 MiB);
larger ones get a JSON-RPC 413 here. A literal, not an import: every ``approver`` command imports
this module, and importing ``mcp.server`` costs about a second."""


MAX_PRINCIPALS: Final = 256
"""How many authenticated (token, client) principals the front door keeps built."""


class NonLoopbackError(ValueError):
    """A bind address that is not loopback was asked for."""


def check_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback address; raise NonLoopbackError explaining why not."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise NonLoopbackError(f"{host!r} is not an IP address; approver binds to 127.0.0.1 only") from None
    if not address.is_loopback:
        raise NonLoopbackError(
            f"refusing to listen on {host}: approver only listens on the loopback interface (127.0.0.1), "
            "so that nothing outside this computer can reach your tools; MCP clients on this machine "
            "connect to http://127.0.0.1:PORT/mcp"
        )
    return host


class FastPath(Protocol):
    """What the front door needs of a fast path that answers some requests without the SDK.

    The front door reads a request's body only when :meth:`session_of` says the headers allow
    the fast path; :meth:`handle` then answers it or returns ``False`` to leave it to the SDK.
    (:class:`approver.gateway.fastcall.FastCalls` is the one in use.)
    """

    def session_of(self, scope: Scope, headers: Mapping[str, str]) -> str | None:
        """The session id when the request's headers allow the fast path, else ``None``."""

    async def handle(self, session: str, scope: Scope, body: bytes, send: Send, client: str) -> bool:
        """Answer the request; ``False`` leaves it to the SDK."""


class FrontDoor:
    """ASGI middleware in front of the MCP app: Host, Origin, then token."""

    def __init__(
        self,
        app: ASGIApp,
        port: int,
        authenticate: Callable[[str], str | None],
        fast: FastPath | None = None,
        hooks: ASGIApp | None = None,
    ) -> None:
        from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
        from mcp.server.auth.provider import AccessToken

        def user(token: str, client: str) -> tuple[Any, str]:
            who = principal(client, token)
            # The SDK binds a session to the client's name: another client presenting its id gets
            # 404. A client has one token at a time, so a rotated token keeps the client's open
            # sessions (a running bridge carries on); grants and pending decisions stay bound to
            # the token itself (`who`), and start afresh with a new one.
            access = AccessToken(token=token, client_id=client, scopes=[])
            return AuthenticatedUser(access), who

        self._principal: Callable[[str, str], tuple[Any, str]] = user
        self._principals: dict[tuple[str, str], tuple[Any, str]] = {}
        """(SDK user, principal) by (token, client): the same objects for every request of a client."""
        self.app = app
        self.fast = fast
        """Answers 2025-era tool calls without the SDK's server stack."""
        self.hooks = hooks
        """Answers agents' hooks at :data:`HOOKS_PATH` (:class:`approver.gateway.hooks.AgentHooks`)."""
        self.port = port
        self.authenticate = authenticate
        self.allowed_hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        self.allowed_origins = {f"http://{host}" for host in self.allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host", "")
        if host not in self.allowed_hosts:
            await _reject(
                send, 421, "misdirected request: this gateway answers only to 127.0.0.1 and localhost"
            )
            return
        origin = headers.get("origin")
        if origin is not None and origin not in self.allowed_origins:
            await _reject(send, 403, "forbidden: requests from web pages are refused")
            return
        path: str = scope.get("path", "")
        token = None
        if path.startswith(TOKEN_PATH_PREFIX):
            rest = path[len(TOKEN_PATH_PREFIX) :]
            token, _, tail = rest.partition("/")
            path = "/" + tail
            scope = dict(scope, path=path, raw_path=path.encode())
        authorization = headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            token = authorization[7:].strip()
        client = self.authenticate(token) if token else None
        if client is None:
            if token:
                self._forget(token)
            await _reject(
                send,
                401,
                "unauthorized: a client token is required; get one with `approver url --client NAME` "
                "or `approver token --client NAME`",
                extra=[(b"www-authenticate", b'Bearer realm="approver"')],
            )
            return
        hook = self.hooks is not None and path.startswith(HOOKS_PATH)
        if path != MCP_PATH and not hook:
            await _reject(send, 404, f"not found: the MCP endpoint is {MCP_PATH}")
            return
        size = _declared_size(headers)
        if size is not None and size > MAX_BODY_BYTES:
            await _too_large(send, f"this one has {size}")
            return
        scope = dict(scope)
        scope[CLIENT_SCOPE_KEY] = client
        # The SDK binds each session to the principal that opened it: another client's token
        # presenting this session's id then gets 404, and cannot use its session grants.
        scope["user"], scope[PRINCIPAL_SCOPE_KEY] = self._principal_of(token or "", client)
        watch = DisconnectWatch(receive, _ExplainedErrors(send).send)
        scope[GONE_SCOPE_KEY] = watch
        try:
            if hook and self.hooks is not None:
                await self.hooks(scope, watch.receive, watch.send)
                return
            app_receive: Receive = watch.receive
            session = self.fast.session_of(scope, headers) if self.fast is not None else None
            if session is not None:
                assert self.fast is not None
                body = await read_body(watch.receive)
                if body is None:
                    return  # the client left before it finished sending
                if len(body) > MAX_BODY_BYTES:
                    await _too_large(send, "this one is larger")
                    return
                if await self.fast.handle(session, scope, body, watch.send, client):
                    return
                app_receive = _replay(body, watch.receive)
            await self.app(scope, app_receive, watch.send)
        finally:
            watch.close()

    def _forget(self, token: str) -> None:
        """Drop the principal of a token that no longer authenticates (revoked, rotated)."""
        for key in [key for key in self._principals if key[0] == token]:
            del self._principals[key]

    def _principal_of(self, token: str, client: str) -> tuple[Any, str]:
        key = (token, client)
        found = self._principals.get(key)
        if found is None:
            if len(self._principals) >= MAX_PRINCIPALS:
                self._principals.clear()  # only tokens that authenticated get here; rarely many
            found = self._principals[key] = self._principal(token, client)
        return found


_ERROR_HINTS: Final = {
    406: "not acceptable: an MCP client must send `Accept: application/json, text/event-stream`",
    400: "bad request",
    415: "unsupported media type: an MCP client must send `Content-Type: application/json`",
}


class _ExplainedErrors:
    """Turns a 4xx answer of the MCP layer that is not JSON into a JSON-RPC error that says why.

    The SDK answers some malformed requests (a wrong ``Accept`` or ``Content-Type``) with a bare
    status or a line of plain text; a client then gets no JSON-RPC error to show, and an author
    nothing to go on. JSON answers pass through untouched.
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self._held: Message | None = None
        self._text = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            if not content_type.startswith(b"application/json"):
                self._held = message
                return
        if self._held is None or message["type"] != "http.response.body":
            await self._send(message)
            return
        self._text = (self._text + message.get("body", b""))[:_MAX_ERROR_TEXT]
        if message.get("more_body"):
            return
        start, self._held = self._held, None
        status = start["status"]
        said = self._text.decode("utf-8", "replace").strip()
        text = _ERROR_HINTS.get(status) or said or http.HTTPStatus(status).phrase.lower()
        if said and said not in text:
            text = f"{text} ({said})"
        body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": text}})
        kept = [(k, v) for k, v in start.get("headers", []) if k.lower() not in _BODY_HEADERS]
        headers = [
            *kept,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await self._send({**start, "headers": headers})
        await self._send({"type": "http.response.body", "body": body.encode()})


_MAX_ERROR_TEXT: Final = 4096
_BODY_HEADERS: Final = frozenset({b"content-type", b"content-length"})


async def read_body(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The whole request body (stops early once past ``limit`` bytes); ``None`` if the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False) or size > limit:
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already-read body first, then whatever ``receive`` gives."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def _declared_size(headers: dict[str, str]) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None  # chunked or garbled: the SDK's own body limit still applies


def _headers(scope: Scope) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1").lower()
        if name in result:
            # A duplicated Host/Origin/Authorization is ambiguous: make it fail every check.
            result[name] = "\x00duplicate"
        else:
            result[name] = value.decode("latin-1")
    return result


async def _reject(
    send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message}}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


async def _too_large(send: Send, how: str) -> None:
    await _reject(
        send,
        413,
        f"request too large: approver accepts messages of up to {MAX_BODY_BYTES} bytes and {how}; "
        "nothing was decided or forwarded",
    )


def build_app(
    mcp_app: Any,
    port: int,
    authenticate: Callable[[str], str | None],
    fast: FastPath | None = None,
    hooks: ASGIApp | None = None,
) -> FrontDoor:
    """Wrap the SDK's Starlette app (which carries the session manager's lifespan)."""
    return FrontDoor(mcp_app, port, authenticate, fast, hooks)
