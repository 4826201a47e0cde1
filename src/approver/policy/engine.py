"""The policy engine: whether a tool call is allowed, denied or held for a person's approval.

A policy is a JSON file (schema ``config/schemas/policy.schema.json``), a superset of PolicyLayer v1.
Tool patterns are names or ``fnmatch`` globs, matched against a tool's exposed name, against
``server__tool`` and against the bare upstream name.

Precedence, in order:

1. The single most specific matching ``tools`` entry decides. An exact name beats any glob; of
   several exact names, the exposed name beats ``server__tool``, which beats the bare upstream
   name; of globs, the one with more literal (non-wildcard) characters wins; a tie goes to the
   entry written first. Within the entry the first condition that holds gives the action, else
   the entry's ``action`` (allow when absent, as in PolicyLayer).
2. No entry matches: ``risk_defaults[risk class]``, after ``risk_overrides`` are applied.
3. Otherwise ``default`` (deny when absent).
4. When the action is allow or require_approval, the matched entry's limits are checked; a full
   bucket turns the call into a deny with ``Decision.retry_after``. A call that passes counts in
   every bucket it passed; denied calls count nowhere.

Time is injected (``now``) and rate-limit state lives in a :class:`RateLimiter` that outlives
policy reloads, because its buckets are keyed by counter and scope names only.

``risk_overrides`` are applied by :meth:`Policy.apply_overrides`, which returns the corrected
:class:`Risk`; :meth:`Policy.decide` applies them itself, so callers may pass the classifier's risk.
``path_under`` normalises paths lexically; it cannot see symlinks on the upstream's machine.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import json
import math
import os
import posixpath
import re
import stat
import tempfile
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, TypeVar

from approver.calls import Action, CallContext, Decision, Risk, RiskClass, RiskLevel, ToolRef
from approver.config.schema import load_json_file, schema_path, validate, with_schema
from approver.errors import ConfigError

WINDOWS: Final[Mapping[str, float]] = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
"""The named limit windows, in seconds."""

DEFAULT_POLICY_DATA: Final[Mapping[str, Any]] = {
    "description": "approver's safe default: reads run, everything else asks you first.",
    "version": "1",
    "default": "require_approval",
    "risk_defaults": {
        cls.value: "allow" if cls is RiskClass.READ else "require_approval" for cls in RiskClass
    },
    "tools": {},
}
"""The policy used when the user has none, and the start of a policy file approver creates."""

BucketKey = tuple[str, str]
"""A rate-limit bucket: (counter name, scope key)."""

_VERBS: Final = {Action.ALLOW: "allowed", Action.DENY: "denied", Action.REQUIRE_APPROVAL: "approval required"}
_SCOPES: Final[Mapping[str, tuple[Callable[[CallContext], str], str]]] = {
    "global": (lambda ctx: "", "in total"),
    "server": (lambda ctx: ctx.tool.server, "per server"),
    "tool": (lambda ctx: ctx.tool.name, "per tool"),
    "client": (lambda ctx: ctx.client, "per client"),
}
"""Each limit scope: how to find a call's scope key, and how a reason names the scope."""
_MISSING: Final = object()
_INDEX: Final = re.compile(r"0|[1-9][0-9]*")
_WILDCARDS: Final = re.compile(r"\[!?+\]?+[^\]]*\]|[*?]")  # fnmatch's bracket rule


class RateLimiter:
    """Sliding-window logs of call times, one deque per (counter, scope key) bucket.

    A bucket holds at most ``max`` timestamps, because a call is recorded only after
    :meth:`retry_after` found room. Keys are plain names, so the same limiter keeps counting
    across policy reloads.
    """

    def __init__(self) -> None:
        self._buckets: dict[BucketKey, deque[float]] = {}

    def retry_after(self, key: BucketKey, max_calls: int, window: float, now: float) -> float | None:
        """Seconds until ``key`` has room for one more call, or None when it has room now."""
        stamps = self._buckets.get(key)
        if stamps is None:
            return None
        while stamps and stamps[0] <= now - window:
            stamps.popleft()
        if len(stamps) < max_calls:
            if not stamps:
                del self._buckets[key]
            return None
        # After a reload lowered max the log can be longer than max: room comes back when
        # all but max - 1 of the calls have left the window.
        return stamps[len(stamps) - max_calls] + window - now

    def record(self, key: BucketKey, now: float) -> None:
        """Count one call in ``key`` at time ``now``."""
        self._buckets.setdefault(key, deque()).append(now)

    def count(self, key: BucketKey, window: float, now: float) -> int:
        """How many calls ``key`` holds from the last ``window`` seconds."""
        return sum(1 for stamp in self._buckets.get(key, ()) if stamp > now - window)


