"""Reading the audit log: who decided, how a call ended, risk level, and sorting by any column."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from approver.audit.log import AuditLog
from approver.audit.query import NOT_FORWARDED, RUNNING, SESSION_GRANT, SORT_KEYS, CallFilter
from approver.testing.records import decision_record as decision
from approver.testing.records import outcome_record as outcome


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit.db") as audit_log:
        # call id, decision fields, outcome fields (None: no outcome row)
        calls: list[tuple[str, dict[str, object], dict[str, object] | None]] = [
            ("asked", {"decided_by": "user", "rule": "default", "client": "b"}, {"duration_ms": 30.0}),
            ("granted", {"decided_by": "user", "rule": SESSION_GRANT, "client": "a"}, {"duration_ms": 5.0}),
            ("policy", {"risk_level": "high", "tool": "files__delete", "client": "c"}, None),
            ("failed", {"risk_level": "critical", "client": "a"}, {"outcome": "error", "error": "boom"}),
            ("denied", {"decision": "deny", "decided_by": "timeout", "client": "b"}, None),
            ("paused", {"decision": "deny", "decided_by": "paused", "risk_level": "medium"}, None),
        ]
        for call_id, fields, ended in calls:
            audit_log.record_decision(decision(call_id, **fields))
            if ended is not None:
                audit_log.record_outcome(outcome(call_id, **ended))
        yield audit_log


def matching(log: AuditLog, where: CallFilter) -> list[str]:
    found = sorted(call["call_id"] for call in log.query(where, limit=50))
    assert log.count(where) == len(found) == log.head_and_count(where)[1]
    assert len(log.summaries(where, limit=50)) == len(found)
    return found


def test_decided_by_tells_a_person_asked_now_from_an_earlier_session_grant(log: AuditLog) -> None:
    assert matching(log, CallFilter(decided_by="user")) == ["asked"]
    assert matching(log, CallFilter(decided_by=SESSION_GRANT)) == ["granted"]
    assert matching(log, CallFilter(decided_by="policy")) == ["failed", "policy"]
    assert matching(log, CallFilter(decided_by="timeout")) == ["denied"]
    assert matching(log, CallFilter(decided_by="paused")) == ["paused"]


def test_outcome_filters_on_the_calls_other_row(log: AuditLog) -> None:
    assert matching(log, CallFilter(outcome="ok")) == ["asked", "granted"]
    assert matching(log, CallFilter(outcome="error")) == ["failed"]
    assert matching(log, CallFilter(outcome="cancelled")) == []
    assert matching(log, CallFilter(outcome=NOT_FORWARDED)) == ["denied", "paused"]
    assert matching(log, CallFilter(outcome=RUNNING)) == ["policy"]


def test_risk_level_filters_and_every_filter_combines(log: AuditLog) -> None:
    assert matching(log, CallFilter(risk_level="critical")) == ["failed"]
    assert matching(log, CallFilter(risk_level="low", client="b")) == ["asked", "denied"]
    assert matching(log, CallFilter(risk_level="low", outcome="ok", decided_by="user")) == ["asked"]
    assert CallFilter(outcome="ok").slow and not CallFilter(client="a").slow


def test_export_keeps_both_rows_of_each_call_an_outcome_filter_selects(log: AuditLog) -> None:
    out = io.StringIO()
    rows = log.export(out, "jsonl", where=CallFilter(outcome="error"))
    assert rows == 2 and out.getvalue().count('"call_id": "failed"') == 2


def test_activity_counts_with_the_new_filters(log: AuditLog) -> None:
    counts = log.activity(CallFilter(outcome=NOT_FORWARDED))
    assert sum(count.count for count in counts) == 2


def sorted_calls(log: AuditLog, key: str, *, descending: bool, where: CallFilter | None = None) -> list[str]:
    ids = log.sorted_ids(where or CallFilter(), key, descending=descending)
    return [summary_id(log, call.id) for call in log.summaries_of(ids)]


def summary_id(log: AuditLog, row_id: int) -> str:
    found = log.call(row_id)
    assert found is not None
    return str(found["call_id"])


def test_calls_sort_by_any_column_with_the_newest_first_among_equals(log: AuditLog) -> None:
    assert sorted_calls(log, "time", descending=True) == [
        "paused",
        "denied",
        "failed",
        "policy",
        "granted",
        "asked",
    ]
    assert sorted_calls(log, "client", descending=False) == [
        "failed",
        "granted",
        "denied",
        "asked",
        "policy",
        "paused",
    ]
    assert sorted_calls(log, "risk", descending=True)[:3] == ["failed", "policy", "paused"]
    assert sorted_calls(log, "duration", descending=True)[:2] == ["asked", "failed"]
    outcome_order = sorted_calls(log, "outcome", descending=False)
    assert outcome_order[0] == "failed" and outcome_order[-2:] == ["granted", "asked"]


def test_sorting_keeps_to_the_filter_and_rejects_an_unknown_key(log: AuditLog) -> None:
    assert sorted_calls(log, "decided_by", descending=False, where=CallFilter(decision="deny")) == [
        "paused",
        "denied",
    ]
    assert set(SORT_KEYS) >= {
        "time",
        "client",
        "server",
        "tool",
        "risk",
        "decision",
        "decided_by",
        "duration",
    }
    with pytest.raises(ValueError, match="cannot sort by"):
        log.sorted_ids(CallFilter(), "arguments", descending=True)


def test_summaries_of_keeps_the_order_asked_for_and_skips_unknown_ids(log: AuditLog) -> None:
    ids = list(log.sorted_ids(CallFilter(), "time", descending=False))
    picked = [ids[3], 999_999, ids[0]]
    assert [summary.id for summary in log.summaries_of(picked)] == [ids[3], ids[0]]
    assert log.summaries_of([]) == []
