"""The approval broker: holds calls that wait for a human and settles each exactly once.

A pending call is an :class:`ApprovalRequest` (frozen, safe to hand to any UI) plus an
``asyncio.Future`` that only the broker resolves. The gateway awaits :meth:`Broker.submit`;
a UI observes arrivals and endings and answers through :meth:`Broker.approve` and
:meth:`Broker.deny`. Nothing reachable by an agent calls those two methods: they are not exposed
over HTTP, the bridge or any command.

With no approver attached (``approver serve`` without the desktop app), every request is denied
at once with a reason that says so.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from approver.calls import RequestRef, Risk, ToolRef

logger = logging.getLogger(__name__)


DEFAULT_APPROVAL_TIMEOUT: Final = 120.0
"""Seconds a call waits for a person before it is denied (``approver app --approval-timeout``)."""

MAX_WAITING_PER_CLIENT: Final = 16
"""Calls of one client that may wait for approval at once; more are denied at once ("limit")."""


class Verdict(enum.StrEnum):
    """How a pending request ended."""

    APPROVED = "approved"
    DENIED = "denied"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class Scope(enum.StrEnum):
    """How far an approval reaches."""

    ONCE = "once"
    SESSION = "session"
    """This tool, for the rest of this client's session."""
    ALWAYS = "always"
    """This tool from now on: the UI also writes a policy rule."""


class AgentWait:
    """What the agent has been told while its call waits for a person; set by :mod:`approval.held`.

    The one changing part of an :class:`ApprovalRequest`, so a dialog can say that the agent was
    answered "call again" and how often it did, while the request itself stays immutable.
    """

    __slots__ = ("retries", "told_to_retry_at")

    def __init__(self) -> None:
        self.told_to_retry_at: float | None = None
        """Wall-clock time the agent was first told to call again (None: it is still waiting)."""
        self.retries = 0
        """Identical calls that joined this request since."""


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """Everything a person needs to decide on one call. Immutable once created."""

    id: str
    client: str
    session: str
    """The 2025-era MCP session id the call came in, or ``""`` for a sessionless client."""
    tool: ToolRef
    """The tool called; for a resource read, a prompt or a completion, its server and target."""
    risk: Risk
    description: str
    arguments: bytes
    """Canonical JSON of the exact arguments (or request parameters) that will be forwarded if approved."""
    received: float
    """Wall-clock time (``time.time()``) the call arrived."""
    deadline: float
    """Wall-clock time at which the request times out and is denied."""
    rule: str
    """The policy rule that asked for approval."""
    pin_change: str = ""
    """When the tool's definition changed since it was pinned: a diff of old and new (else empty)."""
    lookalikes: tuple[str, ...] = ()
    """Other tools whose names look like this one's (one line each), which it may impersonate."""
    input_schema: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """The tool's ``inputSchema``: the dialog lists the arguments in its property order."""
    argument_order: tuple[str, ...] = ()
    """The argument names in the order the client sent them (``arguments`` is canonical, so sorted)."""
    request: RequestRef | None = None
    """Set when this is not a tool call but a resource read, a prompt get or a completion."""
    result: str | None = None
    """Set when the person reviews a tool's result before the agent gets it (``review_result``):
    the result as text. Approving passes it on, denying withholds it."""

    @property
    def summary(self) -> str:
        """What is asked, in a few words: the tool's exposed name, ``read <uri> from <server>``, or
        ``the result of <tool>`` for a result held for review."""
        if self.result is not None:
            return f"the result of {self.tool.name}"
        return self.request.describe() if self.request is not None else self.tool.name

    agent: AgentWait = field(default_factory=AgentWait, compare=False)
    """Whether the agent was told to call again, and how many of its retries joined this request."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of one request."""

    verdict: Verdict
    decided_by: str
    """``user``, ``timeout``, ``cancelled``, ``no-approver``, ``shutdown``."""
    message: str = ""
    """For a denial: text the agent receives."""
    scope: Scope = Scope.ONCE
    arguments: bytes | None = None
    """For an approval with the person's edits: the canonical JSON of the arguments they approved
    in place of the call's own (forwarded instead of them, exactly these bytes)."""


Observer = Callable[[ApprovalRequest, Resolution | None], None]
"""Called with ``(request, None)`` when a request arrives and ``(request, resolution)`` when it ends."""


