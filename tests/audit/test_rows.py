"""Rows beyond decision and outcome: a person's edit and a result review, in the same chain."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from approver.audit.log import AuditLog, ReviewRecord, canonical_json, check_chain
from approver.audit.redact import Redactor
from approver.audit.rows import EDIT_REASON
from approver.cli.audit import _format_row
from approver.testing.records import decision_record as decision
from approver.testing.records import outcome_record as outcome

ORIGINAL = canonical_json({"path": "/etc/passwd", "token": "ghp_" + "a" * 36})
APPROVED = canonical_json({"path": "/home/me/notes.md", "token": "ghp_" + "a" * 36})


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit.db", Redactor()) as audit_log:
        yield audit_log


def test_an_edited_decision_is_two_rows_in_one_commit_and_the_chain_verifies(
    log: AuditLog, tmp_path: Path
) -> None:
    first = log.record_decision(decision("c1", arguments=ORIGINAL, approved=APPROVED, decided_by="user"))
    log.record_outcome(outcome("c1"))
    decision_row, edit_row, outcome_row = log.tail(0, 10)
    assert first == decision_row["id"] and edit_row["id"] == first + 1
    assert edit_row["kind"] == "edit" and edit_row["call_id"] == "c1"
    assert json.loads(edit_row["arguments"]) == {"path": "/home/me/notes.md", "token": "[REDACTED:token]"}
    assert edit_row["args_size"] == len(APPROVED) and edit_row["reason"] == EDIT_REASON
    assert json.loads(decision_row["arguments"])["path"] == "/etc/passwd"
    assert outcome_row["tool"] == "files__read_file"
    assert log.verify().ok
    with AuditLog(tmp_path / "audit.db", read_only=True) as again:
        assert again.verify().ok


def test_a_call_with_an_edit_and_a_review_reads_back_with_both(log: AuditLog) -> None:
    row_id = log.record_decision(decision("c2", arguments=ORIGINAL, approved=APPROVED))
    log.record_outcome(outcome("c2"))
    log.record_review(ReviewRecord("c2", "deny", "user", "not for the agent"))
    call = log.call(row_id)
    assert call is not None
    assert call["edit_id"] == row_id + 1 and call["edit_decided_by"] == "user"
    assert json.loads(call["edit_arguments"])["path"] == "/home/me/notes.md"
    assert (call["review_decision"], call["review_reason"]) == ("deny", "not for the agent")
    assert call["review_id"] == row_id + 3
    review_row = log.tail(0, 10)[-1]
    assert (review_row["client"], review_row["tool"]) == ("claude", "files__read_file")
    plain = log.call(log.record_decision(decision("c3")))
    assert plain is not None and plain["edit_id"] is None and plain["review_id"] is None


def test_exports_keep_the_new_rows_and_a_full_export_still_verifies(log: AuditLog) -> None:
    log.record_decision(decision("c4", approved=APPROVED))
    log.record_review(ReviewRecord("c4", "allow", "user", "passed on"))
    out = io.StringIO()
    log.export(out, "jsonl")
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [row["kind"] for row in rows] == ["decision", "edit", "review"]
    assert check_chain(rows).ok
    table = io.StringIO(newline="")
    log.export(table, "csv")
    assert [row["kind"] for row in csv.DictReader(io.StringIO(table.getvalue()))] == [
        "decision",
        "edit",
        "review",
    ]


def test_audit_tail_prints_an_edit_and_a_review_in_words(log: AuditLog) -> None:
    log.record_decision(decision("c5", approved=APPROVED))
    log.record_review(ReviewRecord("c5", "deny", "timeout", "nobody reviewed the result in time"))
    _, edit, review = (_format_row(row) for row in log.tail(0, 10))
    assert "edited by user" in edit and "/home/me/notes.md" in edit
    assert "result withheld by timeout: nobody reviewed the result in time" in review
