"""What each record becomes in the ``events`` table: its columns, redacted and capped.

A :class:`~approver.audit.records.DecisionRecord` is one ``decision`` row, followed by an ``edit``
row when a person approved edited arguments; an :class:`~approver.audit.records.OutcomeRecord`
is an ``outcome`` row and a :class:`~approver.audit.records.ReviewRecord` a ``review`` row. Every
text that came from an agent, a server or a person passes the redactor first; arguments are kept
as canonical JSON (a preview past :data:`ARGUMENTS_CAP`) with the size and SHA-256 of the exact
bytes. :mod:`approver.audit.log` chains and commits what this module builds.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Final

from approver.audit.preview import redacted_preview, redacted_text_preview
from approver.audit.records import DecisionRecord, OutcomeRecord, ReviewRecord, canonical_json
from approver.audit.redact import Redactor

ARGUMENTS_CAP: Final = 64 * 1024
"""Stored (redacted) arguments longer than this many UTF-8 bytes are cut to a preview."""

ERROR_CAP: Final = 8 * 1024
"""Stored error messages are cut to this many UTF-8 bytes."""

EDIT_REASON: Final = (
    "the user edited the arguments before approving; these are the approved arguments, forwarded in "
    "place of the call's own (in its decision row)"
)
"""The reason of every ``edit`` row."""

Row = tuple[dict[str, Any], bool]
"""A row's columns, and whether its client, server and tool are copied from its call's decision row."""


class RowMaker:
    """Turns records into rows, redacting with ``redactor``."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    def rows(self, record: DecisionRecord | OutcomeRecord | ReviewRecord) -> list[Row]:
        """The rows ``record`` is written as, in order."""
        if isinstance(record, DecisionRecord):
            decision = self._decision_row(record)
            if record.approved is None:
                return [(decision, False)]
            return [(decision, False), (self._edit_row(decision, record.approved), False)]
        if isinstance(record, ReviewRecord):
            return [(self._review_row(record), True)]
        return [(self._outcome_row(record), True)]

    def _decision_row(self, record: DecisionRecord) -> dict[str, Any]:
        redact = self._redactor.redact_text
        names = ("call_id", "client", "server", "tool", "upstream_tool", "risk_class", "risk_level")
        row: dict[str, Any] = {name: str(getattr(record, name)) for name in names}
        return (
            row
            | self._arguments(record.arguments, record.value)
            | {
                "kind": "decision",
                "risk_reasons": canonical_json([str(reason) for reason in record.risk_reasons]).decode(),
                "decision": str(record.decision),
                "decided_by": str(record.decided_by),
                "rule": redact(str(record.rule)),
                "reason": redact(str(record.reason)),
            }
        )

    def _edit_row(self, decision: dict[str, Any], approved: bytes) -> dict[str, Any]:
        return (
            decision
            | self._arguments(approved)
            | {"kind": "edit", "decision": "allow", "decided_by": "user", "reason": EDIT_REASON}
        )

    def _review_row(self, record: ReviewRecord) -> dict[str, Any]:
        return {
            "kind": "review",
            "call_id": str(record.call_id),
            "decision": str(record.decision),
            "decided_by": str(record.decided_by),
            "reason": redacted_text_preview(str(record.reason), self._redactor, ERROR_CAP)[0],
        }

    def _outcome_row(self, record: OutcomeRecord) -> dict[str, Any]:
        duration = float(record.duration_ms)
        error = record.error and redacted_text_preview(record.error, self._redactor, ERROR_CAP)[0]
        return {
            "kind": "outcome",
            "call_id": str(record.call_id),
            "outcome": str(record.outcome),
            # SQLite stores NaN as NULL, which would no longer match the hash.
            "duration_ms": round(duration, 3) if math.isfinite(duration) else None,
            "result_size": record.result_size,
            "result_sha256": record.result_sha256,
            "error": error,
        }

    def _arguments(self, raw: bytes, value: Any = None) -> dict[str, Any]:
        """The redacted preview of the arguments ``raw`` encodes (``value``: them parsed, if at hand),
        in time bounded by the preview, not by the arguments."""
        try:
            stored, truncated = redacted_preview(
                json.loads(raw) if value is None else value, self._redactor, ARGUMENTS_CAP
            )
        except (ValueError, RecursionError):
            # Not JSON (or nested too deep to walk): redact it as text rather than lose the row.
            stored, truncated = redacted_text_preview(
                raw.decode(errors="replace"), self._redactor, ARGUMENTS_CAP
            )
        return {
            "arguments": stored,
            "args_truncated": int(truncated),
            "args_size": len(raw),
            "args_sha256": hashlib.sha256(raw).hexdigest(),
        }
