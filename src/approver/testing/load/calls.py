"""The calls of a load run, how their answers are judged, the audit check and the report.

Each :class:`LoadCall` carries a unique tag (``<client>-s<seq>``) in its arguments, so its answer,
its audit rows and its line in the upstream's call log can all be matched to it alone.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from approver.audit.log import AuditLog, canonical_json
from approver.config.paths import Paths

ALLOWED: Final = "allowed"
"""The call ran upstream and its own result came back."""
DENIED: Final = "denied"
"""The policy denied the call, with its reason."""
RATE_LIMITED: Final = "rate_limited"
"""The rate limit denied the call."""
WRONG: Final = "wrong"
"""A success whose content belongs to another request (or to nothing)."""
ERROR: Final = "error"
"""Any other error: a JSON-RPC error, or a tool error that is not one of the expected denials."""

DENIED_PREFIX: Final = "approver denied this call: "
RATE_COUNTER: Final = "load_writes"
"""The counter name of the rate-limited tool's limit in the load policy."""
DENY_REASON: Final = "load test: notes are never deleted"
"""The reason the load policy gives for the denied tool; each denial must end with it."""

_MIX: Final = ("echo",) * 6 + ("write_note",) * 2 + ("delete_note",) * 2
"""Per ten calls: six allowed, two to the rate-limited tool, two denied."""

_PROBLEMS_KEPT: Final = 20


@dataclass(frozen=True, slots=True)
class Answer:
    """A tool-call answer reduced to what the judge needs, whatever transport carried it."""

    is_error: bool
    text: str
    structured: Any = None


@dataclass(slots=True)
class LoadCall:
    """One planned call, and what happened to it."""

    client: str
    seq: int
    tool: str
    """The upstream tool name (``echo``, ``write_note``, ``delete_note``)."""
    arguments: dict[str, Any]
    expected: str
    answers: int = 0
    kind: str | None = None
    latency: float | None = None
    detail: str = ""

    @property
    def tag(self) -> str:
        """The unique string this call carries in its arguments."""
        return f"{self.client}-s{self.seq:03d}"

    @property
    def exposed(self) -> str:
        """The tool name the client calls."""
        return f"test__{self.tool}"

    @property
    def extra_answers(self) -> int:
        """Answers beyond the first (must be 0)."""
        return max(0, self.answers - 1)

    def answered(self, answer: Answer, latency: float) -> None:
        """Count an answer; the first one decides the call's kind."""
        self.answers += 1
        if self.answers == 1:
            self.latency = latency
            self.kind = self._judge(answer)
            if self.kind != self.expected:
                self.detail = answer.text[:200]

    def failed(self, detail: str) -> None:
        """The call raised instead of being answered with a result (a JSON-RPC error)."""
        self.answers += 1
        if self.answers == 1:
            self.kind, self.detail = ERROR, detail[:200]

    def _judge(self, answer: Answer) -> str:
        if not answer.is_error:
            if self.tool == "echo" and answer.structured == {"text": self.tag}:
                return ALLOWED
            if self.tool == "write_note" and answer.text == f"ok: wrote nothing to {self.tag}":
                return ALLOWED
            return WRONG
        if answer.text.startswith(f"{DENIED_PREFIX}rate limit {RATE_COUNTER}:"):
            return RATE_LIMITED
        denial = answer.text.startswith(DENIED_PREFIX) and answer.text.endswith(DENY_REASON)
        if denial and self.tool == "delete_note":
            return DENIED
        return ERROR


def plan_calls(client: str, count: int, rate_max: int) -> list[LoadCall]:
    """``count`` calls for one client, cycling through the mix; the limit's overflow is expected denied."""
    calls: list[LoadCall] = []
    writes = 0
    for seq in range(count):
        tool = _MIX[seq % len(_MIX)]
        tag = f"{client}-s{seq:03d}"
        if tool == "echo":
            calls.append(LoadCall(client, seq, tool, {"text": tag}, ALLOWED))
        elif tool == "write_note":
            writes += 1
            expected = ALLOWED if writes <= rate_max else RATE_LIMITED
            calls.append(LoadCall(client, seq, tool, {"path": tag, "text": "load"}, expected))
        else:
            calls.append(LoadCall(client, seq, tool, {"path": tag}, DENIED))
    return calls


def rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (VmRSS), or 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


@dataclass(slots=True)
class AuditCheck:
    """What the audit log and the upstream's call log say about a run's calls."""

    rows_checked: int = 0
    missing_rows: int = 0
    """Decision rows missing for calls, plus outcome rows missing for forwarded calls."""
    extra_rows: int = 0
    """Rows of this run's clients that belong to no call, or a second row of one kind for a call."""
    wrong_rows: int = 0
    """Decision or outcome rows that disagree with the answer the client got."""
    upstream_calls: int = 0
    unmatched_upstream_calls: int = 0
    """Upstream call-log lines with no allowed decision row (or seen twice), plus allowed calls
    that never reached the upstream."""
    chain_ok: bool = False
    chain_detail: str = ""
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < _PROBLEMS_KEPT:
            self.problems.append(text)


