"""Rate limits: sliding windows of call times, counted per global, server, tool or client scope.

A policy entry's ``limits`` compile to :class:`Limit`; the counts live in a :class:`RateLimiter`
that outlives policy reloads, because its buckets are keyed by counter and scope names only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from approver.calls import CallContext

WINDOWS: Final[Mapping[str, float]] = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
"""The named limit windows, in seconds."""

BucketKey = tuple[str, str]
"""A rate-limit bucket: (counter name, scope key)."""

SCOPES: Final[Mapping[str, tuple[Callable[[CallContext], str], str]]] = {
    "global": (lambda ctx: "", "in total"),
    "server": (lambda ctx: ctx.tool.server, "per server"),
    "tool": (lambda ctx: ctx.tool.name, "per tool"),
    "client": (lambda ctx: ctx.client, "per client"),
}
"""Each limit scope: how to find a call's scope key, and how a reason names the scope."""


class RateLimiter:
    """Sliding-window logs of call times, one deque per (counter, scope key) bucket.

    A bucket holds at most ``max`` timestamps, because a call is recorded only after
    :meth:`retry_after` found room. Keys are plain names, so the same limiter keeps counting
    across policy reloads.
    """

    def __init__(self) -> None:
        self._buckets: dict[BucketKey, deque[float]] = {}

    def retry_after(self, key: BucketKey, max_calls: int, window: float, now: float) -> float | None:
        """Seconds until ``key`` has room for one more call, or None when it has room now."""
        stamps = self._buckets.get(key)
        if stamps is None:
            return None
        while stamps and stamps[0] <= now - window:
            stamps.popleft()
        if len(stamps) < max_calls:
            if not stamps:
                del self._buckets[key]
            return None
        # After a reload lowered max the log can be longer than max: room comes back when
        # all but max - 1 of the calls have left the window.
        return stamps[len(stamps) - max_calls] + window - now

    def record(self, key: BucketKey, now: float) -> None:
        """Count one call in ``key`` at time ``now``."""
        self._buckets.setdefault(key, deque()).append(now)

    def count(self, key: BucketKey, window: float, now: float) -> int:
        """How many calls ``key`` holds from the last ``window`` seconds."""
        return sum(1 for stamp in self._buckets.get(key, ()) if stamp > now - window)


@dataclass(frozen=True, slots=True)
class Limit:
    """One compiled entry of a rule's ``limits``."""

    rule: str
    counter: str
    max: int
    window: float
    window_text: str
    scope: str

    def key(self, ctx: CallContext) -> BucketKey:
        """The bucket a call counts in under this limit."""
        return (self.counter, SCOPES[self.scope][0](ctx))

    def describe(self) -> str:
        """The limit in words, for a denial's reason."""
        calls = "1 call" if self.max == 1 else f"{self.max} calls"
        return f"rate limit {self.counter}: {calls} per {self.window_text} {SCOPES[self.scope][1]}"


def compile_limit(raw: Mapping[str, Any], rule: str) -> Limit:
    """A :class:`Limit` from its JSON (already validated by the schema)."""
    window = raw["window"]
    seconds = WINDOWS[window] if isinstance(window, str) else float(window)
    window_text = window if isinstance(window, str) else f"{window:g} s"
    scope = raw.get("scope", "tool").replace("grant", "client")
    return Limit(rule, raw.get("counter", rule), raw["max"], seconds, window_text, scope)
