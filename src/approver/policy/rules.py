"""Every rule of a policy file, where it came from, and removing or replacing one.

The Rules window and ``approver policy rules`` list a policy as rules: each ``tools`` entry, its
conditions and limits, each risk default and override, and the default. A rule's *name* is the
one the engine writes into each decision (``tools["git__*"].conditions[0]``), so the audit log
says how often it decided; its *origin* is the ``origin`` metadata the approval dialog writes,
or the file itself. Removing and replacing validate the whole new policy before the file is
replaced atomically, so a bad edit changes nothing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from approver.errors import ConfigError
from approver.policy.conditions import pointer_token, quote
from approver.policy.editing import load_policy_data, write_policy

_KEEP: Final = frozenset({"/version"})
"""Pointers that cannot be removed (the file would not be a policy any more)."""


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """One rule of the policy file."""

    name: str
    """As decisions name it: ``tools["x"]``, ``tools["x"].conditions[0]``, ``risk_defaults.write``..."""
    pointer: str
    """Where it is in the file (a JSON pointer)."""
    kind: str
    """``tool``, ``condition``, ``limit``, ``risk default``, ``risk override`` or ``default``."""
    summary: str
    """What it does, in one line."""
    origin: str
    """``file``, or ``dialog on DATE for call ID (TOOL by CLIENT)``."""
    fragment: Any
    """The rule's JSON as written."""
    depth: int
    """0 for a top-level rule, 1 for a condition or limit of a tools entry."""


def list_rules(data: Mapping[str, Any]) -> list[RuleInfo]:
    """Every rule in ``data`` (a valid policy), in file order, each entry's conditions and limits after it."""
    rules: list[RuleInfo] = []
    for pattern, entry in data.get("tools", {}).items():
        name, pointer = f"tools[{quote(pattern)}]", f"/tools/{pointer_token(pattern)}"
        rules.append(RuleInfo(name, pointer, "tool", _entry_summary(entry), _origin(entry), entry, 0))
        for i, condition in enumerate(entry.get("conditions", [])):
            summary = _condition_summary(condition)
            rules.append(
                RuleInfo(
                    f"{name}.conditions[{i}]",
                    f"{pointer}/conditions/{i}",
                    "condition",
                    summary,
                    _origin(condition),
                    condition,
                    1,
                )
            )
        for i, limit in enumerate(entry.get("limits", [])):
            summary = f"at most {limit['max']} per {limit['window']} ({limit.get('scope', 'tool')})"
            rules.append(
                RuleInfo(f"{name}.limits[{i}]", f"{pointer}/limits/{i}", "limit", summary, "file", limit, 1)
            )
    for risk_class, action in data.get("risk_defaults", {}).items():
        rules.append(
            RuleInfo(
                f"risk_defaults.{risk_class}",
                f"/risk_defaults/{risk_class}",
                "risk default",
                f"{action} tools classified {risk_class} that no tools entry names",
                "file",
                action,
                0,
            )
        )
    for pattern, override in data.get("risk_overrides", {}).items():
        what = ", ".join(f"{key} {override[key]}" for key in ("class", "level") if key in override)
        rules.append(
            RuleInfo(
                f"risk_overrides[{quote(pattern)}]",
                f"/risk_overrides/{pointer_token(pattern)}",
                "risk override",
                f"treat {pattern} as {what}",
                "file",
                override,
                0,
            )
        )
    default = data.get("default", "deny")
    rules.append(RuleInfo("default", "/default", "default", f"{default} everything else", "file", default, 0))
    return rules


def _entry_summary(entry: Mapping[str, Any]) -> str:
    text = str(entry.get("action", "allow"))
    if "clients" in entry:
        text += " for " + ", ".join(entry["clients"])
    conditions, limits = len(entry.get("conditions", [])), len(entry.get("limits", []))
    if conditions:
        text += (
            ", unless its condition holds"
            if conditions == 1
            else f", unless one of its {conditions} conditions holds"
        )
    if limits:
        text += f"; {limits} rate limit{'s' if limits > 1 else ''}"
    return text


def _condition_summary(condition: Mapping[str, Any]) -> str:
    text = str(condition["action"])
    if "clients" in condition:
        text += " for " + ", ".join(condition["clients"])
    tests = [
        f"{argument} {op} {json.dumps(operand, ensure_ascii=False)}"
        for argument, ops in condition.get("when", {}).items()
        for op, operand in ops.items()
    ]
    if tests:
        text += " when " + " and ".join(tests)
    return text


def _origin(rule: Mapping[str, Any]) -> str:
    origin = rule.get("origin")
    if not isinstance(origin, Mapping):
        return "file"
    text = f"dialog on {str(origin.get('at', '?')).replace('T', ' ')[:16]}"
    if origin.get("call_id"):
        text += f" for call {origin['call_id']}"
    if origin.get("tool"):
        text += f" ({origin['tool']}" + (f" by {origin['client']})" if origin.get("client") else ")")
    return text


def find_rule(data: Mapping[str, Any], name: str) -> RuleInfo:
    """The rule called ``name`` (as :attr:`RuleInfo.name`); ConfigError when there is none."""
    for rule in list_rules(data):
        if rule.name == name:
            return rule
    raise ConfigError("<policy>", "", f"no rule named {name}; `approver policy rules` lists them")


def with_rule_removed(data: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    """A copy of ``data`` without the rule at ``pointer``; a tools entry left empty is removed too."""
    if pointer in _KEEP:
        raise ConfigError("<policy>", pointer, "this part of the policy cannot be removed")
    result = copy.deepcopy(dict(data))
    parent, key = _parent(result, pointer)
    if isinstance(parent, list):
        del parent[int(key)]
    else:
        del parent[key]
    for entry in result.get("tools", {}).values():
        for name in ("conditions", "limits"):
            if name in entry and not entry[name]:
                del entry[name]
    return result


def with_rule_replaced(data: Mapping[str, Any], pointer: str, fragment: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``fragment`` at ``pointer`` (not validated: see :func:`write_policy`)."""
    result = copy.deepcopy(dict(data))
    parent, key = _parent(result, pointer)
    if isinstance(parent, list):
        parent[int(key)] = copy.deepcopy(fragment)
    else:
        parent[key] = copy.deepcopy(fragment)
    return result


def remove_rule(path: Path, pointer: str) -> None:
    """Remove the rule at ``pointer`` from the policy file (validated, written atomically)."""
    write_policy(path, with_rule_removed(load_policy_data(path), pointer))


def replace_rule(path: Path, pointer: str, fragment: Any) -> None:
    """Put ``fragment`` at ``pointer`` in the policy file (validated, written atomically)."""
    write_policy(path, with_rule_replaced(load_policy_data(path), pointer, fragment))


def _parent(data: Any, pointer: str) -> tuple[Any, str]:
    tokens = [token.replace("~1", "/").replace("~0", "~") for token in pointer.lstrip("/").split("/")]
    node = data
    for token in tokens[:-1]:
        node = node[int(token)] if isinstance(node, list) else node.get(token)
        if node is None:
            raise ConfigError("<policy>", pointer, "no such rule in the file (was it changed meanwhile?)")
    key = tokens[-1]
    present = (isinstance(node, list) and key.isdigit() and int(key) < len(node)) or (
        isinstance(node, dict) and key in node
    )
    if not present:
        raise ConfigError("<policy>", pointer, "no such rule in the file (was it changed meanwhile?)")
    return node, key
