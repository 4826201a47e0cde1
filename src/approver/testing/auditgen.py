"""Generate a large, realistic and valid audit log quickly (for UI tests and benchmarks).

:func:`generate_audit_log` writes what a month of a busy gateway would have written: several
clients calling tools on several servers, mostly allowed by policy and followed by their
outcome row, some denied by policy, some decided by a person or by a timeout, with arguments
of varied sizes and a daily rhythm in the timestamps. Rows chain with
:func:`approver.audit.log.row_hash` and go in with ``executemany`` in one transaction, so
``AuditLog(path, read_only=True).verify()`` passes afterwards.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import itertools
import math
import random
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from approver.audit.log import COLUMNS, AuditLog, canonical_json, format_ts, row_hash

_INSERT: Final = "INSERT INTO events ({}) VALUES ({})".format(  # noqa: S608
    ", ".join(COLUMNS), ", ".join("?" * len(COLUMNS))
)
_INDEXES: Final = (
    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL"
)
_BATCH: Final = 5_000
_VARIANTS: Final = 400
"""Distinct argument payloads per tool: enough variety for search, cheap to generate."""


@dataclass(frozen=True, slots=True)
class _Tool:
    server: str
    tool: str
    risk_class: str
    risk_level: str
    reason: str
    weight: float
    policy: str
    """``allow``, ``deny`` or ``ask``: what the simulated policy does with this tool."""


_TOOLS: Final = (
    _Tool("files", "read_file", "read", "low", "name starts with read", 30, "allow"),
    _Tool("files", "list_directory", "read", "low", "name starts with list", 14, "allow"),
    _Tool("files", "write_file", "write", "medium", "name starts with write", 8, "ask"),
    _Tool("files", "delete_file", "destructive", "high", "name starts with delete", 1, "deny"),
    _Tool("git", "git_status", "read", "low", "read_only_hint is set", 12, "allow"),
    _Tool("git", "git_diff", "read", "low", "read_only_hint is set", 8, "allow"),
    _Tool("git", "git_commit", "write", "medium", "name contains commit", 3, "ask"),
    _Tool("shell", "run_command", "execute", "high", "name contains run", 6, "ask"),
    _Tool("time", "get_current_time", "read", "low", "name starts with get", 6, "allow"),
    _Tool("browser", "fetch", "read", "medium", "reads from the network", 7, "allow"),
    _Tool("github", "create_issue", "write", "medium", "name starts with create", 2, "ask"),
    _Tool("payments", "create_payment", "financial", "critical", "name mentions payment", 0.5, "deny"),
    _Tool("notes", "summarize", "other", "low", "no risk signal found", 2.5, "allow"),
)
_CLIENTS: Final = ("claude-desktop", "cursor", "vscode-copilot", "research-agent", "nightly-batch")
_CLIENT_WEIGHTS: Final = (40, 25, 15, 12, 8)
_WORDS: Final = (
    *("alpha", "beta", "gamma", "delta", "report", "draft", "config", "main", "test", "utils"),
    *("notes", "readme", "budget", "invoice", "customer", "release", "plan", "meeting", "summary"),
    *("index", "data", "model", "view", "server", "client", "cache", "token"),
)
_ERRORS: Final = ("file not found", "permission denied", "upstream timed out", "invalid arguments")


def _path(rng: random.Random) -> str:
    parts = rng.choices(_WORDS, k=rng.randint(1, 4))
    return "/home/dev/projects/" + "/".join(parts) + rng.choice((".py", ".md", ".json", ".txt", ""))


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choices(_WORDS, k=count))


def _arguments(rng: random.Random, tool: _Tool) -> dict[str, Any]:
    """Arguments as the tool would get them: mostly small, now and then several kilobytes."""
    folder = _path(rng).rsplit("/", 1)[0]
    match tool.tool:
        case "read_file" | "delete_file":
            return {"path": _path(rng)}
        case "list_directory":
            return {"path": folder, "recursive": rng.random() < 0.2}
        case "write_file":
            return {"path": _path(rng), "content": _words(rng, min(int(rng.lognormvariate(4, 1.3)), 4000))}
        case "git_status" | "git_diff":
            return {"repo_path": folder}
        case "git_commit":
            return {"repo_path": folder, "message": _words(rng, 8)}
        case "run_command":
            command = rng.choice(("pytest -q", "ls -la", "make build", "npm test", "du -sh ."))
            return {"command": command, "cwd": folder}
        case "get_current_time":
            return {"timezone": rng.choice(("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"))}
        case "fetch":
            return {"url": f"https://example.org/{rng.choice(_WORDS)}", "max_length": 5000}
        case "create_issue":
            return {"repo": "acme/" + rng.choice(_WORDS), "title": _words(rng, 6), "body": _words(rng, 60)}
        case "create_payment":
            return {"amount": round(rng.uniform(5, 5000), 2), "currency": "EUR", "to": rng.choice(_WORDS)}
        case _:
            return {"text": _words(rng, rng.randint(20, 200))}


def _payloads(rng: random.Random, tool: _Tool) -> list[tuple[str, int, str]]:
    """Stored arguments, their size and their sha256, for ``_VARIANTS`` calls of ``tool``."""
    payloads = []
    for _ in range(_VARIANTS):
        raw = canonical_json(_arguments(rng, tool))
        payloads.append((raw.decode(), len(raw), hashlib.sha256(raw).hexdigest()))
    return payloads


def _verdicts(tool: _Tool) -> tuple[Sequence[tuple[str, str, str, str]], Sequence[float]]:
    """Possible (decision, decided_by, rule, reason) rows for ``tool`` and their weights."""
    rule = f"risk_defaults.{tool.risk_class}"
    if tool.policy == "allow":
        return [("allow", "policy", rule, f"{tool.risk_class} calls are allowed")], [1]
    if tool.policy == "deny":
        return [("deny", "policy", rule, f"{tool.risk_class} calls are denied by policy")], [1]
    verdicts = [
        ("allow", "user", rule, "approved by the user"),
        ("deny", "user", rule, "denied by the user"),
        ("deny", "timeout", rule, "nobody approved this call in time"),
        ("deny", "cancelled", rule, "the client cancelled or went away while the call waited for approval"),
    ]
    return verdicts, [70, 18, 10, 2]


def _timestamps(rng: random.Random, count: int, start: datetime, end: datetime) -> Iterator[str]:
    """``count`` ascending times between start and end, busier around 14:00 UTC than at night."""
    span = (end - start).total_seconds()
    base = start.timestamp()
    moments: list[float] = []
    while len(moments) < count:
        moment = base + rng.random() * span
        hour = (moment % 86_400) / 3_600
        if rng.random() < 0.25 + 0.75 * math.exp(-(((hour - 14) / 4.5) ** 2)):
            moments.append(moment)
    moments.sort()
    days: dict[int, str] = {}
    for moment in moments:
        millis = int(moment * 1000)
        day, rest = divmod(millis, 86_400_000)
        if day not in days:
            days[day] = format_ts(datetime.fromtimestamp(day * 86_400, UTC))[:11]
        seconds, milli = divmod(rest, 1000)
        minutes, second = divmod(seconds, 60)
        yield f"{days[day]}{minutes // 60:02d}:{minutes % 60:02d}:{second:02d}.{milli:03d}Z"


def _events(rng: random.Random, count: int, first_call: int) -> Iterator[dict[str, Any]]:
    """Exactly ``count`` rows (no id, ts or hashes yet); each outcome trails its decision a little."""
    payloads = {tool: _payloads(rng, tool) for tool in _TOOLS}
    verdicts = {tool: _verdicts(tool) for tool in _TOOLS}
    reasons = {tool: canonical_json([tool.reason]).decode() for tool in _TOOLS}
    tool_weights = list(itertools.accumulate(tool.weight for tool in _TOOLS))
    client_weights = list(itertools.accumulate(_CLIENT_WEIGHTS))
    # Heap of (row position at which the outcome is written, call number, outcome row).
    pending: list[tuple[int, int, dict[str, Any]]] = []
    call_number = first_call
    for position in range(count):
        if pending and (pending[0][0] <= position or count - position <= len(pending)):
            yield heapq.heappop(pending)[2]
            continue
        call_number += 1
        tool = _TOOLS[bisect.bisect(tool_weights, rng.random() * tool_weights[-1])]
        client = _CLIENTS[bisect.bisect(client_weights, rng.random() * client_weights[-1])]
        arguments, size, digest = rng.choice(payloads[tool])
        choices, weights = verdicts[tool]
        verdict = choices[0] if len(choices) == 1 else rng.choices(choices, weights)[0]
        decision, decided_by, rule, reason = verdict
        call_id = f"{0x190000000000 + call_number * 7919:x}-{call_number}"
        name = f"{tool.server}__{tool.tool}"
        yield {
            "kind": "decision",
            "call_id": call_id,
            "client": client,
            "server": tool.server,
            "tool": name,
            "upstream_tool": tool.tool,
            "risk_class": tool.risk_class,
            "risk_level": tool.risk_level,
            "risk_reasons": reasons[tool],
            "arguments": arguments,
            "args_truncated": 0,
            "args_size": size,
            "args_sha256": digest,
            "decision": decision,
            "decided_by": decided_by,
            "rule": rule,
            "reason": reason,
        }
        if decision == "allow":
            due = position + 1 + int(rng.expovariate(0.7))
            call = {"call_id": call_id, "client": client, "server": tool.server, "tool": name}
            heapq.heappush(pending, (due, call_number, _outcome(rng, call)))


def _outcome(rng: random.Random, call: dict[str, Any]) -> dict[str, Any]:
    draw = rng.random()
    outcome, error = ("ok", None) if draw >= 0.06 else ("error", rng.choice(_ERRORS))
    if 0.05 <= draw < 0.06:
        outcome, error = "cancelled", "the client cancelled the call"
    size = int(rng.lognormvariate(6, 1.5)) if outcome == "ok" else 0
    return call | {
        "kind": "outcome",
        "outcome": outcome,
        "duration_ms": round(rng.lognormvariate(3, 1.2), 3),
        "result_size": size,
        "result_sha256": hashlib.sha256(f"{call['call_id']}:{size}".encode()).hexdigest() if size else None,
        "error": error,
    }


def generate_audit_log(
    path: Path, rows: int, *, seed: int = 0, end: datetime | None = None, days: int = 30
) -> int:
    """Append ``rows`` event rows to the audit log at ``path`` (created if missing); returns the last id.

    Timestamps spread over the ``days`` before ``end`` (default: now). An existing log's chain
    is continued (its rows should be older than ``end - days``). Nothing else may have the
    file open meanwhile. The same ``seed`` and ``end`` give the same log.
    """
    if rows < 0:
        raise ValueError("rows must not be negative")
    with AuditLog(path) as log:  # the schema exactly as the app creates it
        last_id, last_hash = log.last_id, log.last_hash
    rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
    end = end or datetime.now(UTC)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        first_call = conn.execute("SELECT count(*) FROM events WHERE kind = 'decision'").fetchone()[0]
        # A bulk load: per-row durability buys nothing here; the whole load commits or not at all.
        conn.execute("PRAGMA journal_mode=MEMORY")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB: index pages stay in memory during the load
        conn.execute("BEGIN IMMEDIATE")
        if last_id == 0:
            # Building indexes once after the load is cheaper than updating them per row;
            # reopening with AuditLog below recreates exactly the ones the app defines.
            for (name,) in conn.execute(_INDEXES).fetchall():
                conn.execute(f'DROP INDEX "{name}"')
        times = _timestamps(rng, rows, end - timedelta(days=days), end)
        batch: list[tuple[Any, ...]] = []
        empty = dict.fromkeys(COLUMNS)
        for ts, fields in zip(times, _events(rng, rows, first_call), strict=True):
            last_id += 1
            row = empty | fields
            row["id"], row["ts"], row["prev_hash"] = last_id, ts, last_hash
            row["hash"] = last_hash = row_hash(last_hash, row)
            batch.append(tuple(row.values()))
            if len(batch) == _BATCH:
                conn.executemany(_INSERT, batch)
                batch.clear()
        conn.executemany(_INSERT, batch)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    AuditLog(path).close()
    return last_id