def check_audit(
    paths: Paths, call_log: Path, calls: list[LoadCall], head_before: int, log_offset: int
) -> AuditCheck:
    """Match every call to its audit rows and call-log line; verify the hash chain."""
    check = AuditCheck()
    clients = {call.client for call in calls}
    decisions: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    outcomes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with AuditLog(paths.audit_db, read_only=True) as log:
        after = head_before
        while rows := log.tail(after, 5000):
            after = rows[-1]["id"]
            for row in rows:
                if row["client"] not in clients:
                    continue
                check.rows_checked += 1
                if row["kind"] == "decision":
                    decisions[(row["client"], row["tool"], row["arguments"])].append(row)
                else:
                    outcomes[row["call_id"]].append(row)
        report = log.verify()
    check.chain_ok = report.ok
    check.chain_detail = report.problem or f"{report.rows} rows, last hash {report.last_hash}"
    allowed_lines: Counter[tuple[str, str]] = Counter()
    for call in calls:
        key = (call.client, call.exposed, canonical_json(call.arguments).decode())
        found = decisions.pop(key, [])
        if not found:
            check.missing_rows += 1 + (call.expected == ALLOWED)
            check.problem(f"{call.tag}: no decision row")
            continue
        check.extra_rows += len(found) - 1
        row = found[0]
        _check_decision(check, call, row, outcomes.pop(row["call_id"], []))
        if row["decision"] == "allow":
            allowed_lines[(call.tool, key[2])] += 1
    for rows in decisions.values():
        check.extra_rows += len(rows)
    for rows in outcomes.values():
        check.extra_rows += len(rows)
    _check_call_log(check, call_log, log_offset, allowed_lines)
    return check


def _check_decision(
    check: AuditCheck, call: LoadCall, row: dict[str, Any], outcome_rows: list[dict[str, Any]]
) -> None:
    expected = "allow" if call.expected == ALLOWED else "deny"
    reason = str(row["reason"] or "")
    if row["decision"] != expected:
        check.wrong_rows += 1
        check.problem(f"{call.tag}: decision row says {row['decision']}, expected {expected}")
    elif call.expected == RATE_LIMITED and not reason.startswith(f"rate limit {RATE_COUNTER}:"):
        check.wrong_rows += 1
        check.problem(f"{call.tag}: rate-limit denial recorded with reason {reason!r}")
    elif call.expected == DENIED and not reason.endswith(DENY_REASON):
        check.wrong_rows += 1
        check.problem(f"{call.tag}: policy denial recorded with reason {reason!r}")
    if expected == "allow":
        if not outcome_rows:
            check.missing_rows += 1
            check.problem(f"{call.tag}: forwarded call has no outcome row")
        elif outcome_rows[0]["outcome"] != "ok":
            check.wrong_rows += 1
            check.problem(f"{call.tag}: outcome {outcome_rows[0]['outcome']}: {outcome_rows[0]['error']}")
        check.extra_rows += max(0, len(outcome_rows) - 1)
    elif outcome_rows:
        check.extra_rows += len(outcome_rows)
        check.problem(f"{call.tag}: a denied call has an outcome row")


def _check_call_log(
    check: AuditCheck, call_log: Path, offset: int, allowed: Counter[tuple[str, str]]
) -> None:
    """Every line the upstream logged must match one allowed decision row, and each only once."""
    if not call_log.exists():
        return
    with call_log.open("rb") as handle:
        handle.seek(offset)
        lines = handle.read().splitlines()
    for line in lines:
        entry = json.loads(line)
        check.upstream_calls += 1
        key = (entry["tool"], canonical_json(entry["arguments"]).decode())
        if allowed[key] > 0:
            allowed[key] -= 1
        else:
            check.unmatched_upstream_calls += 1
            check.problem(f"upstream got {key} without an allowed decision row for it")
    for key, left in allowed.items():
        if left > 0:
            check.unmatched_upstream_calls += left
            check.problem(f"{key} was allowed but never reached the upstream")


