"""The 2025-era sessions the gateway has seen, so notifications can reach them later.

A 2025-11-25 client keeps a session open and expects list changes, resource updates and log
messages on it. The SDK does not offer a list of its sessions, so the gateway remembers each
session that made a request, with what it subscribed to, and forgets one that cannot be reached.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import mcp.types as types
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from approver.gateway.callers import client_of, session_id_of

logger = logging.getLogger(__name__)

MAX_LEGACY_SESSIONS: Final = 1024
"""How many 2025-era sessions are remembered; the oldest is forgotten first."""


@dataclass
class LegacySession:
    """One 2025-era session: how to reach it, and what it asked to hear about."""

    session: ServerSession
    client: str
    subscriptions: set[str] = field(default_factory=set)
    """Resource URIs it subscribed to."""
    logging: bool = False
    """Whether it set a log level, and so wants the upstreams' log messages."""


class LegacySessions:
    """The 2025-era sessions seen, by ``Mcp-Session-Id``."""

    def __init__(self, limit: int = MAX_LEGACY_SESSIONS) -> None:
        self._limit = limit
        self._sessions: dict[str, LegacySession] = {}

    def track(self, ctx: ServerRequestContext[Any, Any]) -> LegacySession | None:
        """Remember the session of a 2025-era request; ``None`` for other requests."""
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return None
        key = session_id_of(ctx)
        if key is None:
            return None
        entry = self._sessions.get(key)
        if entry is None:
            if len(self._sessions) >= self._limit:
                self._sessions.pop(next(iter(self._sessions)))
            entry = self._sessions[key] = LegacySession(ctx.session, client_of(ctx))
        return entry

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def entries(self) -> Iterator[tuple[str, LegacySession]]:
        """A snapshot of the sessions, safe to iterate while sending (a send may forget one)."""
        return iter(list(self._sessions.items()))

    async def send(self, key: str, entry: LegacySession, notification: types.ServerNotification) -> None:
        """Send one notification; a session that cannot take it is forgotten."""
        try:
            await entry.session.send_notification(notification)
        except Exception as exc:
            logger.debug("session %s is gone (%s); forgetting it", key, exc)
            self._sessions.pop(key, None)

    async def broadcast(self, notification: types.ServerNotification) -> None:
        """Send a notification to every session."""
        for key, entry in self.entries():
            await self.send(key, entry, notification)
