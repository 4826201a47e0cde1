"""Audit records for tests: a plausible allowed read, with any field changed by keyword."""

from __future__ import annotations

from typing import Any

from approver.audit.log import DecisionRecord, OutcomeRecord, canonical_json


def decision_record(call_id: str = "call-1", **changes: Any) -> DecisionRecord:
    """A decision row for an allowed ``files__read_file`` call; ``changes`` override fields."""
    fields: dict[str, Any] = {
        "call_id": call_id,
        "client": "claude",
        "server": "files",
        "tool": "files__read_file",
        "upstream_tool": "read_file",
        "risk_class": "read",
        "risk_level": "low",
        "risk_reasons": ["name starts with read"],
        "arguments": canonical_json({"path": "notes/today.txt"}),
        "decision": "allow",
        "decided_by": "policy",
        "rule": "risk_defaults.read",
        "reason": "reads are allowed",
    }
    return DecisionRecord(**(fields | changes))


def outcome_record(call_id: str = "call-1", **changes: Any) -> OutcomeRecord:
    """An ``ok`` outcome row for ``call_id``; ``changes`` override fields."""
    fields: dict[str, Any] = {"call_id": call_id, "outcome": "ok", "duration_ms": 12.5, "result_size": 42}
    return OutcomeRecord(**(fields | changes))
