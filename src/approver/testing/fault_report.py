"""What a fault scenario reports, and the checks behind it: call logs against the audit log.

A scenario's clients call the package's test server started with ``--call-log``, which appends
every ``tools/call`` it receives. :func:`report` matches those lines against the committed
decision rows of the audit log: :attr:`FaultReport.lost` counts received calls without one.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import keyring.backends.fail
import mcp.types as types

from approver.audit.log import AuditLog, canonical_json
from approver.config.paths import Paths
from approver.config.tokens import TokenStore

ALLOW_ALL: Final = {"version": "1", "default": "allow"}
"""The policy of scenarios where every call should reach its upstream."""

APPROVE_ECHO: Final = {
    "version": "1",
    "default": "allow",
    "tools": {"test__echo": {"action": "require_approval"}},
}
"""The policy of the shutdown scenarios: ``test__echo`` waits for a person."""

CLIENT: Final = "faults"
"""The client name scenario calls are recorded under."""


@dataclass(frozen=True, slots=True)
class FaultReport:
    """What one scenario did and what it found. Field names are stable (docs read them)."""

    scenario: str
    faults: int
    """Faults injected (crashes, kills, refused writes, startup problems...)."""
    calls: int
    """Tool calls the scenario's clients made."""
    reached_upstream: int
    """Calls an upstream received, counted from its ``--call-log`` file."""
    rows_checked: int
    """Audit decision rows the received calls were matched against."""
    lost: int
    """Calls that reached an upstream without a committed ``allow`` decision row. Must be 0."""
    verify_ok: bool
    """Whether the audit log's hash chain verified afterwards."""
    denied: int = 0
    """Calls answered with a tool error that names the fault."""
    findings: tuple[str, ...] = ()
    """What was observed, one line each (messages users saw, timings)."""
    problems: tuple[str, ...] = ()
    """Expectations that did not hold; empty when the scenario passed."""

    @property
    def ok(self) -> bool:
        """Nothing lost, the chain intact and every expectation met."""
        return self.lost == 0 and self.verify_ok and not self.problems

    def to_json(self) -> str:
        """One JSON object (for report scripts)."""
        return json.dumps(asdict(self) | {"ok": self.ok}, ensure_ascii=False)


class Notes:
    """Collects findings and failed expectations while a scenario runs."""

    def __init__(self) -> None:
        self.findings: list[str] = []
        self.problems: list[str] = []

    def see(self, line: str) -> None:
        """Record an observation."""
        self.findings.append(line)

    def expect(self, condition: bool, problem: str) -> bool:
        """Record ``problem`` unless ``condition`` holds; returns ``condition``."""
        if not condition:
            self.problems.append(problem)
        return condition


# -- checking the audit log against what the upstream received ------------------------------------


def text_of(result: types.CallToolResult) -> str:
    """The text blocks of a tool result, joined."""
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


def read_call_log(path: Path) -> list[dict[str, Any]]:
    """The calls an upstream received, one dict (``tool``, ``arguments``) per line."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return []
    # The last line may be cut short if the upstream died mid-write; it was not acted on.
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def audit_rows(audit_db: Path) -> list[dict[str, Any]]:
    """Every committed row (decisions and outcomes) of the log at ``audit_db``, oldest first."""
    if not audit_db.exists():
        return []
    rows: list[dict[str, Any]] = []
    with AuditLog(audit_db, read_only=True) as log:
        while batch := log.tail(after_id=rows[-1]["id"] if rows else 0, limit=1000):
            rows += batch
    return rows


def decision_rows(audit_db: Path) -> list[dict[str, Any]]:
    """Every committed decision row of the log at ``audit_db``, oldest first."""
    return [row for row in audit_rows(audit_db) if row["kind"] == "decision"]


def unrecorded(received: Iterable[dict[str, Any]], rows: Iterable[dict[str, Any]]) -> int:
    """How many received calls have no committed ``allow`` decision row with the same arguments."""
    allowed = collections.Counter(
        (row["upstream_tool"], row["arguments"]) for row in rows if row["decision"] == "allow"
    )
    missing = 0
    for call in received:
        key = (call["tool"], canonical_json(call["arguments"]).decode())
        if allowed[key] > 0:
            allowed[key] -= 1
        else:
            missing += 1
    return missing


def verify_log(audit_db: Path) -> bool:
    """Whether the hash chain of the log at ``audit_db`` is intact."""
    with AuditLog(audit_db, read_only=True) as log:
        return log.verify().ok


def file_token_store(paths: Paths) -> TokenStore:
    """Client tokens in ``tokens.json``, so an ``approver`` subprocess finds them without a keyring."""
    paths.ensure()
    return TokenStore(paths.tokens_file, backend=keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]


def report(
    scenario: str,
    notes: Notes,
    *,
    faults: int,
    calls: int,
    call_logs: Sequence[Path],
    audit_db: Path,
    denied: int = 0,
    verify_ok: bool | None = None,
) -> FaultReport:
    """Match the call logs against the audit log and build the report."""
    received = [call for path in call_logs for call in read_call_log(path)]
    rows = decision_rows(audit_db)
    if verify_ok is None:
        verify_ok = verify_log(audit_db) if audit_db.exists() else False
    return FaultReport(
        scenario=scenario,
        faults=faults,
        calls=calls,
        reached_upstream=len(received),
        rows_checked=len(rows),
        lost=unrecorded(received, rows),
        verify_ok=verify_ok,
        denied=denied,
        findings=tuple(notes.findings),
        problems=tuple(notes.problems),
    )
