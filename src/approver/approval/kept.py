"""A person's decision on a held call, kept for the agent's retry: bound to the call, used once.

When an agent was told to call again (:mod:`approver.approval.held`) and the person decides
while no retry is waiting, the decision is kept here under the call's :class:`CallKey`: the
authenticated client (its principal: name and token), the tool and a hash of the exact argument
bytes. The next identical call takes it, once,
within :data:`GRANT_TTL` seconds. An approval therefore runs one call, never a second one with
other arguments, from another client, or after the agent has moved on for ten minutes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from approver.approval.broker import Resolution, Verdict

GRANT_TTL: Final = 600.0
"""Seconds a kept decision waits for the agent's identical call."""


@dataclass(frozen=True, slots=True)
class CallKey:
    """What binds a decision to one call: who, which tool, exactly which arguments."""

    principal: str
    """The authenticated client (see :func:`approver.gateway.request_scope.principal`)."""
    tool: str
    arguments_sha256: str

    @classmethod
    def of(cls, principal: str, tool: str, argument_bytes: bytes) -> CallKey:
        """The key of a call whose canonical argument JSON is ``argument_bytes``."""
        return cls(principal, tool, hashlib.sha256(argument_bytes).hexdigest())


@dataclass(frozen=True, slots=True)
class Kept:
    """A decision waiting for the agent's identical call."""

    resolution: Resolution
    call_id: str
    """The held call the person decided on (its id in the audit log)."""
    decided_at: float
    expires: float
    received: float = 0.0
    """When the held call arrived, to tell how long the person took."""


def keepable(resolution: Resolution) -> bool:
    """Whether a retry should get this outcome: a person's approval or denial, or the timeout.

    A pause, a shutdown or a withdrawn request says nothing about the call itself; its retry is
    decided afresh.
    """
    if resolution.verdict is Verdict.TIMED_OUT:
        return True
    return resolution.decided_by == "user" and resolution.verdict in (Verdict.APPROVED, Verdict.DENIED)


class KeptDecisions:
    """Kept decisions by call; each taken at most once, and only before it expires."""

    def __init__(self, clock: Callable[[], float] = time.time, ttl: float = GRANT_TTL) -> None:
        self._clock = clock
        self.ttl = ttl
        self._kept: dict[CallKey, Kept] = {}

    def keep(self, key: CallKey, resolution: Resolution, call_id: str, received: float | None = None) -> bool:
        """Keep ``resolution`` for the next identical call; False (nothing kept) when it is not keepable.

        ``received`` is when the held call arrived (default: now).
        """
        if not keepable(resolution):
            return False
        now = self._clock()
        self._drop_expired(now)
        arrived = now if received is None else received
        self._kept[key] = Kept(resolution, call_id, now, now + self.ttl, arrived)
        return True

    def take(self, key: CallKey) -> Kept | None:
        """The decision kept for this call, removed so it cannot be used again; None if none is valid."""
        kept = self._kept.pop(key, None)
        if kept is None or kept.expires <= self._clock():
            return None
        return kept

    def __len__(self) -> int:
        """How many unexpired decisions are kept."""
        self._drop_expired(self._clock())
        return len(self._kept)

    def _drop_expired(self, now: float) -> None:
        for key in [key for key, kept in self._kept.items() if kept.expires <= now]:
            del self._kept[key]
