"""At most :data:`MAX_SESSIONS_PER_CLIENT` open 2025-era sessions per client.

The MCP SDK keeps up to 10,000 sessions for the whole server, and one client could open all of
them, after which no other client could ``initialize``. :class:`SessionQuota` sits between the
front door (which has authenticated the client) and the SDK: a request that would open a session
(a POST without ``Mcp-Session-Id`` in the 2025 era) is refused with 429 and a message that says
why while its client already holds its share. Sessions close when the client deletes them, and
after 30 idle minutes; the 2026-07-28 era has no sessions.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Final

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from approver.gateway.request_scope import CLIENT_SCOPE_KEY

logger = logging.getLogger(__name__)

MAX_SESSIONS_PER_CLIENT: Final = 100
"""Open 2025-era sessions one client (one token) may hold at once."""
_LOG_EVERY: Final = 10.0


class SessionQuota:
    """ASGI middleware: refuses a client's new session while it holds ``limit`` of them."""

    def __init__(self, app: ASGIApp, sessions: Any, limit: int = MAX_SESSIONS_PER_CLIENT) -> None:
        self.app = app
        self._sessions = sessions
        """The SDK's ``StreamableHTTPSessionManager``: its ``_session_owners`` name who opened what."""
        self.limit = limit
        self._opening: dict[str, int] = {}
        """Requests now opening a session, by client: not in the SDK's table yet, counted here."""
        self._logged = 0.0
        self.enabled = hasattr(sessions, "_session_owners")
        if not self.enabled:
            logger.warning(
                "this MCP SDK's session manager is unfamiliar; sessions per client are not limited"
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if not (self.enabled and _opens_session(scope) and isinstance(user, AuthenticatedUser)):
            await self.app(scope, receive, send)
            return
        owner = authorization_context(user)
        client = str(scope.get(CLIENT_SCOPE_KEY, ""))
        held = sum(1 for opener in self._sessions._session_owners.values() if opener == owner)
        if held + self._opening.get(client, 0) >= self.limit:
            await self._refuse(client, send)
            return
        self._opening[client] = self._opening.get(client, 0) + 1
        opening = True

        def opened() -> None:
            nonlocal opening
            if opening:
                opening = False
                self._opening[client] -= 1
                if not self._opening[client]:
                    del self._opening[client]

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                opened()  # the SDK has admitted the session, or refused it, by now
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            opened()

    async def _refuse(self, client: str, send: Send) -> None:
        now = time.monotonic()
        if now - self._logged >= _LOG_EVERY:
            self._logged = now
            logger.warning(
                "client %r holds %d open sessions; refused another (limit %d)", client, self.limit, self.limit
            )
        message = (
            f"too many open sessions: client {client!r} holds {self.limit}, the most approver allows "
            "one client; close the sessions you no longer use (an MCP client does when it disconnects) "
            "or wait: an idle session closes after 30 minutes"
        )
        body = json.dumps(
            {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _opens_session(scope: Scope) -> bool:
    """Whether the SDK would open a session for this request: a 2025-era POST without a session id."""
    if scope.get("type") != "http" or scope.get("method") != "POST":
        return False
    headers = dict(scope.get("headers", []))
    if b"mcp-session-id" in headers:
        return False
    version = headers.get(b"mcp-protocol-version")
    return version is None or version.decode("latin-1") in HANDSHAKE_PROTOCOL_VERSIONS
