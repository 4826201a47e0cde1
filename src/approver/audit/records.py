"""The audit log's rows and their hash chain: what is recorded, and how a row proves its place.

A :class:`DecisionRecord` is written before a call is forwarded (with an ``edit`` row when a
person changed its arguments), an :class:`OutcomeRecord` after it returns, and a
:class:`ReviewRecord` when a person reviewed its result. Each stored row's ``hash`` is
``sha256(prev_hash + canonical JSON of its hashed columns)``; :func:`check_chain` recomputes the
chain over rows from the log or from an export.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from approver.audit.table import HASHED_COLUMNS
from approver.errors import ApproverError

GENESIS_HASH: Final = "0" * 64
"""The ``prev_hash`` of the first row."""

AGENT_RUNS: Final = "agent-runs"
"""The outcome of an agent's own tool call that its hook let through: the agent runs the tool
itself, so approver forwards nothing and sees no result."""


class AuditError(ApproverError):
    """The audit log cannot be opened or read."""


class AuditWriteError(AuditError):
    """A row could not be written; the chain in memory and on disk is unchanged."""


_CANONICAL: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# One encoder for every row: json.dumps with options builds a new one per call, which was a
# third of the cost of hashing a row (and so of verifying a million of them).


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical JSON bytes: sorted keys, no whitespace, UTF-8, non-ASCII kept."""
    return _CANONICAL.encode(value).encode()


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """The chain hash of ``row`` (a dict holding at least :data:`HASHED_COLUMNS`)."""
    body = canonical_json({name: row[name] for name in HASHED_COLUMNS})
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What was decided about one call, written before the call is forwarded."""

    call_id: str
    client: str
    server: str
    tool: str
    """The name the client saw."""
    upstream_tool: str
    risk_class: str
    risk_level: str
    risk_reasons: Sequence[str]
    arguments: bytes
    """The canonical JSON of the exact arguments (see :func:`canonical_json`)."""
    decision: str
    """``allow``, ``deny``, ..."""
    decided_by: str
    """``policy``, ``user``, ``timeout``, ``cancelled``, ``error``, ``paused``, ..."""
    rule: str
    reason: str
    value: Any = field(default=None, compare=False, repr=False)
    """The arguments :attr:`arguments` encodes, when the caller has them parsed (saves parsing them again)."""
    approved: bytes | None = None
    """When a person edited the arguments before approving: the canonical JSON of the arguments they
    approved, which were forwarded instead of ``arguments``. Written as an ``edit`` row right after
    the decision row, in the same commit."""


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """A person's review of a call's result before the agent got it (a rule's ``review_result``)."""

    call_id: str
    decision: str
    """``allow`` (the result was passed on) or ``deny`` (withheld)."""
    decided_by: str
    """``user``, ``timeout``, ``cancelled``, ``no-approver``, ``shutdown``, ``error``."""
    reason: str
    """What happened, with the person's message for the agent when they withheld the result."""


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """How one call ended, written after it returned (or was not forwarded)."""

    call_id: str
    outcome: str
    """``ok``, ``error``, ``cancelled`` or :data:`AGENT_RUNS`."""
    duration_ms: float
    result_size: int | None = None
    result_sha256: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of recomputing the chain."""

    ok: bool
    rows: int
    """Rows checked (up to and including the first bad one)."""
    first_bad_id: int | None = None
    problem: str = ""
    last_hash: str = GENESIS_HASH
    """The hash of the last good row: note it down to detect a later truncation of the log."""
    last_id: int = 0
    """The id of the last good row."""


def check_chain(rows: Iterable[dict[str, Any]]) -> VerifyReport:
    """Recompute the chain over rows in id order (from the log, or from a full JSONL export)."""
    count = 0
    expected, last_id = GENESIS_HASH, 0
    for row in rows:
        count += 1
        if row["prev_hash"] != expected:
            after = f"row {last_id}" if count > 1 else "the start of the log"
            problem = f"row {row['id']} does not follow {after}: rows were deleted or inserted between them"
            return VerifyReport(False, count, row["id"], problem, expected, last_id)
        if row_hash(expected, row) != row["hash"]:
            problem = f"row {row['id']} does not match its hash: it was edited"
            return VerifyReport(False, count, row["id"], problem, expected, last_id)
        expected, last_id = row["hash"], row["id"]
    return VerifyReport(True, count, None, "", expected, last_id)
