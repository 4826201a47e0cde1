"""Tool calls: classify, decide, ask a person if the policy says so, record, then forward.

:meth:`ToolCalls.call` is the one path every ``tools/call`` takes, whichever door it came in
through (the SDK's server or the front door's fast path, see :mod:`approver.gateway.callers`).
Its first half, :meth:`ToolCalls.rule` (decide, ask, record), is also how an agent's own tool
calls are decided (:mod:`approver.gateway.hooks`). The decision is committed to the audit log
before the call is forwarded, and the upstream gets exactly the argument bytes that were decided
on (and shown, when a person approved), or the edit a person approved in their place. Any error
on the way denies the call (fail closed).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

import mcp.types as types
from mcp.shared.exceptions import MCPError

from approver.approval.broker import ApprovalRequest, Broker, Scope, Verdict
from approver.approval.editing import check_approved, encode_arguments
from approver.approval.held import HeldCalls, held_decision
from approver.approval.keepalive import KEEPALIVE_INTERVAL, keepalive
from approver.approval.kept import CallKey, KeptDecisions
from approver.audit.log import AuditWriteError, DecisionRecord, OutcomeRecord, canonical_json
from approver.audit.recorder import Recorder
from approver.calls import Action, CallContext, Decision
from approver.config.patience import DEFAULT_PATIENCE
from approver.gateway.answers import tool_error
from approver.gateway.arguments import TOO_DEEP, deeper_than
from approver.gateway.callers import Caller
from approver.gateway.catalog import Catalog, ToolEntry
from approver.gateway.grants import GrantKey, Grants
from approver.gateway.request_scope import client_gone
from approver.gateway.review import ResultReview, told_edited
from approver.gateway.rounds import InFlight, InputRounds
from approver.policy.file import PolicyFile
from approver.policy.limits import RateLimiter
from approver.upstream.remote import sign_in_hint
from approver.upstream.status import UpstreamUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ruling:
    """What was decided, and recorded, about one call: whether it runs, and with which bytes."""

    decision: Decision
    decided_by: str
    message: str
    """What the agent is told when the call does not run: a denial, or "call again" (``held``)."""
    forwarded: bytes
    """The exact argument bytes that run: the call's own, or the edit a person approved instead."""
    edited: bool = False
    """A person changed the arguments before approving; the agent is told so with its result."""

    @property
    def runs(self) -> bool:
        """Whether the call may run."""
        return self.decision.action is Action.ALLOW


