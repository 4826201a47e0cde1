"""Policy rules in words: ``tools["files__delete"].conditions[0]`` is "condition 1 of the rule for
files__delete". Notifications say the rule this way; the audit log keeps the exact path."""

from __future__ import annotations

import json
import re
from typing import Final

_TOOLS_RULE: Final = re.compile(r'tools\[("(?:[^"\\]|\\.)*")\](?:\.(conditions|limits)\[(\d+)\])?')
_PARTS: Final = {"conditions": "condition", "limits": "rate limit"}
_SPECIAL: Final = {
    "default": "the policy's default",
    "paused": "approver being paused",
    "pin-changed": "a changed tool definition",
    "error": "an error while deciding",
    "session-grant": "an earlier approval for this session",
}


def rule_in_words(rule: str) -> str:
    """``rule`` (as decisions and the audit log name it) said the way a person would."""
    if rule in _SPECIAL:
        return _SPECIAL[rule]
    if rule.startswith("risk_defaults."):
        return f"the policy's default for {rule.removeprefix('risk_defaults.')} tools"
    match = _TOOLS_RULE.fullmatch(rule)
    if match is None:
        return f"rule {rule}"
    try:
        pattern = json.loads(match.group(1))
    except ValueError:
        pattern = match.group(1)
    rule_for = f"the rule for {pattern}"
    if match.group(2) is None:
        return rule_for
    return f"{_PARTS[match.group(2)]} {int(match.group(3)) + 1} of {rule_for}"


def reason_in_words(reason: str, rule: str) -> str:
    """A decision's reason without its leading "denied by policy rule <rule>:" (the rule is said apart)."""
    for verb in ("denied", "allowed", "approval required"):
        prefix = f"{verb} by policy rule {rule}"
        if reason.startswith(prefix):
            return reason[len(prefix) :].removeprefix(":").strip()
    return reason