class Broker:
    """Holds pending approvals; the only place a pending call can be settled."""

    def __init__(
        self, timeout: float = DEFAULT_APPROVAL_TIMEOUT, clock: Callable[[], float] = time.time
    ) -> None:
        self.timeout = timeout
        self._clock = clock
        self._pending: dict[str, tuple[ApprovalRequest, asyncio.Future[Resolution]]] = {}
        self._observers: list[Observer] = []
        self._approvers = 0
        self._ids = itertools.count(1)
        self._closed: Resolution | None = None
        self._crowd_logged: dict[str, float] = {}

    def new_id(self) -> str:
        """A fresh request id, unique within this process."""
        return f"{int(self._clock() * 1000):x}-{next(self._ids)}"

    @property
    def has_approver(self) -> bool:
        """Whether some UI is attached that can answer requests."""
        return self._approvers > 0

    def attach_approver(self) -> Callable[[], None]:
        """Declare that a UI can answer requests; returns the function that detaches it."""
        self._approvers += 1
        detached = False

        def detach() -> None:
            nonlocal detached
            if not detached:
                detached = True
                self._approvers -= 1

        return detach

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Register an observer of arrivals and endings; returns the unsubscribe function."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def pending(self) -> list[ApprovalRequest]:
        """Requests still waiting, oldest first."""
        return [request for request, _ in self._pending.values()]

    async def submit(self, request: ApprovalRequest) -> Resolution:
        """Wait for a decision on ``request``. Cancelling the awaiting task withdraws it."""
        if self._closed is not None:
            return self._closed
        if not self.has_approver:
            return Resolution(
                Verdict.DENIED,
                "no-approver",
                "this call needs a person's approval, and no approval window is attached to approver "
                "(`approver serve` runs without one); ask the user to allow this tool in approver's policy",
            )
        crowded = self._crowded(request.client)
        if crowded is not None:
            return crowded
        future: asyncio.Future[Resolution] = asyncio.get_running_loop().create_future()
        self._pending[request.id] = (request, future)
        self._notify(request, None)
        try:
            timeout = max(0.0, request.deadline - self._clock())
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError:
                self._settle(request.id, Resolution(Verdict.TIMED_OUT, "timeout", "approval timed out"))
                return future.result()
        except asyncio.CancelledError:
            self._settle(request.id, Resolution(Verdict.CANCELLED, "cancelled", "the client went away"))
            raise
        finally:
            self._pending.pop(request.id, None)

    def _crowded(self, client: str) -> Resolution | None:
        """The denial for one call too many of ``client`` waiting, else None (a person cannot
        answer 1,500 dialogs, and one client's queue must not bury another's calls)."""
        waiting = sum(1 for request, _ in self._pending.values() if request.client == client)
        if waiting < MAX_WAITING_PER_CLIENT:
            return None
        # Each denial is in the audit log; the log says it once in a while, not 1,500 times.
        if time.monotonic() - self._crowd_logged.get(client, -60.0) >= 60.0:
            self._crowd_logged[client] = time.monotonic()
            logger.warning("client %r has %d calls waiting for approval; denying more", client, waiting)
        return Resolution(
            Verdict.DENIED,
            "limit",
            f"client {client!r} already has {waiting} calls waiting for approval, the most approver holds "
            "for one client; this call was denied without asking: wait for those to be answered",
        )

    def approve(self, request_id: str, scope: Scope = Scope.ONCE, arguments: bytes | None = None) -> bool:
        """Approve a pending request; False when it already ended.

        ``arguments`` approves the person's edit of the call's arguments (canonical JSON) instead of
        the call as made; an edited call is approved once, never for a session or always.
        """
        if arguments is not None and scope is not Scope.ONCE:
            raise ValueError("edited arguments are approved once, not for a session or always")
        approval = Resolution(Verdict.APPROVED, "user", scope=scope, arguments=arguments)
        return self._settle(request_id, approval)

    def deny(self, request_id: str, message: str = "") -> bool:
        """Deny a pending request, optionally with a message for the agent; False when it already ended."""
        return self._settle(request_id, Resolution(Verdict.DENIED, "user", message or "denied by the user"))

    def deny_all(self, decided_by: str, message: str) -> int:
        """Deny every pending request (pause, quit, shutdown); returns how many."""
        return sum(
            self._settle(request_id, Resolution(Verdict.DENIED, decided_by, message))
            for request_id in list(self._pending)
        )

    def close(self, decided_by: str, message: str) -> int:
        """Deny every pending request and every later one (quit, shutdown); returns how many were pending.

        A call that arrives while approver shuts down is then denied at once with the same reason,
        instead of waiting for a dialog that will not come.
        """
        self._closed = Resolution(Verdict.DENIED, decided_by, message)
        return self.deny_all(decided_by, message)

    def _settle(self, request_id: str, resolution: Resolution) -> bool:
        entry = self._pending.get(request_id)
        if entry is None:
            return False
        request, future = entry
        if future.done():
            return False
        # Gone from pending() before observers hear of the ending, so what they redraw is current.
        del self._pending[request_id]
        future.set_result(resolution)
        self._notify(request, resolution)
        return True

    def _notify(self, request: ApprovalRequest, resolution: Resolution | None) -> None:
        for observer in list(self._observers):
            try:
                observer(request, resolution)
            except Exception:
                # An observer is a UI; its bug must not decide a call. The call itself is
                # decided by the future, so a failing observer loses nothing.
                logger.exception("approval observer failed")
