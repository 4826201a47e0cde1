"""The audit window's words: a call's details, who decided, and how rows and calls are counted."""

from __future__ import annotations

from typing import Any

from approver.audit.log import VerifyReport
from approver.audit.query import SESSION_GRANT
from approver.ui.audit_details import call_details, decided_by_words, verify_message


def a_call(**changes: Any) -> dict[str, Any]:
    call = {
        **dict.fromkeys(["client", "server", "tool", "upstream_tool", "hash", "prev_hash"], "x"),
        **{"id": 7, "call_id": "c", "ts": "2026-01-01T00:00:00.000Z", "decision": "allow", "outcome_id": 8},
        **{"risk_class": "read", "risk_level": "low", "risk_reasons": [], "decided_by": "user"},
        **{"rule": "default", "reason": "approved by the user; waited 11.9 s for a person"},
        **{"args_size": 2, "args_sha256": "s", "args_truncated": 0, "arguments": "{}"},
        **{"outcome": "ok", "duration_ms": 35.0, "outcome_ts": "2026-01-01T00:00:12.000Z"},
        **{"result_size": 10, "result_sha256": "r", "error": None, "outcome_hash": "h"},
    }
    return call | changes


def test_an_error_outcome_shows_the_servers_error_text() -> None:
    text = call_details(a_call(outcome="error", error="fail: this tool always fails"))
    assert "Error:        fail: this tool always fails" in text
    assert text.index("Error:") < text.index("Result:")


def test_an_error_outcome_without_text_says_the_log_has_none() -> None:
    text = call_details(a_call(outcome="error", error=None))
    assert "Error:        (no error text recorded" in text


def test_the_servers_time_and_a_persons_time_are_told_apart() -> None:
    text = call_details(a_call())
    assert "Outcome:      ok, the server took 35 ms" in text
    assert "Reason:       approved by the user; waited 11.9 s for a person" in text
    assert "Decided by:   a person, asked about this call" in text


def test_a_session_grant_is_named_as_such() -> None:
    assert decided_by_words("user", SESSION_GRANT).startswith("a session grant")
    assert decided_by_words("timeout", "default").startswith("nobody")
    assert decided_by_words("\u202eodd", None) == "<U+202E>odd"


def test_the_chain_check_counts_log_rows_and_says_what_a_row_is() -> None:
    message = verify_message(VerifyReport(True, 8, None, "", "f" * 64, 8))
    assert message.startswith(
        "Verified: the hash chain of all 8 log rows is intact (a call is a decision row, plus an "
        "outcome row once it was forwarded, and an edit or review row when a person edited it or "
        "reviewed its result)."
    )
