"""Resource reads, prompt gets and completions: decided, asked about and recorded like tool calls.

A ``resources/read`` can return any file a filesystem server can reach (approver's own
``tokens.json`` through a ``file:///{+path}`` template), so these requests pass the same gate as
``tools/call``: the policy's ``resources``, ``prompts`` and ``completion`` sections (else its
``default``) allow, deny or ask a person (:meth:`Policy.decide_request`); the decision row is
committed before anything is forwarded (a failed write denies); an outcome row follows. A denial
is a JSON-RPC error, since these requests have no tool result to carry one.

In the audit log such a row's ``tool`` is the method (``resources/read``, ``prompts/get``,
``completion/complete``), which no tool name can be, and ``upstream_tool`` is what it targets:
the URI, the upstream prompt name, or the prompt or URI template a completion is for.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from approver.approval.broker import ApprovalRequest, Broker, Scope, Verdict
from approver.approval.keepalive import KEEPALIVE_INTERVAL, keepalive, unless_gone
from approver.audit.log import AuditWriteError, DecisionRecord, OutcomeRecord, canonical_json
from approver.audit.recorder import Recorder
from approver.calls import Action, Decision, RequestKind, RequestRef, Risk, RiskClass, RiskLevel, ToolRef
from approver.gateway.callers import Caller
from approver.gateway.grants import GrantKey, Grants, request_subject
from approver.gateway.request_scope import client_gone
from approver.policy.file import PolicyFile
from approver.upstream.status import UpstreamUnavailable

logger = logging.getLogger(__name__)

REQUEST_DENIED: Final = -32003
"""The JSON-RPC error code of a resource read, prompt get or completion approver did not forward."""

_PARAMS_JSON: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_RISK: Final = {
    RequestKind.RESOURCE: Risk(RiskClass.READ, RiskLevel.LOW, ("reading a resource changes nothing",)),
    RequestKind.PROMPT: Risk(RiskClass.READ, RiskLevel.LOW, ("a prompt is text for the model",)),
    RequestKind.COMPLETION: Risk(RiskClass.READ, RiskLevel.LOW, ("a completion suggests argument values",)),
}

T = TypeVar("T", bound=BaseModel)


class PolicedRequests:
    """Decides on resource reads, prompt gets and completions, and forwards the allowed ones."""

    def __init__(
        self,
        policy: PolicyFile,
        recorder: Recorder,
        broker: Broker,
        grants: Grants,
        paused: Callable[[], bool],
        *,
        keepalive_interval: Callable[[], float] = lambda: KEEPALIVE_INTERVAL,
    ) -> None:
        self.policy = policy
        self.recorder = recorder
        self.broker = broker
        self.grants = grants
        self._paused = paused
        self._keepalive_interval = keepalive_interval

    async def run(
        self, caller: Caller, request: RequestRef, params: dict[str, Any], forward: Callable[[], Awaitable[T]]
    ) -> T:
        """Decide on ``request`` (whose parameters are ``params``), record it, and forward it if allowed.

        Raises :class:`MCPError` when it is denied or the upstream fails.
        """
        started = time.monotonic()
        call_id = self.broker.new_id()
        try:
            params_bytes = _PARAMS_JSON.encode(params).encode()
        except (TypeError, ValueError) as exc:
            raise MCPError(
                REQUEST_DENIED, f"approver denied this request: it cannot be encoded ({exc})"
            ) from None
        decision, decided_by = await self._decide(caller, request, params_bytes, call_id)
        try:
            await self.recorder.decision(
                _record(request, caller.client, call_id, params_bytes, decision, decided_by)
            )
        except AuditWriteError as exc:
            logger.error("audit log write failed; denying %s: %s", request.describe(), exc)
            raise MCPError(
                REQUEST_DENIED,
                "approver denied this request: the audit log cannot be written, and approver never forwards "
                f"a request it has not recorded ({exc})",
            ) from None
        except Exception as exc:
            logger.exception("audit log write failed unexpectedly")
            raise MCPError(
                REQUEST_DENIED,
                f"approver denied this request: the audit log cannot be written ({type(exc).__name__})",
            ) from None
        if decision.action is not Action.ALLOW:
            raise MCPError(REQUEST_DENIED, f"approver denied this request: {decision.reason}")
        return await self._forward(request, call_id, forward, started)

    async def _decide(
        self, caller: Caller, request: RequestRef, params_bytes: bytes, call_id: str
    ) -> tuple[Decision, str]:
        """The decision as (decision, decided_by). Any error denies."""
        try:
            if self._paused():
                return Decision(
                    Action.DENY, "paused", "approver is paused: every call is denied until resumed"
                ), "paused"
            decision = self.policy.policy.decide_request(request)
            if decision.action is not Action.REQUIRE_APPROVAL:
                return decision, "policy"
            grant = GrantKey(caller.principal, caller.session, request_subject(request))
            if self.grants.covers(grant):
                return Decision(Action.ALLOW, "session-grant", "allowed for this session by the user"), "user"
            return await self._ask(caller, request, params_bytes, call_id, decision, grant)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("decision failed for %s", request.describe())
            reason = f"approver could not decide on this request ({type(exc).__name__}: {exc})"
            return Decision(Action.DENY, "error", reason), "error"

    async def _ask(
        self,
        caller: Caller,
        request: RequestRef,
        params_bytes: bytes,
        call_id: str,
        decision: Decision,
        grant: GrantKey,
    ) -> tuple[Decision, str]:
        now = time.time()
        asked = ApprovalRequest(
            id=call_id,
            client=caller.client,
            session=caller.session or "",
            tool=ToolRef(request.server, request.target, request.name or request.target, request.prefix),
            risk=_RISK[request.kind],
            description=request.describe(),
            arguments=params_bytes,
            received=now,
            deadline=now + self.broker.timeout,
            rule=decision.rule,
            request=request,
        )
        try:
            async with keepalive(caller.progress_reporter(), self.broker.timeout, self._keepalive_interval()):
                resolution = await unless_gone(self.broker.submit(asked), client_gone(caller.scope))
        except asyncio.CancelledError:
            gone = Decision(
                Action.DENY, decision.rule, "the client cancelled or went away while the request waited"
            )
            record = _record(request, caller.client, call_id, params_bytes, gone, "cancelled")
            try:
                await asyncio.shield(self.recorder.decision(record))  # the row must land even now
            except Exception:
                logger.exception("could not record a cancelled approval")
            raise
        if resolution is None:
            return Decision(
                Action.DENY, decision.rule, "the client went away while the request waited"
            ), "cancelled"
        if resolution.verdict is Verdict.APPROVED:
            if resolution.scope is not Scope.ONCE:
                self.grants.add(grant)
            return Decision(Action.ALLOW, decision.rule, "approved by the user"), "user"
        reason = resolution.message or {
            Verdict.TIMED_OUT: "nobody approved this request in time",
            Verdict.CANCELLED: "the request was withdrawn",
        }.get(resolution.verdict, "denied by the user")
        return Decision(Action.DENY, decision.rule, reason), resolution.decided_by

    async def _forward(
        self, request: RequestRef, call_id: str, forward: Callable[[], Awaitable[T]], started: float
    ) -> T:
        outcome, error, result_bytes = "error", None, b""
        try:
            result = await forward()
            result_bytes = canonical_json(result.model_dump(by_alias=True, mode="json", exclude_none=True))
            outcome = "ok"
            return result
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except UpstreamUnavailable as exc:
            error = str(exc)
            raise MCPError(REQUEST_DENIED, f"approver: {exc}") from None
        except MCPError as exc:
            error = f"upstream error {exc.error.code}: {exc.error.message}"
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.exception("forwarding %s failed", request.describe())
            raise MCPError(REQUEST_DENIED, f"approver: {request.describe()} failed ({error})") from None
        finally:
            self.recorder.outcome_soon(
                OutcomeRecord(
                    call_id=call_id,
                    outcome=outcome,
                    duration_ms=(time.monotonic() - started) * 1000.0,
                    result_size=len(result_bytes),
                    result_sha256=hashlib.sha256(result_bytes).hexdigest() if result_bytes else None,
                    error=error,
                )
            )


def _record(
    request: RequestRef, client: str, call_id: str, params_bytes: bytes, decision: Decision, decided_by: str
) -> DecisionRecord:
    """The audit row for one decision on a request besides a tool call."""
    risk = _RISK[request.kind]
    return DecisionRecord(
        call_id=call_id,
        client=client,
        server=request.server,
        tool=request.kind.value,
        upstream_tool=request.target,
        risk_class=risk.risk_class.value,
        risk_level=risk.level.value,
        risk_reasons=list(risk.reasons),
        arguments=params_bytes,
        decision=decision.action.value,
        decided_by=decided_by,
        rule=decision.rule,
        reason=decision.reason,
    )
