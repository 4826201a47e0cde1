"""The rule "Always approve…" writes, scoped to what the person chose.

A person approving a call always can say how far the rule reaches: this client or all clients,
any arguments or arguments like these, per argument an exact value, a folder the path lies under,
a glob, the words a command starts with, or a URL's host. :func:`choices_for` offers what fits each
argument of the call; :func:`with_scoped_rule` adds the rule to the policy JSON:

- all clients and any arguments: the tool's entry is set to allow (as before scopes existed);
- otherwise a condition ``{"clients": [...], "when": {...}, "action": "allow"}`` is appended to the
  tool's own entry, after any conditions already there (hand-written guards keep precedence).
  A tool without an entry of its own gets one that keeps deciding as before for every other
  call: it copies the entry that decided this call (its conditions, limits, which keep counting
  in the same buckets) or, when the risk default or the default decided, their action.

Each rule carries ``origin``: the dialog, when, for which call, tool and client.
"""

from __future__ import annotations

import copy
import enum
import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from approver.calls import Action, CallContext, Risk, ToolRef
from approver.errors import ConfigError
from approver.policy.conditions import client_matches, normalise_path, quote, url_host
from approver.policy.editing import tool_rule_key
from approver.policy.engine import Policy

COMMAND_ARGUMENTS: Final = frozenset(
    {"command", "cmd", "script", "shell_command", "commandline", "command_line"}
)
"""Argument names whose string value is a shell command."""


class Scope(enum.StrEnum):
    """How an argument is matched by the rule."""

    ANY = "any"
    EXACT = "equals"
    PATH_UNDER = "path_under"
    GLOB = "glob"
    COMMAND_PREFIX = "command_prefix"
    URL_HOST = "url_host"


@dataclass(frozen=True, slots=True)
class ArgumentChoice:
    """One way to match one argument: the operator and its operand (editable for folders, globs, words)."""

    argument: str
    scope: Scope
    operand: Any = None

    def describe(self) -> str:
        """The choice in words, for a list a person picks from."""
        if self.scope is Scope.ANY:
            return "any value"
        shown = self.operand if isinstance(self.operand, str) else _json(self.operand)
        return {
            Scope.EXACT: f"exactly {shown}",
            Scope.PATH_UNDER: f"a path under {shown}",
            Scope.GLOB: f"a path matching {shown}",
            Scope.COMMAND_PREFIX: f"a command starting with {shown}",
            Scope.URL_HOST: f"a URL on {shown}",
        }[self.scope]


@dataclass(frozen=True, slots=True)
class RuleScope:
    """What an "Always approve…" rule covers."""

    client: str | None
    """The one client it is for; None for every client."""
    arguments: tuple[ArgumentChoice, ...] = ()
    """How each argument must look; arguments not named, or ``any value``, may be anything."""

    @property
    def blanket(self) -> bool:
        """Every client, any arguments: the tool is simply allowed."""
        return self.client is None and all(choice.scope is Scope.ANY for choice in self.arguments)


def choices_for(arguments: Mapping[str, Any]) -> dict[str, list[ArgumentChoice]]:
    """For each top-level argument of a call, the ways a rule can match it; ``any value`` first."""
    found: dict[str, list[ArgumentChoice]] = {}
    for name, value in arguments.items():
        options = [ArgumentChoice(name, Scope.ANY), ArgumentChoice(name, Scope.EXACT, value)]
        if isinstance(value, str):
            options += _string_choices(name, value)
        found[name] = options
    return found


def _string_choices(name: str, value: str) -> list[ArgumentChoice]:
    options = []
    normal = normalise_path(value)
    if normal is not None and normal != "/":
        folder = posixpath.dirname(normal)
        options.append(ArgumentChoice(name, Scope.PATH_UNDER, folder))
        extension = posixpath.splitext(normal)[1]
        if extension:
            options.append(ArgumentChoice(name, Scope.GLOB, f"{folder.rstrip('/')}/*{extension}"))
    host = url_host(value)
    if host is not None:
        options.append(ArgumentChoice(name, Scope.URL_HOST, host))
    if name.lower() in COMMAND_ARGUMENTS:
        words = value.split()
        if words:
            prefix = " ".join(words[:2]) if len(words) > 1 and not words[1].startswith("-") else words[0]
            options.append(ArgumentChoice(name, Scope.COMMAND_PREFIX, prefix))
    return options


