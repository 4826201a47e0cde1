"""The tamper-evident audit log: every decision and outcome, hash-chained, in SQLite.

One append-only table ``events`` holds two kinds of rows in one chain: a ``decision`` row,
committed before a call is forwarded upstream, and an ``outcome`` row after the call returns.
Each row's ``hash`` is ``sha256(prev_hash + canonical JSON of the row's other columns)``, so an
edited, deleted or inserted row breaks the chain and :meth:`AuditLog.verify` names it.
Triggers refuse UPDATE and DELETE; someone who can rewrite the whole file can still rebuild
the chain, so the chain proves consistency, not authorship.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import math
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, TextIO

from sqlite_utils import Database

from approver.errors import ApproverError
from approver.redact import Redactor

GENESIS_HASH: Final = "0" * 64
"""The ``prev_hash`` of the first row."""

ARGUMENTS_CAP: Final = 64 * 1024
"""Stored (redacted) arguments longer than this many UTF-8 bytes are cut to a preview."""

ERROR_CAP: Final = 8 * 1024
"""Stored error messages are cut to this many UTF-8 bytes."""

SCHEMA_VERSION: Final = 1

_CALL_COLUMNS: Final = ("id", "ts", "kind", "call_id", "client", "server", "tool", "upstream_tool")
_RISK_COLUMNS: Final = ("risk_class", "risk_level", "risk_reasons")
_ARGUMENT_COLUMNS: Final = ("arguments", "args_truncated", "args_size", "args_sha256")
_VERDICT_COLUMNS: Final = ("decision", "decided_by", "rule", "reason")
_OUTCOME_COLUMNS: Final = ("outcome", "duration_ms", "result_size", "result_sha256", "error")

HASHED_COLUMNS: Final = (
    _CALL_COLUMNS + _RISK_COLUMNS + _ARGUMENT_COLUMNS + _VERDICT_COLUMNS + _OUTCOME_COLUMNS
)
"""Every column except ``prev_hash`` and ``hash``: what a row's hash covers."""

COLUMNS: Final = (*HASHED_COLUMNS, "prev_hash", "hash")
"""The columns of ``events`` in order, as exported."""

_INTEGER_COLUMNS: Final = {"id", "args_truncated", "args_size", "result_size"}
_COLUMN_TYPES: Final[dict[str, type]] = {
    name: int if name in _INTEGER_COLUMNS else float if name == "duration_ms" else str for name in COLUMNS
}

