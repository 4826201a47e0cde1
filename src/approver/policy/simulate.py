"""Replaying the audit log against a policy: what it would have decided, and what would change.

Every decision row is a call that really happened, with the client, tool, risk and (redacted)
arguments it had. :func:`simulate` decides each again under a candidate policy and compares with
what the policy of the day did; :func:`preview_rule` tells what one new rule would have decided
over a tool's recent calls. Both serve ``approver policy simulate``, the Rules window and the
"Always approve…" confirmation.

Nothing is guessed. A call whose decision reads an argument the log stored redacted (or whose
arguments were clipped) is *unknown*. A call the policy did not decide (paused, an error, a
changed tool definition, a rate limit, a request told to call again whose retry has a row of its
own) is not replayed. Rate limits are not replayed: they depend on the timing of other calls.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple

from approver.audit.log import AuditLog
from approver.audit.query import CallFilter
from approver.calls import Action, CallContext, Decision, Risk, RiskClass, RiskLevel, ToolRef
from approver.policy.engine import Policy

REDACTED_MARK: Final = "[REDACTED:"
"""What the audit log puts where it removed a secret (:mod:`approver.audit.redact`)."""
EXAMPLES: Final = 5
"""Calls kept as examples of each change."""

HELD_BY: Final = frozenset({"user", "timeout", "cancelled", "no-approver", "shutdown"})
"""``decided_by`` values of calls the policy held for a person."""


class Was(enum.StrEnum):
    """What the policy did with a call, in the words a person reads."""

    ALLOWED = "allowed"
    DENIED = "denied"
    HELD = "held"
    """Required approval (whatever the person then said)."""


_WAS: Final = {Action.ALLOW: Was.ALLOWED, Action.DENY: Was.DENIED, Action.REQUIRE_APPROVAL: Was.HELD}


class LoggedCall(NamedTuple):
    """One decision row, as the replay reads it (the columns of ``audit_query.REPLAY_COLUMNS``)."""

    id: int
    ts: str
    client: str
    server: str
    tool: str
    upstream_tool: str
    risk_class: str
    risk_level: str
    arguments: str | None
    """None when the row was read without them (or has none)."""
    args_truncated: int
    decision: str
    decided_by: str
    rule: str

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> LoggedCall:
        """A call from a replay row."""
        return cls._make(row)

    def was(self) -> Was | str:
        """What the policy did then, or why that cannot be compared (a short phrase)."""
        if self.decided_by == "policy":
            if ".limits[" in (self.rule or ""):
                return "denied by a rate limit"
            return Was.ALLOWED if self.decision == "allow" else Was.DENIED
        if self.decided_by == "held":
            return "told to call again (its retry is replayed)"
        if self.rule == "pin-changed":
            return "held because the tool's definition changed"
        if self.decided_by in HELD_BY:
            return Was.HELD
        return {"paused": "denied while paused", "error": "denied by an error"}.get(
            self.decided_by, f"decided by {self.decided_by or 'nobody'}"
        )

    def context(self, arguments: Mapping[str, Any]) -> CallContext:
        """The call as the policy sees it."""
        risk = Risk(
            _enum(RiskClass, self.risk_class, RiskClass.OTHER),
            _enum(RiskLevel, self.risk_level, RiskLevel.MEDIUM),
        )
        tool = self.tool or ""
        ref = ToolRef(self.server or "", self.upstream_tool or tool, tool)
        return CallContext(self.client or "", ref, risk, arguments)


def _enum(kind: Any, value: str, default: Any) -> Any:
    try:
        return kind(value)
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class Unknown:
    """Why a call could not be decided again."""

    why: str


class Replay:
    """Decides logged calls under one policy, looking up each (client, tool, risk)'s entry once."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._kinds: dict[tuple[Any, ...], _Kind] = {}

    def _kind(self, call: LoggedCall) -> _Kind:
        key = (call.client, call.server, call.tool, call.upstream_tool, call.risk_class, call.risk_level)
        kind = self._kinds.get(key)
        if kind is None:
            ctx = call.context({})
            paths = self.policy.argument_paths(ctx)
            fixed = self.policy.decide_ignoring_limits(ctx) if paths is None else None
            kind = self._kinds[key] = _Kind(fixed, self.policy.decider(ctx), paths or ())
        return kind

    def without_arguments(self, call: LoggedCall) -> Decision | None:
        """The decision on ``call`` when it reads no argument, else None (its arguments are needed)."""
        return self._kind(call).fixed

    def decide(self, call: LoggedCall) -> Decision | Unknown:
        """The policy's decision on ``call`` (rate limits ignored), or why it cannot be known."""
        kind = self._kind(call)
        if kind.fixed is not None:
            return kind.fixed
        if call.args_truncated or call.arguments is None:
            return Unknown("its arguments were clipped in the log")
        try:
            arguments = json.loads(call.arguments)
        except (ValueError, RecursionError):
            return Unknown("its arguments in the log are not JSON")
        if not isinstance(arguments, dict):
            return Unknown("its arguments in the log are not an object")
        if REDACTED_MARK in call.arguments and any(
            _redacted(_lookup(arguments, path)) for path in kind.paths
        ):
            return Unknown("the rule reads an argument the log stored redacted")
        return kind.decide(arguments)


