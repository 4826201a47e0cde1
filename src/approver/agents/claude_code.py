"""Claude Code's ``PreToolUse`` hook: the JSON it sends on stdin, and the answer it reads on stdout.

Claude Code runs a command hook before each tool call and writes one JSON object to its stdin:
``session_id``, ``cwd``, ``hook_event_name`` (``PreToolUse``), ``tool_name``, ``tool_input``,
``tool_use_id`` and more. The hook answers with exit status 0 and one JSON object on stdout::

    {"hookSpecificOutput": {"hookEventName": "PreToolUse",
                            "permissionDecision": "allow" | "deny" | "ask",
                            "permissionDecisionReason": "...",
                            "updatedInput": {...}, "additionalContext": "..."}}

``deny``'s reason is shown to the model, ``ask``'s to the person in Claude Code's own prompt;
``updatedInput`` replaces the tool's input; ``additionalContext`` is added to what the model
reads. Import-light: the hook command imports this and must answer within seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final, Literal

AGENT: Final = "claude-code"
"""The agent's name: its hook's path on the gateway, and the prefix of its tools' names."""

OWN_TOOLS_PREFIX: Final = "mcp__approver__"
"""How Claude Code names the tools of approver's own MCP entry: the gateway decides those itself."""

MAX_PAYLOAD: Final = 4 * 1024 * 1024
"""The largest hook input approver reads (a ``Write`` of a big file is large, but not this large)."""

Permission = Literal["allow", "deny", "ask"]


class HookPayloadError(ValueError):
    """The hook's input is not a ``PreToolUse`` call approver can read; the message says why."""


@dataclass(frozen=True, slots=True)
class HookCall:
    """One tool call, as the hook received it."""

    tool_name: str
    tool_input: dict[str, Any] = field(hash=False)
    session_id: str = ""
    cwd: str = ""
    tool_use_id: str = ""

    @property
    def own(self) -> bool:
        """A call of one of approver's own MCP tools: the gateway decides it when it arrives there."""
        return self.tool_name.startswith(OWN_TOOLS_PREFIX)


def parse_payload(data: bytes) -> HookCall:
    """The call in a hook's stdin; raises :class:`HookPayloadError` saying what is wrong."""
    if len(data) > MAX_PAYLOAD:
        raise HookPayloadError(f"the hook's input is over {MAX_PAYLOAD:,} bytes")
    try:
        payload = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise HookPayloadError(f"the hook's input is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise HookPayloadError("the hook's input is not a JSON object")
    event = payload.get("hook_event_name", "PreToolUse")
    if event != "PreToolUse":
        raise HookPayloadError(f"approver answers PreToolUse hooks, not {str(event)[:40]!r}")
    name = payload.get("tool_name")
    if not isinstance(name, str) or not name or len(name) > 128:
        raise HookPayloadError("the hook's input has no tool_name (a string of 1 to 128 characters)")
    tool_input = payload.get("tool_input", {})
    if not isinstance(tool_input, dict):
        raise HookPayloadError("the hook's tool_input is not a JSON object")

    def text(key: str) -> str:
        value = payload.get(key, "")
        return value if isinstance(value, str) else ""

    return HookCall(name, tool_input, text("session_id"), text("cwd"), text("tool_use_id"))


def answer(
    permission: Permission, reason: str, *, updated_input: bytes | None = None, context: str = ""
) -> bytes:
    """The hook's stdout for a decision.

    ``updated_input`` is spliced in as the exact canonical JSON bytes a person approved, so what
    Claude Code runs is byte for byte what was approved and recorded.
    """
    output: dict[str, Any] = {
        "hookEventName": "PreToolUse",
        "permissionDecision": permission,
        "permissionDecisionReason": reason,
    }
    if context:
        output["additionalContext"] = context
    body = json.dumps({"hookSpecificOutput": output}, ensure_ascii=False).encode()
    if updated_input is None:
        return body
    # json.dumps ends the object with "}}": put the approved bytes in before both braces close.
    return body[:-2] + b', "updatedInput": ' + updated_input + b"}}"


def read_answer(data: bytes) -> Permission:
    """The decision in a hook answer; raises :class:`HookPayloadError` when it is not one."""
    try:
        output = json.loads(data)["hookSpecificOutput"]
        permission = output["permissionDecision"]
    except (ValueError, KeyError, TypeError) as exc:
        raise HookPayloadError(f"not a hook answer ({type(exc).__name__})") from None
    if output.get("hookEventName") != "PreToolUse" or permission not in ("allow", "deny", "ask"):
        raise HookPayloadError("not a PreToolUse answer")
    result: Permission = permission
    return result