class ToolCalls:
    """Decides on tool calls and forwards the allowed ones; owns the rate limits."""

    def __init__(
        self,
        catalog: Catalog,
        policy: PolicyFile,
        recorder: Recorder,
        broker: Broker,
        rounds: InputRounds,
        grants: Grants,
        *,
        clock: Callable[[], float] = time.time,
        keepalive_interval: float = KEEPALIVE_INTERVAL,
        patience: Callable[[str], float | None] = lambda client: DEFAULT_PATIENCE,
    ) -> None:
        self.catalog = catalog
        self.policy = policy
        self.recorder = recorder
        self.broker = broker
        self.rounds = rounds
        self.limiter = RateLimiter()
        self.paused = False
        """While paused, every call is denied without asking."""
        self.keepalive_interval = keepalive_interval
        self._clock = clock
        self.grants = grants
        """What a person approved "for this session", per principal and session."""
        self.patience = patience
        """A client's patience: seconds a held call waits before its agent is told to call again
        (None or 0: as long as the approval takes)."""
        self.held = HeldCalls(broker, KeptDecisions(clock), clock)
        self._waited: dict[str, float] = {}
        """Seconds each call waited for a person, from its answer until its decision row is written."""
        self.review = ResultReview(broker, recorder, lambda: self.keepalive_interval)
        """Shows a call's result to a person before the agent gets it, where a rule says ``review_result``."""

    async def call(
        self, caller: Caller, name: str, arguments: dict[str, Any] | None
    ) -> types.CallToolResult | types.InputRequiredResult:
        """Decide on one tool call and, if allowed, forward it. Never raises to the client.

        Only a 2026-era ``caller`` can get an ``InputRequiredResult`` (the upstream asked a question).
        """
        entry = self.catalog.tool(name)
        if entry is None:
            down = self.catalog.unavailable(name)
            return tool_error(
                f"approver: {down}"
                if down
                else f"approver: unknown tool {name!r}; list the tools again to see what exists"
            )
        arguments = dict(arguments or {})
        call_id = self.broker.new_id()
        if deeper_than(arguments):
            return tool_error(TOO_DEEP)
        try:
            argument_bytes = encode_arguments(arguments)
        except (TypeError, ValueError) as exc:
            return tool_error(f"approver denied this call: its arguments cannot be encoded ({exc})")
        patience = None if caller.modern else self.patience(caller.client)
        ruling = await self.rule(caller, entry, arguments, argument_bytes, call_id, patience)
        if not ruling.runs:
            return tool_error(ruling.message)
        # The outcome's duration is the upstream's own: a person's time to decide is in the reason.
        return await self._forward(caller, entry, call_id, ruling, time.monotonic())

    async def rule(
        self,
        caller: Caller,
        entry: ToolEntry,
        arguments: dict[str, Any],
        argument_bytes: bytes,
        call_id: str,
        patience: float | None,
    ) -> Ruling:
        """Decide on one call (asking a person if the policy says so) and commit its decision row.

        The one decision path for every call, whether it is then forwarded upstream (MCP) or
        answered to an agent's hook (:mod:`approver.gateway.hooks`). A request held for a person
        waits at most ``patience`` seconds (None: as long as the approval takes) before the agent
        is told to call again. Never raises: an error denies.
        """
        decision, decided_by, message, approved = await self._decide(
            caller, entry, arguments, argument_bytes, call_id, patience
        )
        waited = self._waited.pop(call_id, None)
        record = _decision_record(
            entry, caller.client, call_id, argument_bytes, decision, decided_by, message, waited, approved
        )
        record = dataclasses.replace(record, value=arguments)  # the audit row need not parse them again
        try:
            await self.recorder.decision(record)
        except AuditWriteError as exc:
            logger.error("audit log write failed; denying %s: %s", entry.ref.name, exc)
            text = (
                "approver denied this call: the audit log cannot be written, and approver never forwards "
                f"a call it has not recorded ({exc})"
            )
            return Ruling(Decision(Action.DENY, "error", text), "error", text, argument_bytes)
        except Exception as exc:
            logger.exception("audit log write failed unexpectedly")
            text = f"approver denied this call: the audit log cannot be written ({type(exc).__name__})"
            return Ruling(Decision(Action.DENY, "error", text), "error", text, argument_bytes)
        if decided_by == "held":
            return Ruling(decision, decided_by, message, argument_bytes)  # not a denial: call again
        if decision.action is not Action.ALLOW:
            text = f"approver denied this call: {message or decision.reason}"
            return Ruling(decision, decided_by, text, argument_bytes)
        return Ruling(decision, decided_by, "", approved or argument_bytes, edited=approved is not None)

    async def _decide(
        self,
        caller: Caller,
        entry: ToolEntry,
        arguments: dict[str, Any],
        argument_bytes: bytes,
        call_id: str,
        patience: float | None,
    ) -> tuple[Decision, str, str, bytes | None]:
        """The decision for one call as (decision, decided_by, message, the person's approved edit).

        Any error denies.
        """
        try:
            if self.paused:
                return (
                    Decision(Action.DENY, "paused", "approver is paused: every call is denied until resumed"),
                    "paused",
                    "",
                    None,
                )
            client = caller.client
            context = CallContext(client=client, tool=entry.ref, risk=entry.risk, arguments=arguments)
            decision = self.policy.policy.decide(context, self.limiter, self._clock())
            pin = self.catalog.pin_check(entry) if decision.action is not Action.DENY else entry.pin
            if pin.quarantined and decision.action is Action.ALLOW:
                # A changed definition may be a rug pull: a person sees the diff before any call.
                decision = Decision(
                    Action.REQUIRE_APPROVAL, "pin-changed", pin.reason, review_result=decision.review_result
                )
            if decision.action is not Action.REQUIRE_APPROVAL:
                return decision, "policy", "", None
            grant = GrantKey(caller.principal, caller.session, entry.ref.name)
            if not pin.quarantined and self.grants.covers(grant):
                allowed = Decision(Action.ALLOW, "session-grant", "allowed for this session by the user")
                return replace(allowed, review_result=decision.review_result), "user", "", None
            now = self._clock()

            def make_request() -> ApprovalRequest:
                return ApprovalRequest(
                    id=call_id,
                    client=client,
                    session=caller.session or "",
                    tool=entry.ref,
                    risk=entry.risk,
                    description=entry.exposed.description or "",
                    arguments=argument_bytes,
                    received=now,
                    deadline=now + self.broker.timeout,
                    rule=decision.rule,
                    pin_change=(pin.diff or pin.reason) if pin.quarantined else "",
                    lookalikes=tuple(self.catalog.lookalikes(entry.ref)),
                    input_schema=entry.exposed.input_schema,
                    argument_order=tuple(arguments),
                )

            # Bound to the principal (client and token), never to a name a header could carry.
            key = CallKey.of(caller.principal, entry.ref.name, argument_bytes)
            try:
                async with keepalive(
                    caller.progress_reporter(), self.broker.timeout, self.keepalive_interval
                ):
                    held = await self.held.decide(key, make_request, patience, client_gone(caller.scope))
                if held.person_seconds is not None:
                    # From the held call's arrival: a retry that joined it waited for the same person.
                    self._waited[call_id] = held.person_seconds
            except asyncio.CancelledError:
                await self._record_cancelled(entry, client, call_id, argument_bytes, decision)
                raise
            resolution = held.resolution
            approved = resolution is not None and resolution.verdict is Verdict.APPROVED
            edit = resolution.arguments if approved and resolution is not None else None
            if edit is not None and edit != argument_bytes:
                problem = check_approved(edit, entry.exposed.input_schema)
                if problem:
                    refused = f"approver could not use the user's edit of this call: {problem}"
                    return Decision(Action.DENY, decision.rule, refused), "error", "", None
            else:
                edit = None
            # Only "for this session" grants the tool for the session; "always" wrote a rule that may
            # cover less (one client, some arguments), which the policy now applies by itself.
            if approved and resolution is not None and resolution.scope is Scope.SESSION:
                self.grants.add(grant)
            ruled, decided_by, message = held_decision(
                held, decision.rule, pin.reason if pin.quarantined else "", self._clock()
            )
            return replace(ruled, review_result=decision.review_result), decided_by, message, edit
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("decision failed for %s", entry.ref.name)
            return (
                Decision(
                    Action.DENY,
                    "error",
                    f"approver could not decide on this call ({type(exc).__name__}: {exc})",
                ),
                "error",
                "",
                None,
            )

    async def _record_cancelled(
        self, entry: ToolEntry, client: str, call_id: str, argument_bytes: bytes, decision: Decision
    ) -> None:
        reason = "the client cancelled or went away while the call waited for approval"
        cancelled = Decision(Action.DENY, decision.rule, reason)
        record = _decision_record(entry, client, call_id, argument_bytes, cancelled, "cancelled", "")
        try:
            # Shielded: the task is being cancelled, but the row must still land.
            await asyncio.shield(self.recorder.decision(record))
        except Exception:
            logger.exception("could not record a cancelled approval")

    async def _forward(
        self, caller: Caller, entry: ToolEntry, call_id: str, ruling: Ruling, started: float
    ) -> types.CallToolResult | types.InputRequiredResult:
        flight = InFlight(caller, entry.ref.name, asyncio.Queue() if caller.modern else None)
        if not caller.modern:
            # Answered within this request: no task of its own (each costs a turn of the event
            # loop). Cancelling the request cancels the call, which tells the upstream.
            return await self._upstream_call(flight, entry, call_id, ruling, started)
        flight.task = asyncio.create_task(self._upstream_call(flight, entry, call_id, ruling, started))
        return await self.rounds.drive(flight)

    async def _upstream_call(
        self, flight: InFlight, entry: ToolEntry, call_id: str, ruling: Ruling, started: float
    ) -> types.CallToolResult:
        """Forward one decided call, record its outcome, and have its result reviewed if the rule says so.

        An agent whose call a person edited is told so with the result.
        """
        result, upstream_said = await self._upstream_result(flight, entry, call_id, ruling.forwarded, started)
        if upstream_said and ruling.decision.review_result:
            result = await self.review.review(flight.caller, entry, call_id, ruling.decision.rule, result)
        return told_edited(result, ruling.forwarded) if ruling.edited else result

    async def _upstream_result(
        self,
        flight: InFlight,
        entry: ToolEntry,
        call_id: str,
        argument_bytes: bytes,
        started: float,
    ) -> tuple[types.CallToolResult, bool]:
        """Forward the call's exact bytes and record its outcome; owns the call across input rounds.

        Returns the result, and whether it is the upstream's (not approver's own error).
        """
        upstream = self.catalog.upstream(entry.ref.server)
        outcome, error, result_bytes = "error", None, b""
        try:
            with self.rounds.flying(entry.ref.server, flight):
                # Forward exactly the bytes that were decided on (and shown, when a person approved).
                result: types.CallToolResult | None = None
                with flight.scope:
                    relay = _progress_relay(flight)
                    result = await upstream.call_tool(entry.ref.tool, argument_bytes, relay)
            if result is None:
                outcome = "cancelled"
                return tool_error("approver: the call was cancelled"), False
            result_bytes = canonical_json(result.model_dump(by_alias=True, mode="json", exclude_none=True))
            outcome = "error" if result.is_error else "ok"
            if result.is_error:
                error = _error_text(result)
            return result, True
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except UpstreamUnavailable as exc:
            error = str(exc)
            return tool_error(f"approver: {exc}"), False
        except MCPError as exc:
            error = f"upstream error {exc.error.code}: {exc.error.message}"
            if exc.error.code == types.CONNECTION_CLOSED and upstream.sign_in_reason is not None:
                error = (
                    f"upstream server {entry.ref.server!r} needs sign-in ({upstream.sign_in_reason}): "
                    f"{sign_in_hint(entry.ref.server)}"
                )
            elif exc.error.code == types.CONNECTION_CLOSED:
                error = (
                    f"upstream server {entry.ref.server!r} stopped during the call; approver is restarting it"
                )
            return tool_error(f"approver: {error}"), False
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.exception("forwarding %s failed", entry.ref.name)
            return tool_error(f"approver: the call to {entry.ref.name} failed ({error})"), False
        finally:
            record = OutcomeRecord(
                call_id=call_id,
                outcome=outcome,
                duration_ms=(time.monotonic() - started) * 1000.0,
                result_size=len(result_bytes),
                result_sha256=hashlib.sha256(result_bytes).hexdigest() if result_bytes else None,
                error=error,
            )
            # Queued before the client is answered, committed while the answer goes out: the
            # client does not wait for a row that changes nothing about its call.
            self.recorder.outcome_soon(record)


