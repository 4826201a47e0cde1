"""Held calls: a pending decision that outlives the request that brought it.

Many clients give up on a request after a fixed time (the TypeScript MCP SDK: 60 s, whatever
progress it hears). A person reading a diff takes longer. So the decision on a held call is not
tied to one request: :meth:`HeldCalls.decide` asks the broker once per call (a :class:`CallKey`:
client, tool, exact argument bytes) in a task of its own, and each request waits for it at most
its client's *patience*. A request that reaches it gets :attr:`Waited.TOLD_TO_RETRY`: the gateway
answers the agent to call again, and the dialog stays open. An identical call meanwhile joins the
same pending decision (no second dialog); once the person decides, the next identical call gets
that decision, once (:mod:`approver.approval.kept`).

A request with no patience (``None``: 2026-era clients, clients set to wait as long as it takes)
waits as before: if it is cancelled or its client leaves before anyone was told to retry, the
request is withdrawn and the dialog closes.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from approver.approval.broker import ApprovalRequest, Broker, Resolution, Verdict
from approver.approval.kept import CallKey, KeptDecisions
from approver.calls import Action, Decision

logger = logging.getLogger(__name__)


RETRY_PHRASE: Final = "Call this tool again with exactly the same arguments"
"""The words in the answer to a request that reached its patience; an agent may look for them."""


class Waited(enum.Enum):
    """How one request's wait for a held decision ended."""

    DECIDED = "decided"
    """The decision is in :attr:`Held.resolution`; an approval is this request's to use."""
    TOLD_TO_RETRY = "told_to_retry"
    """The request's patience ran out first; the decision is still pending."""
    GONE = "gone"
    """The client went away; if nobody was told to retry, the request was withdrawn."""


@dataclass(frozen=True, slots=True)
class Held:
    """The end of one request's wait."""

    waited: Waited
    original_id: str
    """The id of the request the person sees (or saw): the held call's id in the audit log."""
    deadline: float
    """When the pending decision times out (wall clock)."""
    resolution: Resolution | None = None
    joined: bool = False
    """This request is a retry: it used a decision asked for by an earlier identical call."""
    person_seconds: float | None = None
    """With a decision: how long it took, from the held call's arrival to the decision."""


@dataclass(slots=True)
class _Pending:
    request: ApprovalRequest
    task: asyncio.Task[Resolution]
    waiters: int = 0
    taken: bool = False
    """An approval was used by a waiting request (it is single-use)."""
    decided_at: float | None = None
    """When the person (or the timeout) decided."""


