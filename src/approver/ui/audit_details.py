"""The audit window's words: one call's details, who decided and how calls end, and the chain check.

One vocabulary throughout: a *call* is one tool call and one line of the table; the log stores
it as *rows*: a decision row, plus an outcome row once the call was forwarded and returned. The
table, the status line, the export and the verification all count with these two words.
"""

from __future__ import annotations

import json
from typing import Any, Final

from approver.audit.log import AGENT_RUNS, VerifyReport
from approver.audit.query import NOT_FORWARDED, RUNNING, SESSION_GRANT
from approver.ui.audit_model import duration_text, local_time
from approver.visible import reveal_text

DECIDED_BY: Final = {
    "policy": "policy",
    "user": "a person (asked)",
    SESSION_GRANT: "session grant",
    "timeout": "timeout",
    "cancelled": "client went away",
    "error": "error",
    "paused": "paused",
    "shutdown": "approver quit",
    "no-approver": "no approver (serve)",
}
"""Who can decide a call (the ``decided_by`` filter), and how the window names each."""

OUTCOMES: Final = {
    "ok": "ok",
    "error": "error",
    "cancelled": "cancelled",
    AGENT_RUNS: "run by the agent itself",
    NOT_FORWARDED: "not forwarded",
    RUNNING: "no outcome yet",
}
"""How a call can end (the outcome filter), and how the window names each."""

RISK_LEVELS: Final = ("low", "medium", "high", "critical")

ROWS_EXPLAINED: Final = (
    "a call is a decision row, plus an outcome row once it was forwarded, and an edit or review row "
    "when a person edited it or reviewed its result"
)
"""What a row of the log is, said wherever the window counts rows."""

_DECIDED_BY_WORDS: Final = {
    "policy": "the policy",
    "user": "a person, asked about this call",
    "timeout": "nobody: it timed out waiting for a person",
    "cancelled": "the client, which went away while it waited",
    "error": "an error while deciding (denied to be safe)",
    "paused": "approver being paused",
    "shutdown": "approver quitting while it waited",
    "no-approver": "no approver: `approver serve` has no approval window",
}