@dataclass(frozen=True, slots=True)
class _Test:
    path: tuple[str, ...]
    checks: tuple[tuple[Callable[[Any, Any], bool], Any], ...]
    holds_when_missing: bool

    def holds(self, arguments: Mapping[str, Any]) -> bool:
        value = _lookup(arguments, self.path)
        if value is _MISSING:
            return self.holds_when_missing
        return all(check(value, operand) for check, operand in self.checks)


@dataclass(frozen=True, slots=True)
class _Condition:
    rule: str
    action: Action
    reason: str
    tests: tuple[_Test, ...]


@dataclass(frozen=True, slots=True)
class _Limit:
    rule: str
    counter: str
    max: int
    window: float
    window_text: str
    scope: str

    def describe(self) -> str:
        calls = "1 call" if self.max == 1 else f"{self.max} calls"
        return f"rate limit {self.counter}: {calls} per {self.window_text} {_SCOPES[self.scope][1]}"


@dataclass(frozen=True, slots=True)
class _Entry:
    pattern: str
    rule: str
    action: Action
    reason: str
    conditions: tuple[_Condition, ...]
    limits: tuple[_Limit, ...]


@dataclass(frozen=True, slots=True)
class _Override:
    pattern: str
    rule: str
    risk_class: RiskClass | None
    level: RiskLevel | None


_P = TypeVar("_P", _Entry, _Override)


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
        override = _most_specific(self._overrides, tool)
        if override is None:
            return risk
        return replace(
            risk,
            risk_class=override.risk_class or risk.risk_class,
            level=override.level or risk.level,
            reasons=(*risk.reasons, f"overridden by policy {override.rule}"),
        )

    def decide(self, ctx: CallContext, limiter: RateLimiter, now: float) -> Decision:
        """The verdict on one call, counting it in the rate-limit buckets it passes."""
        entry = _most_specific(self._entries, ctx.tool)
        decision = self._decide_action(ctx, entry)
        if entry is None or decision.action is Action.DENY:
            return decision
        keys: list[BucketKey] = []
        for limit in entry.limits:
            key = (limit.counter, _SCOPES[limit.scope][0](ctx))
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
        return self._decide_action(replace(ctx, arguments={}), _most_specific(self._entries, ctx.tool))

    def _decide_action(self, ctx: CallContext, entry: _Entry | None) -> Decision:
        if entry is not None:
            for condition in entry.conditions:
                if all(test.holds(ctx.arguments) for test in condition.tests):
                    return _rule_decision(condition.action, condition.rule, condition.reason or entry.reason)
            return _rule_decision(entry.action, entry.rule, entry.reason)
        risk_class = self.apply_overrides(ctx.tool, ctx.risk).risk_class
        action = self._risk_defaults.get(risk_class)
        if action is not None:
            rule = f"risk_defaults.{risk_class.value}"
            return _rule_decision(action, rule, f"{ctx.tool.name} is classified {risk_class.value}")
        reason = f"{_VERBS[self._default]} by the policy default: no tools rule or risk default applies"
        return Decision(self._default, "default", reason)


def policy_rule_for_always_allow(tool: ToolRef) -> dict[str, Any]:
    """The ``tools`` fragment that always allows ``tool``: ``{exposed name: {"action": "allow"}}``."""
    return {tool.name: {"action": "allow"}}


