"""The audit log's one SQLite table, ``events``: its columns, triggers, indexes and time format.

Both sides of the log build on this shape: :mod:`approver.audit.log` writes and hash-chains rows,
:mod:`approver.audit.query` reads them. Neither imports the other's internals, and this module
imports neither.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

SCHEMA_VERSION: Final = 1
"""The ``user_version`` of a log this approver writes."""

_CALL_COLUMNS: Final = ("id", "ts", "kind", "call_id", "client", "server", "tool", "upstream_tool")
_RISK_COLUMNS: Final = ("risk_class", "risk_level", "risk_reasons")
_ARGUMENT_COLUMNS: Final = ("arguments", "args_truncated", "args_size", "args_sha256")
_VERDICT_COLUMNS: Final = ("decision", "decided_by", "rule", "reason")

OUTCOME_COLUMNS: Final = ("outcome", "duration_ms", "result_size", "result_sha256", "error")
"""The columns only an ``outcome`` row fills."""

HASHED_COLUMNS: Final = _CALL_COLUMNS + _RISK_COLUMNS + _ARGUMENT_COLUMNS + _VERDICT_COLUMNS + OUTCOME_COLUMNS
"""Every column except ``prev_hash`` and ``hash``: what a row's hash covers."""

COLUMNS: Final = (*HASHED_COLUMNS, "prev_hash", "hash")
"""The columns of ``events`` in order, as exported."""

_INTEGER_COLUMNS: Final = {"id", "args_truncated", "args_size", "result_size"}

COLUMN_TYPES: Final[dict[str, type]] = {
    name: int if name in _INTEGER_COLUMNS else float if name == "duration_ms" else str for name in COLUMNS
}
"""Each column's type in the STRICT table."""

APPEND_ONLY_TRIGGERS: Final = """
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""
"""Triggers that refuse UPDATE and DELETE."""

# Partial indexes over decision rows (one per call) for the audit window's paging, counts,
# filters and activity chart: one per filter column, for a single filter, and two that cover
# every filter column in id and in time order, for combinations (see CallFilter.call_clauses
# in audit_query). ``kind`` is in each because SQLite (3.40) only uses a partial index as
# covering when the columns of its WHERE are in it; it never comes first, because an equality
# on ``kind`` would make the planner prefer that index over a narrow ``ts`` range.
CALL_INDEXES: Final = {
    "idx_calls_id": "id, kind, ts, decision, risk_class, server, client",
    "idx_calls_ts": "ts, kind, decision, risk_class, server, client",
    **{f"idx_calls_{name}": f"{name}, kind" for name in ("decision", "risk_class", "server", "client")},
}
"""Index name -> its columns, each index ``WHERE kind = 'decision'``."""


def format_ts(moment: datetime) -> str:
    """``2025-01-31T12:00:00.123Z``: how the log stores times (naive datetimes count as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"