class _Kind(NamedTuple):
    """What a replay knows about every call of one client, tool and risk."""

    fixed: Decision | None
    """The decision when it reads no argument."""
    decide: Callable[[Mapping[str, Any]], Decision]
    paths: tuple[tuple[str, ...], ...]
    """The argument paths the decision reads."""


def _lookup(arguments: Any, path: tuple[str, ...]) -> Any:
    value = arguments
    for token in path:
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return None
    return value


def _redacted(value: Any) -> bool:
    """Whether a value is or holds something the log redacted."""
    if isinstance(value, str):
        return REDACTED_MARK in value
    if isinstance(value, dict):
        return any(_redacted(item) for item in value.values())
    if isinstance(value, list):
        return any(_redacted(item) for item in value)
    return False


@dataclass(slots=True)
class Change:
    """How many calls moved from one outcome to another, with a few examples."""

    before: str
    after: str
    count: int = 0
    examples: list[LoggedCall] = field(default_factory=list)

    def add(self, call: LoggedCall) -> None:
        """Count ``call``; keep it as an example while there are few."""
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(call)


@dataclass(slots=True)
class Simulation:
    """What a candidate policy would have changed over the replayed calls."""

    replayed: int = 0
    """Calls decided again (changed, unchanged or unknown)."""
    unchanged: int = 0
    changes: dict[tuple[str, str], Change] = field(default_factory=dict)
    unknown: dict[str, Change] = field(default_factory=dict)
    """Calls whose new decision cannot be known, by why."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Calls not replayed, by what happened to them then."""
    first_ts: str = ""
    last_ts: str = ""

    @property
    def changed(self) -> int:
        """How many calls the candidate decides differently."""
        return sum(change.count for change in self.changes.values())

    def add(self, call: LoggedCall, decided: Decision | Unknown | None) -> None:
        """Count one call: ``decided`` is the new decision (None: not replayed)."""
        self.first_ts = min(self.first_ts or call.ts, call.ts)
        self.last_ts = max(self.last_ts, call.ts)
        was = call.was()
        if decided is None or not isinstance(was, Was):
            self.skipped[str(was)] = self.skipped.get(str(was), 0) + 1
            return
        self.replayed += 1
        if isinstance(decided, Unknown):
            self.unknown.setdefault(decided.why, Change(str(was), "unknown")).add(call)
            return
        now = _WAS[decided.action]
        if now is was:
            self.unchanged += 1
            return
        self.changes.setdefault((was.value, now.value), Change(was.value, now.value)).add(call)


def simulate(calls: Iterable[LoggedCall], candidate: Policy) -> Simulation:
    """Replay ``calls`` (with their arguments) against ``candidate`` and compare with what happened."""
    replay = Replay(candidate)
    result = Simulation()
    for call in calls:
        result.add(call, replay.decide(call) if isinstance(call.was(), Was) else None)
    return result


def simulate_log(log: AuditLog, candidate: Policy, where: CallFilter | None = None) -> Simulation:
    """:func:`simulate` over the calls of an audit log that ``where`` selects.

    Arguments are read only for the calls whose decision reads them: a first pass reads every
    call without them, a second reads those calls' rows again, by id.
    """
    replay = Replay(candidate)
    result = Simulation()
    later: list[int] = []
    for row in log.replay(where, arguments_of=()):
        call = LoggedCall.from_row(row)
        if not isinstance(call.was(), Was):
            result.add(call, None)
            continue
        decided = replay.without_arguments(call)
        if decided is None:
            later.append(call.id)
        else:
            result.add(call, decided)
    for start in range(0, len(later), _BY_ID):
        for row in log.replay_ids(later[start : start + _BY_ID]):
            call = LoggedCall.from_row(row)
            result.add(call, replay.decide(call))
    _read_example_arguments(log, result)
    return result