def origin(call_id: str, tool: ToolRef, client: str, now: datetime | None = None) -> dict[str, str]:
    """The ``origin`` metadata of a rule added from the dialog now."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "via": "dialog",
        "at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "call_id": call_id,
        "client": client,
        "tool": tool.name,
    }


def condition_for(scope: RuleScope, origin: Mapping[str, str]) -> dict[str, Any] | None:
    """The condition that allows what ``scope`` covers; None for a blanket rule (no condition)."""
    if scope.blanket:
        return None
    condition: dict[str, Any] = {}
    if scope.client is not None:
        condition["clients"] = [scope.client]
    when = {
        choice.argument: {choice.scope.value: copy.deepcopy(choice.operand)}
        for choice in scope.arguments
        if choice.scope is not Scope.ANY
    }
    if when:
        condition["when"] = when
    condition["action"] = Action.ALLOW.value
    condition["origin"] = dict(origin)
    return condition


@dataclass(frozen=True, slots=True)
class ScopedRule:
    """The policy with the new rule, and where the rule is."""

    data: dict[str, Any]
    """The whole new policy JSON (validated)."""
    rule: str
    """The rule's name, as decisions will name it (``tools["x"].conditions[1]``)."""
    pointer: str
    fragment: dict[str, Any]
    """The rule itself: the condition, or the tools entry."""


def with_scoped_rule(
    data: Mapping[str, Any],
    tool: ToolRef,
    risk: Risk,
    caller: str,
    scope: RuleScope,
    origin: Mapping[str, str],
) -> ScopedRule:
    """``data`` (a valid policy) with the rule for ``scope`` added; the result is validated (ConfigError)."""
    result: dict[str, Any] = copy.deepcopy(dict(data))
    tools: dict[str, Any] = result.setdefault("tools", {})
    name = tool_rule_key(tool)  # names the server too, so no other server's tool falls under it
    key = f"tools[{quote(name)}]"
    pointer = "/tools/" + name.replace("~", "~0").replace("/", "~1")
    condition = condition_for(scope, origin)
    if name not in tools:
        tools[name] = _entry_like_now(data, tool, risk, caller)
    entry = tools[name]
    if not client_matches(entry.get("clients"), caller):
        raise ConfigError(
            "<policy>",
            pointer,
            f"the entry for {name} applies only to the clients {', '.join(entry['clients'])}, so a rule "
            f"for {caller} cannot go into it; edit the policy file by hand",
        )
    if condition is None:
        entry["action"] = Action.ALLOW.value
        entry["origin"] = dict(origin)
        rule, rule_pointer, fragment = key, pointer, entry
    else:
        conditions = entry.setdefault("conditions", [])
        conditions.append(condition)
        index = len(conditions) - 1
        rule, rule_pointer = f"{key}.conditions[{index}]", f"{pointer}/conditions/{index}"
        fragment = condition
    Policy.from_data(result, "<the policy with the new rule>")
    return ScopedRule(result, rule, rule_pointer, copy.deepcopy(fragment))


def _entry_like_now(data: Mapping[str, Any], tool: ToolRef, risk: Risk, caller: str) -> dict[str, Any]:
    """A new entry for ``tool`` that decides as the policy does now for ``caller``'s calls."""
    policy = Policy.from_data(data)
    ctx = CallContext(caller, tool, risk)
    pattern = policy.entry_pattern(ctx)
    if pattern is None:
        return {"action": policy.decide_without_arguments(ctx).action.value}
    entry = copy.deepcopy(dict(data["tools"][pattern]))
    entry.pop("origin", None)
    for i, limit in enumerate(entry.get("limits", [])):
        # The copied entry's own counter: its calls and this tool's keep counting in one bucket.
        limit.setdefault("counter", f"tools[{quote(pattern)}].limits[{i}]")
    return entry


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