def pretty_arguments(stored: str | None) -> str:
    """Stored arguments indented for reading (as stored when they are not JSON, e.g. shortened)."""
    if not stored:
        return "(none)"
    try:
        return json.dumps(json.loads(stored), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return stored


def decided_by_words(decided_by: str | None, rule: str | None) -> str:
    """Who decided a call, in words."""
    if decided_by == "user" and rule == SESSION_GRANT:
        return "a session grant: a person approved this tool earlier in this client's session"
    return _DECIDED_BY_WORDS.get(decided_by or "", reveal_text(decided_by or "?"))


def call_details(call: dict[str, Any]) -> str:
    """The detail pane's text for one call from :meth:`AuditLog.call`, every outside string revealed.

    Single-line fields are revealed with line breaks marked, so no value can fake a line of its
    own; the arguments (the only multi-line part) come last for the same reason.
    """

    def one(value: object) -> str:
        return reveal_text("" if value is None else str(value))

    reasons = "; ".join(one(reason) for reason in call.get("risk_reasons") or [])
    lines = [
        f"Call {one(call['call_id'])} (row {call['id']})",
        f"Time:         {local_time(call['ts'])} local ({one(call['ts'])})",
        f"Client:       {one(call['client'])}",
        f"Server:       {one(call['server'])}",
        f"Tool:         {one(call['tool'])} (upstream name: {one(call['upstream_tool'])})",
        f"Risk:         {one(call['risk_class'])}, {one(call['risk_level'])}"
        + (f" ({reasons})" if reasons else ""),
        f"Decision:     {one(call['decision'])}, decided by {one(call['decided_by'])}",
        f"Decided by:   {decided_by_words(call['decided_by'], call['rule'])}",
        f"Rule:         {one(call['rule']) or '(none)'}",
        f"Reason:       {one(call['reason']) or '(none)'}",
        "",
    ]
    edited = call.get("edit_id") is not None
    if edited:
        lines += [
            f"Edited:       by the {one(call['edit_decided_by'])} before approving: the call ran with the"
            f" approved arguments below (edit row {call['edit_id']}), not the ones the agent sent",
            "",
        ]
    lines += _outcome_lines(call, one)
    if call.get("review_id") is not None:
        verdict = "passed on to" if call["review_decision"] == "allow" else "withheld from"
        lines.append(
            f"Result review: {verdict} the agent, decided by {one(call['review_decided_by'])}:"
            f" {one(call['review_reason'])} (row {call['review_id']})"
        )
    lines += ["", f"Row hash:     {one(call['hash'])}", f"Chained to:   {one(call['prev_hash'])}"]
    if call.get("outcome_id") is not None:
        lines.append(f"Outcome row:  {call['outcome_id']}, hash {one(call['outcome_hash'])}")
    shortened = ", stored shortened" if call.get("args_truncated") else ""
    lines += [
        "",
        ("Arguments as the agent sent them" if edited else "Arguments")
        + f" ({call.get('args_size') or 0:,} bytes, sha256 {one(call['args_sha256'])}{shortened}):",
        reveal_text(pretty_arguments(call.get("arguments")), keep_newlines=True),
    ]
    if edited:
        shortened = ", stored shortened" if call.get("edit_args_truncated") else ""
        lines += [
            "",
            f"Approved arguments, as forwarded ({call.get('edit_args_size') or 0:,} bytes,"
            f" sha256 {one(call['edit_args_sha256'])}{shortened}):",
            reveal_text(pretty_arguments(call.get("edit_arguments")), keep_newlines=True),
        ]
    return "\n".join(lines)


def _outcome_lines(call: dict[str, Any], one: Any) -> list[str]:
    if call.get("outcome_id") is None:
        if call["decision"] == "allow":
            return ["Outcome:      none recorded yet (still running, or approver stopped before it ended)"]
        return ["Outcome:      not forwarded (the call was denied)"]
    if call.get("outcome") == AGENT_RUNS:
        return [
            "Outcome:      the agent runs this tool itself (one of its own tools, let through by its hook);"
            " approver forwards nothing and sees no result"
        ]
    size = call.get("result_size")
    # The duration is the upstream's alone; a person's time to decide is in the reason.
    lines = [
        f"Outcome:      {one(call['outcome'])}, the server took {duration_text(call['duration_ms']) or '?'}"
        f" (recorded {local_time(call['outcome_ts'])})",
    ]
    if call.get("error"):
        lines.append(f"Error:        {one(call['error'])}")
    elif call.get("outcome") == "error":
        lines.append("Error:        (no error text recorded: the log holds only the result's size and hash)")
    lines.append(
        f"Result:       {'?' if size is None else f'{size:,}'} bytes,"
        f" sha256 {one(call['result_sha256']) or '(no result)'}"
    )
    return lines


def verify_message(report: VerifyReport) -> str:
    """What the window says about a hash-chain check."""
    if report.ok and report.rows == 0:
        return "Nothing to verify yet: no calls have been recorded."
    if report.ok:
        return (
            f"Verified: the hash chain of all {report.rows:,} log rows is intact ({ROWS_EXPLAINED})."
            f" Last row {report.last_id:,}, hash {report.last_hash}. Note this hash: if a later check"
            " ends earlier or on another hash, rows were removed from the end."
        )
    if report.first_bad_id is None:
        return f"Verification failed: {reveal_text(report.problem)}"
    return (
        f"Verification FAILED at row {report.first_bad_id:,}: {reveal_text(report.problem)}"
        f" ({report.rows:,} log rows checked). The log was changed outside approver: keep a copy of"
        " the file as evidence before anything else writes to it."
    )