class HeldCalls:
    """Pending decisions by call, shared by every identical request, and the decisions kept after."""

    def __init__(self, broker: Broker, kept: KeptDecisions, clock: Callable[[], float] = time.time) -> None:
        self.broker = broker
        self.kept = kept
        self._clock = clock
        self._pending: dict[CallKey, _Pending] = {}
        self._listeners: list[Callable[[ApprovalRequest], None]] = []

    def on_agent_change(self, listener: Callable[[ApprovalRequest], None]) -> None:
        """Call ``listener`` with a request whenever its ``agent`` changed (told to retry, retried)."""
        self._listeners.append(listener)

    def _agent_changed(self, request: ApprovalRequest) -> None:
        for listener in list(self._listeners):
            try:
                listener(request)
            except Exception:
                logger.exception("a held-call listener failed")

    def pending(self, key: CallKey) -> ApprovalRequest | None:
        """The request pending for this call, if any."""
        found = self._pending.get(key)
        return found.request if found is not None else None

    async def decide(
        self,
        key: CallKey,
        make_request: Callable[[], ApprovalRequest],
        patience: float | None,
        gone: asyncio.Event | None = None,
    ) -> Held:
        """Wait for a person's decision on the call ``key``, at most ``patience`` seconds.

        ``make_request`` builds the request when this call is not already pending. Cancelling
        the caller detaches it; the pending decision is withdrawn only when nobody else waits
        and no agent was told to retry.
        """
        kept = self.kept.take(key)
        if kept is not None:
            took = kept.decided_at - kept.received
            return Held(Waited.DECIDED, kept.call_id, kept.expires, kept.resolution, True, took)
        while True:
            pending = self._pending.get(key)
            joined = pending is not None
            if pending is None:
                pending = self._start(key, make_request())
            elif pending.request.agent.told_to_retry_at is not None:
                pending.request.agent.retries += 1
                self._agent_changed(pending.request)
            held = await self._wait(key, pending, patience, gone, joined)
            if held is not None:
                return held
            # Another identical request used the approval first: this one needs its own.

    def _start(self, key: CallKey, request: ApprovalRequest) -> _Pending:
        task = asyncio.create_task(self.broker.submit(request), name=f"held:{request.id}")
        pending = _Pending(request, task)
        self._pending[key] = pending
        task.add_done_callback(lambda _: self._finished(key, pending))
        return pending

    async def _wait(
        self,
        key: CallKey,
        pending: _Pending,
        patience: float | None,
        gone: asyncio.Event | None,
        joined: bool,
    ) -> Held | None:
        request = pending.request
        pending.waiters += 1
        watcher = asyncio.ensure_future(gone.wait()) if gone is not None else None
        try:
            waits: set[asyncio.Future[Any]] = {pending.task}
            if watcher is not None:
                waits.add(watcher)
            await asyncio.wait(waits, timeout=patience or None, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pending.waiters -= 1
            await self._detached(key, pending)
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
        pending.waiters -= 1
        if pending.task.done():
            resolution = _result(pending.task)
            if resolution.verdict is Verdict.APPROVED:
                if pending.taken:
                    return None
                pending.taken = True
            took = (pending.decided_at or self._clock()) - request.received
            return Held(Waited.DECIDED, request.id, request.deadline, resolution, joined, took)
        if watcher is not None and watcher.done():
            await self._detached(key, pending)
            return Held(Waited.GONE, request.id, request.deadline, joined=joined)
        if request.agent.told_to_retry_at is None:
            request.agent.told_to_retry_at = self._clock()
            self._agent_changed(request)
        return Held(Waited.TOLD_TO_RETRY, request.id, request.deadline, joined=joined)

    async def _detached(self, key: CallKey, pending: _Pending) -> None:
        """A waiter left without a decision: withdraw the request if nobody else can still use it.

        A decision that arrived just as the last waiter left is kept for the retry instead.
        """
        if pending.waiters:
            return
        if pending.task.done():
            if not pending.taken:
                self.kept.keep(key, _result(pending.task), pending.request.id, pending.request.received)
            return
        if pending.request.agent.told_to_retry_at is None:
            pending.task.cancel()
            await asyncio.wait({pending.task})

    def _finished(self, key: CallKey, pending: _Pending) -> None:
        """The person (or the timeout) decided: hand the decision to the next identical call."""
        if self._pending.get(key) is pending:
            del self._pending[key]
        pending.decided_at = self._clock()
        resolution = _result(pending.task)
        # Waiters attached now take the decision themselves; otherwise the agent's retry will.
        if pending.waiters == 0 and resolution.verdict is not Verdict.CANCELLED:
            self.kept.keep(key, resolution, pending.request.id, pending.request.received)


def _result(task: asyncio.Task[Resolution]) -> Resolution:
    """The broker's resolution; a withdrawn or failed request counts as cancelled or denied."""
    if task.cancelled():
        return Resolution(Verdict.CANCELLED, "cancelled", "the request was withdrawn")
    error = task.exception()
    if error is not None:
        logger.error("a held approval failed: %r", error)
        return Resolution(Verdict.DENIED, "error", f"approver could not ask for approval ({error})")
    return task.result()


def retry_message(held: Held, now: float) -> str:
    """What an agent told to call again reads: plain words, what to do and what happens meanwhile."""
    left = max(0, round(held.deadline - now))
    return (
        f"approver is holding this call until the user approves or denies it in approver's window "
        f"(held call {held.original_id}); nothing has run yet. {RETRY_PHRASE} in a little while "
        "(10 to 30 seconds) to get the answer: the same request "
        "keeps waiting for the user, calling again does not ask twice, and an approval runs the call "
        f"once. If nobody decides within {left} s, it is denied."
    )


def held_decision(held: Held, rule: str, pin_reason: str, now: float) -> tuple[Decision, str, str]:
    """The decision on one request after its wait, as (decision, decided_by, message).

    ``decided_by`` is ``held`` when the agent was told to call again (the message says so), and
    a retry's reason names the held call whose decision it used.
    """
    origin = f" (held call {held.original_id})" if held.joined else ""
    if held.waited is Waited.TOLD_TO_RETRY:
        return (
            Decision(Action.DENY, rule, "held for approval; told to call again"),
            "held",
            retry_message(held, now),
        )
    resolution = held.resolution
    if held.waited is Waited.GONE or resolution is None:
        gone = "the client went away while the call waited for approval"
        return Decision(Action.DENY, rule, gone), "cancelled", ""
    if resolution.verdict is Verdict.APPROVED:
        edited = " with edited arguments" if resolution.arguments is not None else ""
        return Decision(Action.ALLOW, rule, f"approved by the user{edited}{origin}"), "user", ""
    reason = {
        Verdict.TIMED_OUT: "nobody approved this call in time",
        Verdict.CANCELLED: "the request was withdrawn",
    }.get(resolution.verdict, "denied by the user")
    message = (resolution.message or reason) + origin
    if pin_reason:
        message = f"{pin_reason}; {message}"
    return Decision(Action.DENY, rule, message), resolution.decided_by, message