_APPEND_ONLY_TRIGGERS: Final = """
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""

# Partial indexes over decision rows (one per call) for the audit window's paging, counts,
# filters and activity chart: one per filter column, for a single filter, and two that cover
# every filter column in id and in time order, for combinations (see CallFilter.call_clauses).
# ``kind`` is in each because SQLite (3.40) only uses a partial index as covering when the
# columns of its WHERE are in it; it never comes first, because an equality on ``kind`` would
# make the planner prefer that index over a narrow ``ts`` range.
_CALL_INDEXES: Final = {
    "idx_calls_id": "id, kind, ts, decision, risk_class, server, client",
    "idx_calls_ts": "ts, kind, decision, risk_class, server, client",
    **{f"idx_calls_{name}": f"{name}, kind" for name in ("decision", "risk_class", "server", "client")},
}
_ACTIVITY_PREFIX: Final = {"minute": 16, "hour": 13, "day": 10}
"""How many characters of a stored time (``2025-01-31T12:34``) name its bucket."""

# SQL in this module is assembled only from the constant column names above and fixed clauses;
# every value is a bound parameter (hence the S608 marks).
_INSERT_SQL: Final = "INSERT INTO events ({}) VALUES ({})".format(  # noqa: S608
    ", ".join(COLUMNS), ", ".join(f":{name}" for name in COLUMNS)
)
_CALL_SELECT: Final = ", ".join(
    [f"d.{name}" for name in HASHED_COLUMNS if name not in _OUTCOME_COLUMNS]
    + [f"o.{name}" for name in _OUTCOME_COLUMNS]
    + ["o.id AS outcome_id", "o.ts AS outcome_ts"]
)
_CALLS_FROM: Final = "FROM events d LEFT JOIN events o ON o.call_id = d.call_id AND o.kind = 'outcome'"
_SUMMARY_SELECT: Final = (
    "d.id, d.ts, d.client, d.server, d.tool, d.risk_class, d.risk_level, d.decision, d.decided_by,"
    " o.outcome, o.duration_ms"
)


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


def format_ts(moment: datetime) -> str:
    """``2025-01-31T12:00:00.123Z``: how the log stores times (naive datetimes count as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


_DURATION: Final = re.compile(r"\s*(\d+)\s*([smhdw])\s*")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``"30m"``, ``"1h"``, ``"2d"``, ``"1w"`` ago, or an ISO date/time (UTC unless it has an offset)."""
    if match := _DURATION.fullmatch(text):
        amount, unit = match.groups()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use a duration like 30m, 1h, 2d, 1w or a date like 2025-01-31"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """How one call ended, written after it returned (or was not forwarded)."""

    call_id: str
    outcome: str
    """``ok``, ``error``, ``cancelled`` or ``not_forwarded``."""
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


@dataclass(frozen=True, slots=True)
class CallSummary:
    """One call as a list shows it: its decision row's main columns and how it ended."""

    id: int
    """The decision row's id."""
    ts: str
    client: str | None
    server: str | None
    tool: str | None
    risk_class: str | None
    risk_level: str | None
    decision: str | None
    decided_by: str | None
    outcome: str | None
    """None while the call runs, and for calls that were never forwarded."""
    duration_ms: float | None


@dataclass(frozen=True, slots=True)
class ActivityCount:
    """How many calls got one decision within one time bucket."""

    start: datetime
    """The bucket's start (UTC)."""
    decision: str
    count: int


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


@dataclass(frozen=True, slots=True)
class CallFilter:
    """Which calls :meth:`AuditLog.query`, :meth:`AuditLog.count` and :meth:`AuditLog.export` cover."""

    decision: str | None = None
    risk_class: str | None = None
    server: str | None = None
    client: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    """Exclusive upper bound."""
    text: str | None = None
    """Case-insensitive substring of the tool name or the (redacted) arguments."""
    min_id: int | None = None
    """Only calls whose decision row id is at least this."""
    max_id: int | None = None
    """Only calls whose decision row id is at most this (a list that must not shift pins it here)."""

    def call_clauses(self, prefix: str = "", *, scan: bool = False) -> tuple[list[str], dict[str, Any]]:
        """SQL conditions and parameters on a decision row (``prefix`` like ``"d."``), times excluded.

        ``scan=True`` writes equalities as ``+column = ...`` so SQLite does not use their
        single-column indexes: right when several conditions are selective together but none
        alone, where checking them all in a covering index beats looking up rows one by one.
        """
        params: dict[str, Any] = {
            name: str(value) for name in _EQUAL_FILTERS if (value := getattr(self, name)) is not None
        }
        clauses = [f"{'+' if scan else ''}{prefix}{name} = :{name}" for name in params]
        if self.text:
            like = " OR ".join(f"{prefix}{name} LIKE :text ESCAPE '\\'" for name in _TEXT_COLUMNS)
            clauses.append(f"({like})")
            escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params["text"] = f"%{escaped}%"
        for name, operator in _ID_OPERATORS.items():
            if (bound := getattr(self, name)) is not None:
                clauses.append(f"{prefix}id {operator} :{name}")
                params[name] = int(bound)
        return clauses, params

    def time_clauses(self, prefix: str = "") -> tuple[list[str], dict[str, Any]]:
        """SQL conditions and parameters on ``ts`` for ``since`` and ``until``."""
        moments = {"since": self.since, "until": self.until}
        params = {name: format_ts(moment) for name, moment in moments.items() if moment is not None}
        return [f"{prefix}ts {_TIME_OPERATORS[name]} :{name}" for name in params], params


_EQUAL_FILTERS: Final = ("decision", "risk_class", "server", "client")
_TEXT_COLUMNS: Final = ("tool", "upstream_tool", "arguments")
_TIME_OPERATORS: Final = {"since": ">=", "until": "<"}
_ID_OPERATORS: Final = {"min_id": ">=", "max_id": "<="}


def _call_conditions(where: CallFilter) -> tuple[str, dict[str, Any]]:
    """The WHERE clause and parameters selecting decision rows that match ``where``."""
    narrowing = sum(getattr(where, name) is not None for name in _EQUAL_FILTERS)
    narrowing += where.since is not None or where.until is not None
    # A text search reads every candidate row anyway: then one index to narrow them is best.
    clauses, params = where.call_clauses(scan=narrowing > 1 and not where.text)
    time_clauses, time_params = where.time_clauses()
    return " AND ".join(["kind = 'decision'", *clauses, *time_clauses]), params | time_params


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _clip(text: str, limit: int) -> tuple[str, bool]:
    encoded = text.encode()
    if len(encoded) <= limit:
        return text, False
    return encoded[:limit].decode(errors="ignore"), True


def _reporting(rows: Iterable[dict[str, Any]], progress: Callable[[int], None]) -> Iterator[dict[str, Any]]:
    """``rows`` unchanged, calling ``progress(count)`` every 10,000 of them."""
    for count, row in enumerate(rows, 1):
        if count % 10_000 == 0:
            progress(count)
        yield row


def _write_error(path: Path, exc: sqlite3.Error) -> AuditWriteError:
    message = str(exc)
    if "readonly" in message:
        message += " (the file or its folder is read-only)"
    elif "UNIQUE constraint failed: events.id" in message:
        message += " (another process is writing to the same log; only one approver may)"
    return AuditWriteError(f"could not write to the audit log {path}: {message}")


class AuditLog:
    """The audit log in one SQLite file. Thread-safe: every method holds one lock.

    ``read_only=True`` opens an existing log without writing to it (for verify, export, tail).
    ``clock`` returns the current time; tests inject a fixed one.
    """

    def __init__(
        self,
        path: Path,
        redactor: Redactor | None = None,
        *,
        read_only: bool = False,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self._redactor = redactor if redactor is not None else Redactor()
        self._clock = clock
        self._lock = threading.Lock()
        try:
            if read_only:
                uri = f"{path.resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                created = not path.exists()
                conn = sqlite3.connect(path, check_same_thread=False)
                if created:
                    os.chmod(path, 0o600)  # arguments can be private even after redaction
        except (sqlite3.Error, OSError) as exc:
            raise AuditError(f"could not open the audit log {path}: {exc}") from exc
        try:
            self._db = Database(conn, execute_plugins=False)
            if not read_only:
                self._create_schema()
            elif not self._db.table("events").exists():
                raise AuditError(f"{path} is not an approver audit log (it has no events table)")
            last = conn.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            if read_only:
                raise AuditError(f"could not read the audit log {path}: {exc}") from exc
            raise _write_error(path, exc) from exc
        except AuditError:
            conn.close()
            raise
        self._last_id: int = last[0] if last else 0
        self._last_hash: str = last[1] if last else GENESIS_HASH

    def _create_schema(self) -> None:
        db = self._db
        db.enable_wal()
        db.execute("PRAGMA synchronous=FULL")
        if db.execute("PRAGMA user_version").fetchone()[0] > SCHEMA_VERSION:
            raise AuditError(f"the audit log {self.path} was written by a newer approver")
        events = db.table("events")
        not_null = ["ts", "kind", "call_id", "prev_hash", "hash"]
        events.create(_COLUMN_TYPES, pk="id", not_null=not_null, if_not_exists=True, strict=True)
        db.executescript(_APPEND_ONLY_TRIGGERS)
        for column in ("ts", "server", "client", "decision"):
            events.create_index([column], if_not_exists=True)
        events.create_index(["call_id", "kind"], "idx_events_call_id", unique=True, if_not_exists=True)
        # Existing logs gain these on their next writable open (seconds for a million rows, once).
        for name, columns in _CALL_INDEXES.items():
            db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON events ({columns}) WHERE kind = 'decision'")
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        # Fail now, not on the first call, if the file cannot take writes.
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")

    @property
    def last_id(self) -> int:
        """The id of the last row this log wrote or found on open (0 for an empty log)."""
        return self._last_id

    @property
    def last_hash(self) -> str:
        """The hash the next row will chain to."""
        return self._last_hash

    def close(self) -> None:
        """Close the database; further writes raise :class:`AuditWriteError`."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def record_decision(self, record: DecisionRecord) -> int:
        """Append and commit a decision row; returns its id. Raises :class:`AuditWriteError`."""
        redact = self._redactor.redact_text
        names = ("call_id", "client", "server", "tool", "upstream_tool", "risk_class", "risk_level")
        row: dict[str, Any] = {name: str(getattr(record, name)) for name in names}
        arguments, truncated = self._stored_arguments(record.arguments)
        row |= {
            "kind": "decision",
            "risk_reasons": canonical_json([str(reason) for reason in record.risk_reasons]).decode(),
            "arguments": arguments,
            "args_truncated": int(truncated),
            "args_size": len(record.arguments),
            "args_sha256": hashlib.sha256(record.arguments).hexdigest(),
            "decision": str(record.decision),
            "decided_by": str(record.decided_by),
            "rule": redact(str(record.rule)),
            "reason": redact(str(record.reason)),
        }
        return self._append(row)

    def record_outcome(self, record: OutcomeRecord) -> int:
        """Append and commit an outcome row; client, server and tool are copied from its decision row."""
        duration = float(record.duration_ms)
        error = record.error and _clip(self._redactor.redact_text(record.error), ERROR_CAP)[0]
        row = {
            "kind": "outcome",
            "call_id": str(record.call_id),
            "outcome": str(record.outcome),
            # SQLite stores NaN as NULL, which would no longer match the hash.
            "duration_ms": round(duration, 3) if math.isfinite(duration) else None,
            "result_size": record.result_size,
            "result_sha256": record.result_sha256,
            "error": error,
        }
        return self._append(row, copy_from_decision=True)

    def _stored_arguments(self, raw: bytes) -> tuple[str, bool]:
        try:
            text = canonical_json(self._redactor.redact_json(json.loads(raw))).decode()
        except (ValueError, RecursionError):
            # Not JSON (or nested too deep to walk): redact it as text rather than lose the row.
            text = self._redactor.redact_text(raw.decode(errors="replace"))
        return _clip(text, ARGUMENTS_CAP)

    def _append(self, fields: dict[str, Any], *, copy_from_decision: bool = False) -> int:
        with self._lock:
            conn = self._db.conn
            row: dict[str, Any] = dict.fromkeys(COLUMNS) | fields
            try:
                conn.execute("BEGIN IMMEDIATE")
                if copy_from_decision:
                    found = conn.execute(
                        "SELECT client, server, tool FROM events WHERE call_id = ? AND kind = 'decision'",
                        (row["call_id"],),
                    ).fetchone()
                    row["client"], row["server"], row["tool"] = found or (None, None, None)
                row |= {"id": self._last_id + 1, "ts": format_ts(self._clock()), "prev_hash": self._last_hash}
                row["hash"] = row_hash(self._last_hash, row)
                conn.execute(_INSERT_SQL, row)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                raise _write_error(self.path, exc) from exc
            # Only now: advancing before the commit would chain the next row to a ghost.
            self._last_id, self._last_hash = row["id"], row["hash"]
            return self._last_id

    def verify(self, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Recompute the chain from the first row and report the first row that breaks it.

        ``progress(rows_checked)`` is called every 10,000 rows; an exception it raises stops the
        check and propagates (how a window cancels a long check).
        """
        with self._lock:
            rows: Iterable[dict[str, Any]] = self._db.table("events").rows_where(order_by="id")
            if progress is not None:
                rows = _reporting(rows, progress)
            try:
                report = check_chain(rows)
            except sqlite3.DatabaseError as exc:
                return VerifyReport(False, 0, None, f"the log could not be read: {exc}")
            # This process's own memory witnesses rows it wrote that are now gone from the end.
            if report.ok and not self.read_only and self._last_id > report.last_id:
                problem = (
                    f"the log ends at row {report.last_id} but this process wrote up to row"
                    f" {self._last_id}: rows were removed from the end"
                )
                return dataclasses.replace(report, ok=False, first_bad_id=report.last_id + 1, problem=problem)
        return report

    def head_id(self) -> int:
        """The id of the newest row on disk now (0 if none); unlike :attr:`last_id` it sees other writers."""
        with self._lock:
            row = self._db.execute("SELECT max(id) FROM events").fetchone()
        return int(row[0] or 0)

    def summaries(
        self,
        where: CallFilter | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        oldest_first: bool = False,
    ) -> list[CallSummary]:
        """The calls :meth:`query` would return, as light :class:`CallSummary` rows (no arguments).

        Cheap at any offset: the page's ids come from a covering index before any row is read.
        """
        where = where or CallFilter()
        conditions, params = _call_conditions(where)
        order = "ASC" if oldest_first else "DESC"
        page = f"SELECT id FROM events WHERE {conditions} ORDER BY id {order} LIMIT :limit OFFSET :offset"  # noqa: S608
        sql = f"SELECT {_SUMMARY_SELECT} {_CALLS_FROM} WHERE d.id IN ({page}) ORDER BY d.id {order}"
        params |= {"limit": limit, "offset": offset}
        with self._lock:
            found = self._db.execute(sql, params).fetchall()
        return [CallSummary(*row) for row in found]

    def call(self, row_id: int) -> dict[str, Any] | None:
        """The call whose decision row has ``row_id``, or None when there is no such decision row.

        Keys are every column of the decision row (``risk_reasons`` parsed into a list), the
        outcome columns as in :meth:`query`, and ``outcome_id``, ``outcome_ts`` and
        ``outcome_hash`` (None while the call runs or when it was never forwarded).
        """
        decision_columns = [f"d.{name}" for name in COLUMNS if name not in _OUTCOME_COLUMNS]
        outcome_columns = [f"o.{name}" for name in _OUTCOME_COLUMNS]
        extra = ["o.id AS outcome_id", "o.ts AS outcome_ts", "o.hash AS outcome_hash"]
        select = ", ".join(decision_columns + outcome_columns + extra)
        sql = f"SELECT {select} {_CALLS_FROM} WHERE d.id = :id AND d.kind = 'decision'"
        with self._lock:
            rows = list(self._db.query(sql, {"id": row_id}))
        if not rows:
            return None
        row = rows[0]
        try:
            row["risk_reasons"] = json.loads(row["risk_reasons"] or "[]")
        except ValueError:
            row["risk_reasons"] = [str(row["risk_reasons"])]
        return row

    def activity(
        self, where: CallFilter | None = None, bucket: Literal["minute", "hour", "day"] = "hour"
    ) -> list[ActivityCount]:
        """How many matching calls got each decision per UTC minute, hour or day, oldest first."""
        if bucket not in _ACTIVITY_PREFIX:
            raise ValueError(f"unknown bucket {bucket!r}: use minute, hour or day")
        where = where or CallFilter()
        conditions, params = _call_conditions(where)
        sql = (
            f"SELECT substr(ts, 1, {_ACTIVITY_PREFIX[bucket]}) AS bucket, decision, count(*) FROM events"  # noqa: S608
            f" WHERE {conditions} GROUP BY bucket, decision ORDER BY bucket, decision"
        )
        with self._lock:
            found = self._db.execute(sql, params).fetchall()
        suffix = {"minute": ":00", "hour": ":00:00", "day": "T00:00:00"}[bucket]
        return [
            ActivityCount(datetime.fromisoformat(start + suffix).replace(tzinfo=UTC), decision or "", count)
            for start, decision, count in found
        ]

    def distinct(self, column: str) -> list[str]:
        """The distinct values of a filter column over all calls, sorted, without NULLs.

        ``column`` is ``decision``, ``risk_class``, ``server`` or ``client``. Fast on a large log:
        it hops through the column's index.
        """
        if column not in _EQUAL_FILTERS:
            raise ValueError(f"cannot list values of {column!r}: use one of {', '.join(_EQUAL_FILTERS)}")
        # A loose index scan: each step seeks the next larger value instead of reading every row.
        sql = (
            f"WITH RECURSIVE seen(value) AS (SELECT min({column}) FROM events WHERE kind = 'decision'"  # noqa: S608
            f" UNION ALL SELECT (SELECT min({column}) FROM events WHERE kind = 'decision'"
            f" AND {column} > seen.value) FROM seen WHERE seen.value IS NOT NULL)"
            " SELECT value FROM seen WHERE value IS NOT NULL"
        )
        with self._lock:
            return [str(row[0]) for row in self._db.execute(sql).fetchall()]

    def tail(self, after_id: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` rows with ``id > after_id``, oldest first (for following the log)."""
        with self._lock:
            return list(self._db.table("events").rows_where("id > ?", [after_id], order_by="id", limit=limit))

    def query(
        self, where: CallFilter | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Calls, newest first: each a decision row joined with its outcome row (if any).

        Keys are the decision's columns (``risk_reasons`` parsed into a list) plus ``outcome``,
        ``duration_ms``, ``result_size``, ``result_sha256``, ``error``, ``outcome_id`` and
        ``outcome_ts`` from the outcome row (None while the call is still running).
        """
        where = where or CallFilter()
        clauses, params = where.call_clauses("d.")
        time_clauses, time_params = where.time_clauses("d.")
        conditions = " AND ".join(["d.kind = 'decision'", *clauses, *time_clauses])
        sql = f"SELECT {_CALL_SELECT} {_CALLS_FROM} WHERE {conditions} ORDER BY d.id DESC"
        with self._lock:
            page = {"limit": limit, "offset": offset}
            rows = list(self._db.query(f"{sql} LIMIT :limit OFFSET :offset", params | time_params | page))
        for row in rows:
            row["risk_reasons"] = json.loads(row["risk_reasons"] or "[]")
        return rows

    def count(self, where: CallFilter | None = None) -> int:
        """How many calls :meth:`query` would return without a limit."""
        where = where or CallFilter()
        clauses, params = where.call_clauses()
        time_clauses, time_params = where.time_clauses()
        conditions = " AND ".join(["kind = 'decision'", *clauses, *time_clauses])
        with self._lock:
            return int(self._db.table("events").count_where(conditions, params | time_params))

    def head_and_count(self, where: CallFilter | None = None) -> tuple[int, int]:
        """:meth:`head_id` and :meth:`count`, read from one snapshot of the log (no row slips between).

        Cheaper than ``count`` with ``max_id`` set, which can steer SQLite away from a ``ts`` index.
        """
        where = where or CallFilter()
        conditions, params = _call_conditions(where)
        with self._lock:
            conn = self._db.conn
            conn.execute("BEGIN")  # a read transaction: both reads see the same commits
            try:
                head = conn.execute("SELECT max(id) FROM events").fetchone()[0] or 0
                sql = f"SELECT count(*) FROM events WHERE {conditions}"  # noqa: S608
                count = conn.execute(sql, params).fetchone()[0]
            finally:
                conn.execute("COMMIT")
        return int(head), int(count)

    def export(
        self,
        out: TextIO,
        fmt: Literal["csv", "jsonl"] = "jsonl",
        since: datetime | None = None,
        where: CallFilter | None = None,
    ) -> int:
        """Write rows (both kinds, all columns, oldest first) to ``out``; returns how many.

        ``since`` (or ``where.since``/``where.until``) filters by each row's own time; the other
        filters keep both rows of every call whose decision matches. Open ``out`` with
        ``newline=""`` for CSV.
        """
        if fmt not in ("csv", "jsonl"):
            raise ValueError(f"unknown export format {fmt!r}: use csv or jsonl")
        where = where or CallFilter()
        if since is not None:
            where = dataclasses.replace(where, since=since)
        clauses, params = where.time_clauses()
        call_clauses, call_params = where.call_clauses("d.")
        if call_clauses:
            matching = " AND ".join(["d.kind = 'decision'", *call_clauses])
            clauses.append(f"call_id IN (SELECT d.call_id FROM events d WHERE {matching})")  # noqa: S608
        conditions = " AND ".join(clauses) or None
        written = 0
        with self._lock:
            rows = self._db.table("events").rows_where(conditions, params | call_params, order_by="id")
            writer = csv.writer(out)
            if fmt == "csv":
                writer.writerow(COLUMNS)
            for row in rows:
                if fmt == "csv":
                    writer.writerow(["" if row[name] is None else row[name] for name in COLUMNS])
                else:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                written += 1
        return written
