"""What a fuzz run found, and the check that nothing reached an upstream without a decision."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from approver.audit.log import canonical_json
from approver.testing.fuzz_cases import Case, Expect

ERROR: str = "error"
"""An answer kind: a JSON-RPC error, a tool error result, or an HTTP 4xx with a message."""
RESULT: str = "result"
"""An answer kind: a successful JSON-RPC result."""
SILENT: str = "silent"
"""An answer kind: no answer (HTTP 202, or nothing on the bridge's stdout)."""


@dataclass
class FuzzReport:
    """The figures of one fuzz run against the HTTP door (``http``) or the stdio bridge (``bridge``)."""

    target: str
    seed: int
    tried: Counter[str] = field(default_factory=Counter)
    """Inputs sent, by category."""
    proper_errors: int = 0
    """Inputs answered with a proper error."""
    served: int = 0
    """Odd but valid inputs answered with a result (allowed by their case)."""
    ignored: int = 0
    """Notifications acknowledged without an answer."""
    unexpected: list[str] = field(default_factory=list)
    """Inputs whose answer was not what a sound gateway gives (one line each)."""
    gateway_failures: list[str] = field(default_factory=list)
    """5xx answers, dropped connections, timeouts and failed liveness checks. Must be empty."""
    liveness_checks: int = 0
    """Valid requests sent between hostile ones to prove the gateway still serves."""
    upstream_calls: int | None = None
    """Calls the upstream's call log holds (None: no call log was given)."""
    undecided_calls: list[str] = field(default_factory=list)
    """Upstream calls without an ``allow`` decision row in the audit log. Must be empty."""
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """How many hostile inputs were sent."""
        return sum(self.tried.values())

    @property
    def ok(self) -> bool:
        """Every input got what it should, the gateway kept serving, and every forwarded call was decided."""
        return not (self.unexpected or self.gateway_failures or self.undecided_calls)

    def record(self, case: Case, kind: str, detail: str) -> None:
        """Count one answer of ``kind`` (:data:`ERROR`, :data:`RESULT` or :data:`SILENT`) to ``case``."""
        self.tried[case.category] += 1
        allowed = {
            Expect.ERROR: {ERROR},
            Expect.ANSWER: {ERROR, RESULT},
            Expect.SILENT: {ERROR, SILENT},
        }[case.expect]
        if kind not in allowed:
            self.unexpected.append(
                f"{case.category} ({case.era}): expected {case.expect.value}, got {detail}"
            )
        elif kind == ERROR:
            self.proper_errors += 1
        elif kind == RESULT:
            self.served += 1
        else:
            self.ignored += 1

    def summary(self) -> str:
        """A few plain lines for a terminal or a report."""
        categories = ", ".join(f"{name} {count}" for name, count in sorted(self.tried.items()))
        upstream = "not checked" if self.upstream_calls is None else str(self.upstream_calls)
        lines = [
            f"{self.target} fuzz, seed {self.seed}: {self.total} inputs in {self.seconds:.1f} s",
            f"  by category: {categories}",
            f"proper errors {self.proper_errors}, served {self.served}, "
            f"ignored notifications {self.ignored}, unexpected {len(self.unexpected)}",
            f"gateway failures {len(self.gateway_failures)} (liveness checks {self.liveness_checks})",
            f"upstream calls {upstream}, without a decision {len(self.undecided_calls)}",
        ]
        lines += [f"  unexpected: {line}" for line in self.unexpected[:20]]
        lines += [f"  failure: {line}" for line in self.gateway_failures[:20]]
        lines += [f"  undecided: {line}" for line in self.undecided_calls[:20]]
        return "\n".join(lines)


def undecided_calls(call_log: Path, audit_db: Path) -> tuple[int, list[str]]:
    """(calls in the upstream's call log, those without an ``allow`` decision row for the same bytes).

    The test server's ``--call-log`` holds each received call's tool and arguments; the audit
    log holds the SHA-256 of the exact argument bytes each decision was about. A call matches a
    decision row for its upstream tool whose ``args_sha256`` is that of its canonical JSON.
    """
    lines = call_log.read_text("utf-8").splitlines() if call_log.exists() else []
    connection = sqlite3.connect(f"{audit_db.as_uri()}?mode=ro", uri=True)
    try:
        decided = set(
            connection.execute(
                "SELECT upstream_tool, args_sha256 FROM events WHERE kind = 'decision' AND decision = 'allow'"
            ).fetchall()
        )
    finally:
        connection.close()
    missing = []
    for line in lines:
        call = json.loads(line)
        digest = hashlib.sha256(canonical_json(call["arguments"])).hexdigest()
        if (call["tool"], digest) not in decided:
            missing.append(f"{call['tool']} {line[:120]}")
    return len(lines), missing
