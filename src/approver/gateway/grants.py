"""What a person approved "for this session", bound to the authenticated client that asked.

A grant is kept under the principal that made the approved call (the client and its token, see
:func:`approver.gateway.request_scope.principal`), the session it was made in, and what it
covers: an exposed tool name, or a resource, prompt or completion (:func:`request_subject`).
Another client never matches, whatever session id it sends.

"This session" means:

* 2025-era clients: the MCP session (``Mcp-Session-Id``) the client opened with its token. A
  new session of the same client is asked again.
* 2026-07-28 clients, which have no sessions: the client's token, for as long as approver runs.
  A restart, or a new token for the client, ends the grant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from approver.calls import RequestRef

MAX_GRANTS: Final = 10_000
"""How many grants are kept; the oldest is forgotten first (its calls are then asked again)."""


@dataclass(frozen=True, slots=True)
class GrantKey:
    """Who a grant belongs to and what it covers."""

    principal: str
    """The authenticated client and its token."""
    session: str | None
    """The 2025-era session it was given in; ``None`` for a sessionless (2026-era) client."""
    subject: str
    """An exposed tool name, or :func:`request_subject` of a resource, prompt or completion."""


def request_subject(request: RequestRef) -> str:
    """What a grant for a resource read, a prompt or a completion covers: this one target."""
    return f"{request.kind.value} {request.server} {request.target}"


class Grants:
    """The grants given so far, in the order given."""

    def __init__(self, limit: int = MAX_GRANTS) -> None:
        self._limit = limit
        self._keys: dict[GrantKey, None] = {}

    def add(self, key: GrantKey) -> None:
        """Remember that ``key`` was approved for its session."""
        self._keys.pop(key, None)
        if len(self._keys) >= self._limit:
            self._keys.pop(next(iter(self._keys)))
        self._keys[key] = None

    def covers(self, key: GrantKey) -> bool:
        """Whether this principal, in this session, was granted this subject."""
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)