def add_allow_rule(path: Path, tool: ToolRef) -> None:
    """Make the policy file at ``path`` always allow ``tool``, writing it atomically.

    A new entry is added under the exposed name; an existing entry for that exact name gets
    ``"action": "allow"`` and keeps its conditions and limits, so hand-written guards survive.
    A missing file is created from the default policy. The result is validated before it is
    written; an invalid existing file raises ConfigError and is left untouched.
    """
    if path.exists():
        data: dict[str, Any] = with_schema(load_json_file(path, "policy"), "policy", add=False)
    else:
        data = {"$schema": schema_path("policy").as_uri(), **copy.deepcopy(dict(DEFAULT_POLICY_DATA))}
    tools = data.setdefault("tools", {})
    if tool.name in tools:
        tools[tool.name]["action"] = "allow"
    else:
        tools.update(policy_rule_for_always_allow(tool))
    Policy.from_data(data, str(path))
    _write_atomically(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _write_atomically(path: Path, text: str) -> None:
    target = Path(os.path.realpath(path))  # replace a symlink's target, not the link
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temp, stat.S_IMODE(target.stat().st_mode))
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _rule_decision(action: Action, rule: str, reason: str) -> Decision:
    text = f"{_VERBS[action]} by policy rule {rule}"
    return Decision(action, rule, f"{text}: {reason}" if reason else text)


def _most_specific(rules: Sequence[_P], tool: ToolRef) -> _P | None:
    best: tuple[int, int] | None = None
    winner: _P | None = None
    for rule in rules:
        rank = _specificity(rule.pattern, tool)
        if rank is not None and (best is None or rank > best):  # strict: ties keep the first
            best, winner = rank, rule
    return winner


def _specificity(pattern: str, tool: ToolRef) -> tuple[int, int] | None:
    qualified = f"{tool.server}__{tool.tool}"
    for tier, name in ((3, tool.name), (2, qualified), (1, tool.tool)):
        if pattern == name:
            return (tier, len(pattern))
    if any(fnmatch.fnmatchcase(name, pattern) for name in (tool.name, qualified, tool.tool)):
        return (0, _literal_chars(pattern))
    return None


def _literal_chars(pattern: str) -> int:
    """Characters of a glob that match only themselves (``*``, ``?`` and ``[...]`` don't count)."""
    return len(_WILDCARDS.sub("", pattern))