def _progress_relay(flight: InFlight) -> Any:
    if flight.caller.progress_reporter() is None:
        return None

    async def relay(progress: float, total: float | None, message: str | None) -> None:
        try:
            report = flight.caller.progress_reporter()  # the caller changes across input rounds
            if report is not None:
                await report(progress, total, message)
        except Exception as exc:
            # The client's stream may be gone between input rounds; progress is best effort.
            logger.debug("progress not relayed: %s", exc)

    return relay


def _decision_record(
    entry: ToolEntry,
    client: str,
    call_id: str,
    argument_bytes: bytes,
    decision: Decision,
    decided_by: str,
    message: str,
    waited: float | None = None,
    approved: bytes | None = None,
) -> DecisionRecord:
    """The audit row for one decision; ``waited`` is how long a person took to decide, if one was asked,
    and ``approved`` the arguments they approved in place of the call's own, if they edited them."""
    reason = message or decision.reason
    if waited is not None:
        reason += f"; waited {waited:.1f} s for a person"
    return DecisionRecord(
        call_id=call_id,
        client=client,
        server=entry.ref.server,
        tool=entry.ref.name,
        upstream_tool=entry.ref.tool,
        risk_class=entry.risk.risk_class.value,
        risk_level=entry.risk.level.value,
        risk_reasons=list(entry.risk.reasons),
        arguments=argument_bytes,
        decision=decision.action.value,
        decided_by=decided_by,
        rule=decision.rule,
        reason=reason,
        approved=approved,
    )


ERROR_TEXT_CAP: Final = 2000
"""Characters of an upstream's error result kept in the outcome row (the result itself is not stored)."""


def _error_text(result: types.CallToolResult) -> str:
    """The text an upstream's error result says, shortened for the outcome row."""
    text = " ".join(block.text for block in result.content if isinstance(block, types.TextContent)).strip()
    if not text:
        return "the server returned an error result without text"
    return text if len(text) <= ERROR_TEXT_CAP else text[: ERROR_TEXT_CAP - 1] + "…"
