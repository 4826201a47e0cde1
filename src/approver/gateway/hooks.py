"""The hook door: an agent's own tool calls, decided like MCP calls and answered to its hook.

``approver hook claude-code`` POSTs each ``PreToolUse`` payload to ``/hooks/claude-code`` on the
gateway, behind the same front door (Host, Origin, the client's token) as ``/mcp``. Here the call
becomes a tool named ``claude-code__<Tool>`` (``claude-code__Bash``) with a description and an
input schema (:mod:`approver.agents.builtin`) and a risk read from its input
(:mod:`approver.agents.risk`, then the policy's ``risk_overrides``), and goes through
:meth:`ToolCalls.rule <approver.gateway.tools.ToolCalls.rule>`: the same policy, session grants,
held calls, dialog and audit log as an MCP call. Nothing is forwarded anywhere: an allowed call
is answered ``allow`` (with ``updatedInput`` when a person edited it) and the agent runs the tool
itself, which the outcome row says (:data:`~approver.audit.log.AGENT_RUNS`). These tools are never
in the catalog, so no MCP client lists or calls them.

The hook sends how long it may still wait (``X-Approver-Hook-Budget``, seconds). That is the
call's patience: a call still held for a person then is answered ``deny`` with "call again" (the
dialog stays open, and the agent's identical retry joins it), before the agent's own timeout can
cut the hook off.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import mcp.types as types
from starlette.types import Receive, Scope, Send

from approver.agents.builtin import builtin_tool
from approver.agents.claude_code import AGENT, MAX_PAYLOAD, HookCall, HookPayloadError, answer, parse_payload
from approver.agents.risk import builtin_risk
from approver.approval.editing import encode_arguments
from approver.approval.keepalive import Report
from approver.audit.log import AGENT_RUNS, OutcomeRecord
from approver.calls import ToolRef
from approver.gateway.catalog import ToolEntry
from approver.gateway.front import HOOKS_PATH, read_body
from approver.gateway.request_scope import client_name, principal_of
from approver.gateway.tools import Ruling, ToolCalls

logger = logging.getLogger(__name__)

BUDGET_HEADER: Final = "x-approver-hook-budget"
"""Seconds the hook may still wait for an answer."""
DEFAULT_BUDGET: Final = 55.0
"""The budget of a request that does not say (comfortably inside any hook timeout in use)."""
AGENTS: Final = frozenset({AGENT})
"""The agents whose hooks the door answers."""


class HookCaller:
    """The client end of a hook call: who it is, its session, and its HTTP request."""

    modern = False

    def __init__(self, client: str, principal: str, session: str, scope: Mapping[str, Any]) -> None:
        self.client = client
        self.principal = principal
        self.session = session or None
        """The agent's own session id (Claude Code's ``session_id``): "approve for this session" lasts
        as long as it, for this principal only."""
        self.scope: Mapping[str, Any] | None = scope

    def progress_reporter(self) -> Report | None:
        """A hook cannot take progress."""
        return None

    async def ask(self, request: types.ServerRequest, answer_type: type[Any]) -> Any:
        """Nothing is forwarded for a hook call, so no upstream ever asks the agent anything."""
        raise RuntimeError("a hook call has no upstream to ask for")

    async def notify(self, notification: types.ServerNotification) -> None:
        """Nothing to notify a hook of."""


class AgentHooks:
    """Answers agents' hooks: an ASGI app for ``POST /hooks/<agent>``, behind the front door."""

    def __init__(self, tools: ToolCalls, protected: Sequence[Path] = ()) -> None:
        self.tools = tools
        self.protected = tuple(protected)
        """approver's own folders: an agent writing there is critical, reading there high."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the hook's payload, decide, and answer it with the hook's JSON."""
        agent = str(scope.get("path", ""))[len(HOOKS_PATH) :]
        if agent not in AGENTS:
            await _respond(send, 404, f"approver has no hook for {agent[:40]!r}; it has {', '.join(AGENTS)}")
            return
        if scope.get("method") != "POST":
            await _respond(send, 405, "POST the hook's JSON payload")
            return
        body = await read_body(receive, MAX_PAYLOAD)  # past it, parse_payload says it is too large
        if body is None:
            return  # the hook went away before it finished sending
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        budget = _budget(headers.get(BUDGET_HEADER))
        try:
            call = parse_payload(body)
        except HookPayloadError as exc:
            await _respond(send, 200, answer("ask", f"approver could not read this call: {exc}"))
            return
        caller = HookCaller(client_name(scope) or AGENT, principal_of(scope) or AGENT, call.session_id, scope)
        await _respond(send, 200, await self.decide(caller, call, budget))

    async def decide(self, caller: HookCaller, call: HookCall, budget: float) -> bytes:
        """The hook's answer to ``call``: allow, deny, or (approver's own tools) allow at once."""
        if call.own:
            return answer("allow", "approver decides its own tools when the call reaches it")
        name = f"{AGENT}__{call.tool_name}"
        ref = ToolRef(server=AGENT, tool=call.tool_name, name=name, prefix=AGENT)
        described = builtin_tool(call.tool_name)
        risk = builtin_risk(call.tool_name, call.tool_input, cwd=call.cwd, protected=self.protected)
        risk = self.tools.policy.policy.apply_overrides(ref, risk)
        exposed = types.Tool(
            name=name, description=described.description, input_schema=dict(described.input_schema)
        )
        entry = ToolEntry(ref, exposed, risk)
        try:
            argument_bytes = encode_arguments(call.tool_input)
        except (TypeError, ValueError) as exc:
            return answer("deny", f"approver denied this call: its input cannot be encoded ({exc})")
        call_id = self.tools.broker.new_id()
        ruling = await self.tools.rule(caller, entry, call.tool_input, argument_bytes, call_id, budget)
        if not ruling.runs:
            return answer("deny", ruling.message)
        # No duration (NaN is stored as NULL): approver does not run the tool, the agent does.
        self.tools.recorder.outcome_soon(OutcomeRecord(call_id, AGENT_RUNS, math.nan))
        return _allowed(ruling)


def _allowed(ruling: Ruling) -> bytes:
    reason = f"approver: {ruling.decision.reason}"
    if not ruling.edited:
        return answer("allow", reason)
    ran = ruling.forwarded.decode(errors="replace")
    context = (
        "The user edited this tool call in approver before approving it; it runs with this input "
        f"instead of yours: {ran}"
    )
    return answer("allow", reason, updated_input=ruling.forwarded, context=context)


def _budget(value: str | None) -> float:
    try:
        budget = float(value) if value is not None else DEFAULT_BUDGET
    except ValueError:
        return DEFAULT_BUDGET
    return budget if math.isfinite(budget) and budget > 0 else DEFAULT_BUDGET


async def _respond(send: Send, status: int, body: bytes | str) -> None:
    if isinstance(body, str):
        body = json.dumps({"error": body}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
