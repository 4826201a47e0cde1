"""The policy engine: whether a call or request is allowed, denied or held for a person's approval.

A policy is a JSON file (schema ``config/schemas/policy.schema.json``), a superset of PolicyLayer v1.
``tools`` patterns are names or ``fnmatch`` globs that name a tool through its exposed name or
its server-qualified identity ``server__tool``, never through the bare upstream name, which any
server could choose (see :mod:`approver.policy.matching`).

Precedence for a tool call, in order:

1. The single most specific matching ``tools`` entry decides. An entry with ``clients`` matches
   only calls from those clients (names or globs); for anyone else it is as if it were absent.
   An exact name beats any glob; of several exact names, the exposed name beats
   ``server__tool``; of globs, the one with more literal (non-wildcard) characters wins; a tie
   goes to the entry written first. Within the entry the first condition that holds (its
   ``when`` tests pass and the call comes from one of its ``clients``) gives the action, else
   the entry's ``action`` (allow when absent, as in PolicyLayer).
2. No entry matches: ``risk_defaults[risk class]``, after ``risk_overrides`` are applied.
3. Otherwise ``default`` (deny when absent).
4. When the action is allow or require_approval, the matched entry's limits are checked; a full
   bucket turns the call into a deny with ``Decision.retry_after``. A call that passes counts in
   every bucket it passed; denied calls count nowhere.

Resource reads, prompt gets and completions (:meth:`Policy.decide_request`) are decided by the
most specific entry of ``resources`` (by URI, optionally ``server__`` qualified), ``prompts``
(named like tools) or ``completion`` (by server name), else by ``default``.

Time is injected (``now``) and rate-limit state lives in a
:class:`~approver.policy.limits.RateLimiter` that outlives policy reloads. Argument conditions
are in :mod:`approver.policy.conditions`, limits in :mod:`approver.policy.limits`, and the edits
the app makes to the file in :mod:`approver.policy.editing`.

``risk_overrides`` are applied by :meth:`Policy.apply_overrides`, which returns the corrected
:class:`Risk`; :meth:`Policy.decide` applies them itself, so callers may pass the classifier's risk.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, TypeVar

from approver.calls import (
    Action,
    CallContext,
    Decision,
    RequestKind,
    RequestRef,
    Risk,
    RiskClass,
    RiskLevel,
    ToolRef,
)
from approver.config.schema import load_json_file, validate
from approver.errors import ConfigError
from approver.policy.conditions import Condition, client_matches, compile_condition, pointer_token, quote
from approver.policy.limits import BucketKey, Limit, RateLimiter, compile_limit
from approver.policy.matching import Rank, name_rank, server_rank, uri_rank

DEFAULT_POLICY_DATA: Final[Mapping[str, Any]] = {
    "description": "approver's safe default: reads run, everything else asks you first.",
    "version": "1",
    "default": "require_approval",
    "risk_defaults": {
        cls.value: "allow" if cls is RiskClass.READ else "require_approval" for cls in RiskClass
    },
    "tools": {},
    "resources": {"*": {"action": "allow", "description": "reading a resource changes nothing"}},
    "prompts": {"*": {"action": "allow", "description": "a prompt is text for the model"}},
    "completion": {"*": {"action": "allow", "description": "suggestions while typing an argument"}},
}
"""The policy used when the user has none, and the start of a policy file approver creates."""

_VERBS: Final = {Action.ALLOW: "allowed", Action.DENY: "denied", Action.REQUIRE_APPROVAL: "approval required"}

REQUEST_SECTIONS: Final = {
    RequestKind.RESOURCE: "resources",
    RequestKind.PROMPT: "prompts",
    RequestKind.COMPLETION: "completion",
}
"""The policy section that decides each kind of request besides tool calls."""


@dataclass(frozen=True, slots=True)
class _Entry:
    pattern: str
    rule: str
    action: Action
    reason: str
    conditions: tuple[Condition, ...]
    limits: tuple[Limit, ...]
    clients: tuple[str, ...] | None = None
    review_result: bool = False


@dataclass(frozen=True, slots=True)
class _Override:
    pattern: str
    rule: str
    risk_class: RiskClass | None
    level: RiskLevel | None


@dataclass(frozen=True, slots=True)
class _RequestEntry:
    pattern: str
    rule: str
    action: Action
    reason: str


_P = TypeVar("_P", _Entry, _Override, _RequestEntry)


class Policy:
    """A validated, compiled policy; immutable once built. Build it with the ``from_*`` methods."""

    def __init__(self, data: Any, source: str = "<policy>") -> None:
        """Validate and compile parsed JSON ``data``; every problem is a ConfigError."""
        validate(data, "policy", source)
        self._data: dict[str, Any] = copy.deepcopy(dict(data))
        self._source = source
        self._default = Action(self._data.get("default", "deny"))
        self._risk_defaults = {
            RiskClass(cls): Action(action) for cls, action in self._data.get("risk_defaults", {}).items()
        }
        self._overrides = tuple(
            _compile_override(pattern, raw, source)
            for pattern, raw in self._data.get("risk_overrides", {}).items()
        )
        self._entries = _compile_entries(self._data.get("tools", {}), source)
        self._requests = {
            kind: tuple(
                _RequestEntry(
                    pattern, f"{section}[{quote(pattern)}]", Action(raw["action"]), raw.get("reason", "")
                )
                for pattern, raw in self._data.get(section, {}).items()
            )
            for kind, section in REQUEST_SECTIONS.items()
        }
        self._client_entries = any(entry.clients is not None for entry in self._entries)

    @classmethod
    def from_data(cls, data: Any, source: str = "<policy>") -> Policy:
        """Validate parsed JSON against the schema and compile it; every problem is a ConfigError."""
        return cls(data, source)

    @classmethod
    def from_file(cls, path: Path) -> Policy:
        """Read, validate and compile a policy file; every problem is a ConfigError."""
        return cls(load_json_file(path, "policy"), str(path))

    @classmethod
    def default(cls) -> Policy:
        """The safe default policy: read tools run, every other risk class asks first."""
        return cls.from_data(DEFAULT_POLICY_DATA, "<default policy>")

    @property
    def source(self) -> str:
        """Where the policy came from: a file path or a label like ``<default policy>``."""
        return self._source

    @property
    def data(self) -> dict[str, Any]:
        """The parsed policy as written (a private copy; don't mutate it)."""
        return self._data

    @property
    def tool_patterns(self) -> tuple[str, ...]:
        """The ``tools`` keys in file order."""
        return tuple(entry.pattern for entry in self._entries)

    def apply_overrides(self, tool: ToolRef, risk: Risk) -> Risk:
        """``risk`` corrected by the most specific matching ``risk_overrides`` entry, if any.

        The result keeps the classifier's reasons and adds ``overridden by policy
        risk_overrides["..."]``; applying it twice gives the same class and level.
        """
        override = _most_specific(self._overrides, _tool_rank(tool))
        if override is None:
            return risk
        return replace(
            risk,
            risk_class=override.risk_class or risk.risk_class,
            level=override.level or risk.level,
            reasons=(*risk.reasons, f"overridden by policy {override.rule}"),
        )

    def client_patterns(self) -> list[tuple[str, str]]:
        """Every client name or glob the policy names, as (rule, pattern), in file order."""
        found = []
        for entry in self._entries:
            found += [(entry.rule, pattern) for pattern in entry.clients or ()]
            for condition in entry.conditions:
                found += [(condition.rule, pattern) for pattern in condition.clients or ()]
        return found

    def argument_paths(self, ctx: CallContext) -> tuple[tuple[str, ...], ...] | None:
        """The argument paths the decision on ``ctx`` may read; None when it reads no argument.

        What a replay of a logged call needs to know before trusting stored (redacted, clipped)
        arguments.
        """
        entry = self._entry_for(ctx)
        if entry is None:
            return None
        paths = tuple(
            path for c in entry.conditions if client_matches(c.clients, ctx.client) for path in c.paths
        )
        return paths or None

    def entry_pattern(self, ctx: CallContext) -> str | None:
        """The ``tools`` key of the entry that decides ``ctx``'s calls, or None when no entry does."""
        entry = self._entry_for(ctx)
        return entry.pattern if entry is not None else None

    def decide(self, ctx: CallContext, limiter: RateLimiter, now: float) -> Decision:
        """The verdict on one call, counting it in the rate-limit buckets it passes."""
        entry = self._entry_for(ctx)
        decision = self._decide_action(ctx, entry)
        if entry is None or decision.action is Action.DENY:
            return decision
        keys: list[BucketKey] = []
        for limit in entry.limits:
            key = limit.key(ctx)
            wait = limiter.retry_after(key, limit.max, limit.window, now)
            if wait is not None:
                reason = f"{limit.describe()}; retry in {max(1, math.ceil(wait))} s"
                return Decision(Action.DENY, limit.rule, reason, retry_after=wait)
            keys.append(key)
        for key in dict.fromkeys(keys):
            limiter.record(key, now)
        return decision

    def decide_without_arguments(self, ctx: CallContext) -> Decision:
        """What the policy does with a call to ``ctx.tool`` without arguments, ignoring limits."""
        return self._decide_action(replace(ctx, arguments={}), self._entry_for(ctx))

    def decide_request(self, request: RequestRef) -> Decision:
        """The verdict on a resource read, a prompt get or a completion: its section, else ``default``."""
        entry = _most_specific(self._requests[request.kind], _request_rank(request))
        if entry is not None:
            return _rule_decision(entry.action, entry.rule, entry.reason)
        section = REQUEST_SECTIONS[request.kind]
        reason = f"{_VERBS[self._default]} by the policy default: no {section} rule applies"
        return Decision(self._default, "default", reason)

    def decider(self, ctx: CallContext) -> Callable[[Mapping[str, Any]], Decision]:
        """Decides calls like ``ctx`` (same client, tool and risk) by their arguments, limits ignored.

        The entry is looked up once: a replay of many calls of one tool pays for it once.
        """
        entry = self._entry_for(ctx)
        return lambda arguments: self._decide_action(replace(ctx, arguments=arguments), entry)

    def decide_ignoring_limits(self, ctx: CallContext) -> Decision:
        """The verdict on one call as if no rate limit were full (for replays of the audit log)."""
        return self._decide_action(ctx, self._entry_for(ctx))

    def _entry_for(self, ctx: CallContext) -> _Entry | None:
        return _most_specific(
            [e for e in self._entries if client_matches(e.clients, ctx.client)]
            if self._client_entries
            else self._entries,
            _tool_rank(ctx.tool),
        )

    def _decide_action(self, ctx: CallContext, entry: _Entry | None) -> Decision:
        if entry is not None:
            decision = next(
                (
                    _rule_decision(condition.action, condition.rule, condition.reason or entry.reason)
                    for condition in entry.conditions
                    if condition.holds(ctx.arguments, ctx.client)
                ),
                None,
            ) or _rule_decision(entry.action, entry.rule, entry.reason)
            if entry.review_result and decision.action is not Action.DENY:
                decision = replace(decision, review_result=True)
            return decision
        risk_class = self.apply_overrides(ctx.tool, ctx.risk).risk_class
        action = self._risk_defaults.get(risk_class)
        if action is not None:
            rule = f"risk_defaults.{risk_class.value}"
            return _rule_decision(action, rule, f"{ctx.tool.name} is classified {risk_class.value}")
        reason = f"{_VERBS[self._default]} by the policy default: no tools rule or risk default applies"
        return Decision(self._default, "default", reason)


def _rule_decision(action: Action, rule: str, reason: str) -> Decision:
    text = f"{_VERBS[action]} by policy rule {rule}"
    return Decision(action, rule, f"{text}: {reason}" if reason else text)


def _most_specific(rules: Sequence[_P], rank_of: Callable[[str], Rank | None]) -> _P | None:
    best: Rank | None = None
    winner: _P | None = None
    for rule in rules:
        rank = rank_of(rule.pattern)
        if rank is not None and (best is None or rank > best):  # strict: ties keep the first
            best, winner = rank, rule
    return winner


def _tool_rank(tool: ToolRef) -> Callable[[str], Rank | None]:
    return lambda pattern: name_rank(pattern, tool.server, tool.prefix, tool.tool, tool.name)


def _request_rank(request: RequestRef) -> Callable[[str], Rank | None]:
    if request.kind is RequestKind.RESOURCE:
        return lambda pattern: uri_rank(pattern, request.server, request.target)
    if request.kind is RequestKind.PROMPT:
        return lambda pattern: name_rank(
            pattern, request.server, request.prefix, request.target, request.name or request.target
        )
    return lambda pattern: server_rank(pattern, request.server)


def _compile_entries(tools: Mapping[str, Any], file: str) -> tuple[_Entry, ...]:
    counters: dict[str, tuple[str, Limit]] = {}
    entries = []
    for pattern, raw in tools.items():
        rule, where = f"tools[{quote(pattern)}]", f"/tools/{pointer_token(pattern)}"
        conditions = tuple(
            compile_condition(cond, f"{rule}.conditions[{i}]", f"{where}/conditions/{i}", file)
            for i, cond in enumerate(raw.get("conditions", []))
        )
        limits = []
        for i, raw_limit in enumerate(raw.get("limits", [])):
            limit = compile_limit(raw_limit, f"{rule}.limits[{i}]")
            first = counters.setdefault(limit.counter, (f"{where}/limits/{i}", limit))
            if (first[1].max, first[1].window, first[1].scope) != (limit.max, limit.window, limit.scope):
                raise ConfigError(
                    file,
                    f"{where}/limits/{i}",
                    f"counter {quote(limit.counter)} is defined differently at {first[0]}; "
                    "limits that share a counter must have the same max, window and scope",
                )
            limits.append(limit)
        action = Action(raw.get("action", "allow"))
        clients = tuple(raw["clients"]) if "clients" in raw else None
        review = bool(raw.get("review_result", False))
        entries.append(
            _Entry(pattern, rule, action, raw.get("reason", ""), conditions, tuple(limits), clients, review)
        )
    return tuple(entries)


def _compile_override(pattern: str, raw: Mapping[str, Any], file: str) -> _Override:
    if "class" not in raw and "level" not in raw:
        where = f"/risk_overrides/{pointer_token(pattern)}"
        raise ConfigError(file, where, "expected a class, a level or both")
    risk_class = RiskClass(raw["class"]) if "class" in raw else None
    level = RiskLevel(raw["level"]) if "level" in raw else None
    return _Override(pattern, f"risk_overrides[{quote(pattern)}]", risk_class, level)