def _read_example_arguments(log: AuditLog, result: Simulation) -> None:
    """Give the examples read without their arguments (first pass) their arguments, for display."""
    changes = [*result.changes.values(), *result.unknown.values()]
    missing = [call.id for change in changes for call in change.examples if call.arguments is None]
    if not missing:
        return
    full = {call.id: call for call in logged_calls(log.replay_ids(missing))}
    for change in changes:
        change.examples = [full.get(call.id, call) for call in change.examples]


_BY_ID: Final = 500
"""Rows read again per query in :func:`simulate_log`'s second pass."""


def logged_calls(rows: Iterable[tuple[Any, ...]]) -> Iterator[LoggedCall]:
    """Replay rows from :meth:`approver.audit.log.AuditLog.replay` as :class:`LoggedCall`."""
    for row in rows:
        yield LoggedCall.from_row(row)


@dataclass(frozen=True, slots=True)
class RulePreview:
    """What one rule would have decided over a tool's recent calls."""

    calls: int
    """Calls of the tool looked at."""
    matched: tuple[LoggedCall, ...]
    """Calls the rule would have decided, newest first."""
    denied_by_you: tuple[LoggedCall, ...]
    """Of those, the calls a person denied."""
    unknown: int
    """Calls the rule may have decided, but their logged arguments cannot tell."""

    def summary(self, verb: str = "allowed") -> str:
        """``would have allowed 14 of the last 200 calls of this tool; 2 of them were denied by you``."""
        text = f"would have {verb} {len(self.matched)} of the last {self.calls} calls of this tool"
        if self.matched:
            denied = len(self.denied_by_you)
            text += (
                "; none of them was denied by you"
                if not denied
                else (f"; {denied} of them {'was' if denied == 1 else 'were'} denied by you")
            )
        if self.unknown:
            text += f"; {self.unknown} more cannot be judged (arguments redacted or clipped in the log)"
        return text


def preview_rule(calls: Iterable[LoggedCall], candidate: Policy, rule: str) -> RulePreview:
    """Which of ``calls`` the rule named ``rule`` (e.g. ``tools["x"].conditions[2]``) would have decided."""
    replay = Replay(candidate)
    seen = 0
    matched: list[LoggedCall] = []
    unknown = 0
    for call in calls:
        if call.decided_by == "held":
            continue  # a request told to call again: the call is its retry's row (or still waiting)
        seen += 1
        decided = replay.decide(call)
        if isinstance(decided, Unknown):
            unknown += 1
        elif decided.rule == rule:
            matched.append(call)
    denied = tuple(call for call in matched if call.decided_by == "user" and call.decision == "deny")
    # The calls you denied first: they are what a person most needs to see before widening a rule.
    matched.sort(key=lambda call: call not in denied)
    return RulePreview(seen, tuple(matched), denied, unknown)


_SHOWN: Final = 100
"""Characters of a call's arguments an example shows."""


def report(result: Simulation, candidate: str, since: datetime | None = None) -> list[str]:
    """The simulation in lines a person reads (``approver policy simulate``, the Rules window).

    Arguments are shown as the log stored them (redacted), clipped; reveal hidden characters
    before printing or showing the lines.
    """
    start = f"since {since:%Y-%m-%d}" if since is not None else "in the whole log"
    span = f"{result.first_ts[:10]} to {result.last_ts[:10]}" if result.first_ts else start
    lines = [f"Replayed {result.replayed:,} calls ({span}) against {candidate}:"]
    if not result.changes:
        lines.append("  no decision would change")
    for (before, after), change in sorted(result.changes.items(), key=lambda item: -item[1].count):
        note = " (newly held for approval)" if after == "held" else ""
        lines.append(f"  {before} -> {after}: {change.count:,}{note}, for example:")
        lines += [f"    {_example(call)}" for call in change.examples]
    lines.append(f"  unchanged: {result.unchanged:,}")
    unknown = sum(change.count for change in result.unknown.values())
    if unknown:
        lines.append(f"  unknown: {unknown:,} (not guessed)")
        for why, change in result.unknown.items():
            lines.append(f"    {change.count:,}: {why}, for example:")
            lines += [f"      {_example(call)}" for call in change.examples]
    skipped = sum(result.skipped.values())
    if skipped:
        lines.append(f"Not replayed: {skipped:,}")
        lines += [f"  {count:,} {why}" for why, count in sorted(result.skipped.items())]
    return lines


def _example(call: LoggedCall) -> str:
    arguments = call.arguments if call.arguments is not None else "(arguments not read)"
    if len(arguments) > _SHOWN:
        arguments = arguments[:_SHOWN] + "…"
    return f"{call.ts[:19].replace('T', ' ')} {call.client} {call.tool} {arguments}"
