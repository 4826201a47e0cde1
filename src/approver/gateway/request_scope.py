"""What the front door leaves in each request's ASGI scope for the layers behind it.

The front door (:mod:`approver.gateway.front`) checks a request, then records in its scope who
the client is and how to notice it leaving. The SDK callers, the fast path and the gateway read
those entries through this module, so none of them needs to know the front door.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import Any, Final

from approver.gateway.disconnect import DisconnectWatch

CLIENT_SCOPE_KEY: Final = "approver.client"
"""Where the front door puts the authenticated client's name."""
PRINCIPAL_SCOPE_KEY: Final = "approver.principal"
"""Where the front door puts the authenticated principal: the client and its token (see :func:`principal`)."""
GONE_SCOPE_KEY: Final = "approver.gone"
"""Where the front door puts the request's :class:`~approver.gateway.disconnect.DisconnectWatch`."""


def client_name(scope: Mapping[str, Any] | None) -> str | None:
    """The authenticated client's name, or ``None`` for a request the front door did not see."""
    name = scope.get(CLIENT_SCOPE_KEY) if scope is not None else None
    return name if isinstance(name, str) else None


def principal(client: str, token: str) -> str:
    """Who a request comes from, for everything bound to a client: ``client#<token digest>``.

    Grants, input rounds and sessions are bound to this, so a client whose token was replaced
    starts afresh, and no header a client sends can name another client's principal.
    """
    return f"{client}#{hashlib.sha256(token.encode()).hexdigest()[:32]}"


def principal_of(scope: Mapping[str, Any] | None) -> str | None:
    """The authenticated principal of a request, or ``None`` for a request the front door did not see."""
    value = scope.get(PRINCIPAL_SCOPE_KEY) if scope is not None else None
    return value if isinstance(value, str) else None


def client_gone(scope: Mapping[str, Any] | None) -> asyncio.Event | None:
    """Start watching the client of the request with ``scope``; the event is set when it goes away.

    None when the request is not watched (an in-process client).
    """
    if scope is None:
        return None
    watch = scope.get(GONE_SCOPE_KEY)
    return watch.watch() if isinstance(watch, DisconnectWatch) else None
