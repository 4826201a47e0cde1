"""Who made a tool call, and how to reach them while it runs.

The gateway decides on and forwards a ``tools/call`` the same way whichever path brought it in:
the MCP SDK's server (:class:`SdkCaller`, every era and every method) or the front door's fast
path for 2025-era tool calls (:mod:`approver.gateway.fastcall`). What the gateway needs from that path
is small and listed in :class:`Caller`: the client's name, the authenticated principal and
session that its approvals belong to, the ASGI scope (to notice the client leaving), and a way
to send progress, log messages and the upstream's own requests (sampling, elicitation, roots)
back to the client during the call.

A header never names the principal: the front door derives it from the client's token. A
session id is used only where the SDK (or the fast path) checked that the session belongs to
that principal, which is the 2025 era; a 2026-07-28 request is sessionless whatever
``Mcp-Session-Id`` it sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import mcp.types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from approver.approval.keepalive import Report
from approver.gateway.request_scope import client_name, principal_of


class Caller(Protocol):
    """The client end of one tool call, as the gateway sees it."""

    client: str
    """The authenticated client's name, recorded with the call."""
    principal: str
    """The authenticated client and its token (``client#<digest>``): what grants, rounds and
    answers are bound to."""
    session: str | None
    """The 2025-era session this principal opened, checked to be its own; ``None`` when sessionless."""
    modern: bool
    """A 2026-era request: upstream questions go back as ``input_required`` rounds."""
    scope: Mapping[str, Any] | None
    """The HTTP request's ASGI scope, which carries its disconnect watch (``None`` in process)."""

    def progress_reporter(self) -> Report | None:
        """Sends progress for this call; ``None`` when the client sent no progress token."""

    async def ask(self, request: types.ServerRequest, answer_type: type[Any]) -> Any:
        """Send a request to the client as part of this call and return its validated answer.

        Raises :class:`mcp.shared.exceptions.MCPError` when the client answers with an error.
        """

    async def notify(self, notification: types.ServerNotification) -> None:
        """Send a notification to the client as part of this call."""


def client_of(ctx: ServerRequestContext[Any, Any]) -> str:
    """The authenticated client's name (``local`` for an in-process client)."""
    scope = getattr(ctx.request, "scope", None)
    return (client_name(scope) if isinstance(scope, dict) else None) or "local"


def principal_from(ctx: ServerRequestContext[Any, Any]) -> str:
    """The authenticated principal (``local`` for an in-process client)."""
    scope = getattr(ctx.request, "scope", None)
    return (principal_of(scope) if isinstance(scope, dict) else None) or "local"


def session_id_of(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """The request's ``Mcp-Session-Id`` as sent (2025-era HTTP clients have one); checked by the
    SDK against the principal only on the 2025 era."""
    headers = getattr(ctx.request, "headers", None)
    if headers is None:
        return None
    value = headers.get("mcp-session-id")
    return value if isinstance(value, str) else None


def wants_progress(meta: Mapping[str, Any] | None) -> bool:
    """Whether a request's ``_meta`` carries a progress token."""
    if not meta:
        return False
    return meta.get("progress_token") is not None or meta.get("progressToken") is not None


class SdkCaller:
    """A call that came in through the SDK's server: the request context has everything."""

    def __init__(self, ctx: ServerRequestContext[Any, Any]) -> None:
        self.ctx = ctx
        self.client = client_of(ctx)
        self.principal = principal_from(ctx)
        self.modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        # The SDK's stateful transport answers 404 to a 2025-era request whose session another
        # principal opened; a 2026-era request reaches no session, so its header proves nothing.
        self.session = None if self.modern else session_id_of(ctx)
        scope = getattr(ctx.request, "scope", None)
        self.scope: Mapping[str, Any] | None = scope if isinstance(scope, dict) else None

    def progress_reporter(self) -> Report | None:
        return self.ctx.session.report_progress if wants_progress(self.ctx.meta) else None

    async def ask(self, request: types.ServerRequest, answer_type: type[Any]) -> Any:
        metadata = ServerMessageMetadata(related_request_id=self.ctx.request_id)
        return await self.ctx.session.send_request(request, answer_type, metadata=metadata)

    async def notify(self, notification: types.ServerNotification) -> None:
        await self.ctx.session.send_notification(notification, related_request_id=self.ctx.request_id)