@dataclass(frozen=True)
class LoadReport:
    """The result of one :func:`~approver.testing.load.run.run_load` round. ``ok`` when nothing was lost."""

    transport: str
    clients: int
    calls_per_client: int
    calls: int
    answered: int
    answered_twice: int
    """Second answers to a request, plus answers to requests never made (must be 0)."""
    lost: int
    """Calls that got no answer: the client failed or ``call_timeout`` passed (must be 0)."""
    unexpected: int
    """Calls answered with another kind than their plan says (wrong content, error, wrong decision)."""
    by_kind: dict[str, int]
    audit_rows_checked: int
    missing_rows: int
    extra_rows: int
    wrong_rows: int
    upstream_calls: int
    unmatched_upstream_calls: int
    chain_ok: bool
    chain_detail: str
    setup_s: float
    """Seconds until every client had connected (bridge processes start here)."""
    wall_s: float
    """Seconds from the first call to the last answer."""
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    rss_before_kb: int
    """The gateway's VmRSS once every client had connected, just before the first call (KiB)."""
    rss_after_kb: int
    """The gateway's VmRSS after the last client disconnected (KiB)."""
    rss_peak_kb: int
    """The highest VmRSS sampled (every 50 ms) from before the clients connected until after (KiB)."""
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every call answered once with its expected kind, every row present and right, chain intact."""
        return (
            self.answered == self.calls
            and self.answered_twice == 0
            and self.lost == 0
            and self.unexpected == 0
            and self.missing_rows == 0
            and self.extra_rows == 0
            and self.wrong_rows == 0
            and self.unmatched_upstream_calls == 0
            and self.chain_ok
        )

    def as_dict(self) -> dict[str, Any]:
        """Every field, plus ``ok``, as plain JSON-ready values."""
        return asdict(self) | {"ok": self.ok}

    def lines(self) -> list[str]:
        """A short human-readable summary."""
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.by_kind.items()))
        mib = 1024
        return [
            f"{self.clients} clients x {self.calls_per_client} calls over {self.transport}: "
            f"{'OK' if self.ok else 'FAILED'}",
            f"calls {self.calls}, answered {self.answered}, answered twice {self.answered_twice}, "
            f"lost {self.lost}, unexpected {self.unexpected} ({kinds})",
            f"audit rows checked {self.audit_rows_checked}: missing {self.missing_rows}, extra "
            f"{self.extra_rows}, wrong {self.wrong_rows}; upstream calls {self.upstream_calls}, "
            f"unmatched {self.unmatched_upstream_calls}; chain {'intact' if self.chain_ok else 'BROKEN'}",
            f"wall {self.wall_s:.1f} s ({self.calls_per_s:.0f} calls/s), latency p50 {self.p50_ms:.1f} ms, "
            f"p99 {self.p99_ms:.1f} ms; setup {self.setup_s:.1f} s",
            f"gateway RSS before {self.rss_before_kb / mib:.1f} MiB, "
            f"after {self.rss_after_kb / mib:.1f} MiB, peak {self.rss_peak_kb / mib:.1f} MiB",
            *(f"problem: {problem}" for problem in self.problems),
        ]


def summarize(
    *,
    transport: str,
    clients: int,
    calls_per_client: int,
    calls: list[LoadCall],
    duplicates: int,
    audit: AuditCheck,
    setup_s: float,
    wall_s: float,
    rss: tuple[int, int, int],
    client_errors: list[str],
) -> LoadReport:
    """Fold the calls, the audit check and the measurements into a :class:`LoadReport`."""
    answered = [call for call in calls if call.answers > 0]
    unexpected = [call for call in answered if call.kind != call.expected]
    latencies = sorted(call.latency for call in answered if call.latency is not None)
    problems = [*client_errors[:5]]
    problems += [
        f"{call.tag}: expected {call.expected}, got {call.kind}: {call.detail}" for call in unexpected[:10]
    ]
    problems += audit.problems
    return LoadReport(
        transport=transport,
        clients=clients,
        calls_per_client=calls_per_client,
        calls=len(calls),
        answered=len(answered),
        answered_twice=duplicates,
        lost=len(calls) - len(answered),
        unexpected=len(unexpected),
        by_kind=dict(Counter(call.kind or "lost" for call in calls)),
        audit_rows_checked=audit.rows_checked,
        missing_rows=audit.missing_rows,
        extra_rows=audit.extra_rows,
        wrong_rows=audit.wrong_rows,
        upstream_calls=audit.upstream_calls,
        unmatched_upstream_calls=audit.unmatched_upstream_calls,
        chain_ok=audit.chain_ok,
        chain_detail=audit.chain_detail,
        setup_s=round(setup_s, 3),
        wall_s=round(wall_s, 3),
        calls_per_s=round(len(answered) / wall_s, 1) if wall_s > 0 else 0.0,
        p50_ms=round(statistics.median(latencies) * 1000, 2) if latencies else 0.0,
        p99_ms=round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 2) if latencies else 0.0,
        rss_before_kb=rss[0],
        rss_after_kb=rss[1],
        rss_peak_kb=rss[2],
        problems=tuple(problems),
    )