def _quote(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _compile_entries(tools: Mapping[str, Any], file: str) -> tuple[_Entry, ...]:
    counters: dict[str, tuple[str, _Limit]] = {}
    entries = []
    for pattern, raw in tools.items():
        rule, where = f"tools[{_quote(pattern)}]", f"/tools/{_escape(pattern)}"
        conditions = tuple(
            _compile_condition(cond, f"{rule}.conditions[{i}]", f"{where}/conditions/{i}", file)
            for i, cond in enumerate(raw.get("conditions", []))
        )
        limits = []
        for i, raw_limit in enumerate(raw.get("limits", [])):
            limit = _compile_limit(raw_limit, f"{rule}.limits[{i}]")
            first = counters.setdefault(limit.counter, (f"{where}/limits/{i}", limit))
            if (first[1].max, first[1].window, first[1].scope) != (limit.max, limit.window, limit.scope):
                raise ConfigError(
                    file,
                    f"{where}/limits/{i}",
                    f"counter {_quote(limit.counter)} is defined differently at {first[0]}; "
                    "limits that share a counter must have the same max, window and scope",
                )
            limits.append(limit)
        action = Action(raw.get("action", "allow"))
        entries.append(_Entry(pattern, rule, action, raw.get("reason", ""), conditions, tuple(limits)))
    return tuple(entries)


def _compile_override(pattern: str, raw: Mapping[str, Any], file: str) -> _Override:
    if "class" not in raw and "level" not in raw:
        raise ConfigError(file, f"/risk_overrides/{_escape(pattern)}", "expected a class, a level or both")
    risk_class = RiskClass(raw["class"]) if "class" in raw else None
    level = RiskLevel(raw["level"]) if "level" in raw else None
    return _Override(pattern, f"risk_overrides[{_quote(pattern)}]", risk_class, level)


def _compile_limit(raw: Mapping[str, Any], rule: str) -> _Limit:
    window = raw["window"]
    seconds = WINDOWS[window] if isinstance(window, str) else float(window)
    window_text = window if isinstance(window, str) else f"{window:g} s"
    scope = raw.get("scope", "tool").replace("grant", "client")
    return _Limit(rule, raw.get("counter", rule), raw["max"], seconds, window_text, scope)


def _compile_condition(raw: Mapping[str, Any], rule: str, where: str, file: str) -> _Condition:
    tests = tuple(
        _compile_test(arg, ops, f"{where}/when/{_escape(arg)}", file) for arg, ops in raw["when"].items()
    )
    return _Condition(rule, Action(raw["action"]), raw.get("reason", ""), tests)


def _compile_test(arg: str, ops: Mapping[str, Any], where: str, file: str) -> _Test:
    if arg.startswith("/"):
        tokens = arg[1:].split("/")
        if any(re.search(r"~(?![01])", token) for token in tokens):
            raise ConfigError(file, where, f"invalid JSON pointer {_quote(arg)}: use ~0 or ~1 after ~")
        path = tuple(token.replace("~1", "/").replace("~0", "~") for token in tokens)
    else:
        path = (arg,)
    checks = tuple(_check(op, operand, f"{where}/{op}", file) for op, operand in ops.items())
    holds_when_missing = all(op == "exists" and operand is False for op, operand in ops.items())
    return _Test(path, checks, holds_when_missing)


def _check(op: str, operand: Any, where: str, file: str) -> tuple[Callable[[Any, Any], bool], Any]:
    """The operator's check and its operand in the form the check takes (regexes compiled)."""
    if op not in _OPERATORS:
        raise ConfigError(file, where, f"unknown operator {_quote(op)}")
    if op == "matches":
        try:
            operand = re.compile(operand)
        except re.error as exc:
            raise ConfigError(file, where, f"invalid regular expression {_quote(operand)}: {exc}") from None
    elif op == "path_under":
        operand = _directories(operand, where, file)
    return _OPERATORS[op], operand


def _directories(operand: str | list[str], where: str, file: str) -> tuple[str, ...]:
    result = []
    for i, directory in enumerate([operand] if isinstance(operand, str) else operand):
        normal = _normalise_path(directory)
        if normal is None:
            pointer = where if isinstance(operand, str) else f"{where}/{i}"
            raise ConfigError(file, pointer, f"expected an absolute directory, got {_quote(directory)}")
        result.append(normal.rstrip("/") + "/")
    return tuple(result)


def _normalise_path(path: str) -> str | None:
    """``path`` with ``.``, ``..`` and repeated slashes resolved; None unless absolute and NUL-free."""
    if "\0" in path or not path.startswith("/"):
        return None
    return "/" + posixpath.normpath(path).lstrip("/")


def _path_under(value: Any, prefixes: tuple[str, ...]) -> bool:
    """Whether ``value`` normalised lies under a directory; ``prefixes`` end with ``/``."""
    normal = _normalise_path(value) if isinstance(value, str) else None
    return normal is not None and any((normal + "/").startswith(prefix) for prefix in prefixes)


def _lookup(arguments: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = arguments
    for token in path:
        if isinstance(value, Mapping) and token in value:
            value = value[token]
        elif isinstance(value, list) and _INDEX.fullmatch(token) and int(token) < len(value):
            value = value[int(token)]
        else:
            return _MISSING
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _contains(value: Any, operand: Any) -> bool:
    if isinstance(value, str):
        return isinstance(operand, str) and operand in value
    if isinstance(value, list):
        return any(_json_equal(item, operand) for item in value)
    return False


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str | None) and isinstance(b, str | None):
        return a == b
    return False


_OPERATORS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "equals": _json_equal,
    "not_equals": lambda value, x: not _json_equal(value, x),
    "in": lambda value, x: any(_json_equal(value, item) for item in x),
    "not_in": lambda value, x: not any(_json_equal(value, item) for item in x),
    "starts_with": lambda value, x: isinstance(value, str) and value.startswith(x),
    "ends_with": lambda value, x: isinstance(value, str) and value.endswith(x),
    "contains": _contains,
    "matches": lambda value, x: isinstance(value, str) and x.fullmatch(value) is not None,
    "glob": lambda value, x: isinstance(value, str) and fnmatch.fnmatchcase(value, x),
    "gt": lambda value, x: _is_number(value) and value > x,
    "gte": lambda value, x: _is_number(value) and value >= x,
    "lt": lambda value, x: _is_number(value) and value < x,
    "lte": lambda value, x: _is_number(value) and value <= x,
    "exists": lambda value, x: bool(x),
    "max_length": lambda value, x: isinstance(value, str | list) and len(value) <= x,
    "path_under": _path_under,
}
"""Each operator's check, called with the argument's value and the compiled operand."""
