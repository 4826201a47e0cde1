"""Reading the audit log: which calls a filter selects, and the queries over them.

The seam: :class:`~approver.audit.log.AuditLog` owns the SQLite connection, its lock and every
write (the hash chain, redaction, verification); this module only reads. Each query is a plain
function over a connection that the caller already holds the lock for, so ``AuditLog`` wraps
each one in a one-line locked method (``log.query(...)`` is ``query(db, ...)`` under the lock).
The indexes these queries rely on are defined with the table in :mod:`approver.audit.table`.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from sqlite_utils import Database

from approver.audit.table import COLUMNS, HASHED_COLUMNS, OUTCOME_COLUMNS, format_ts

_EQUAL_FILTERS: Final = ("decision", "risk_class", "server", "client")
_TEXT_COLUMNS: Final = ("tool", "upstream_tool", "arguments")
_TIME_OPERATORS: Final = {"since": ">=", "until": "<"}
_ID_OPERATORS: Final = {"min_id": ">=", "max_id": "<="}

SESSION_GRANT: Final = "session-grant"
"""The rule of a call allowed by an earlier "approve for this session" (``decided_by`` is ``user``)."""
NOT_FORWARDED: Final = "not-forwarded"
"""The :attr:`CallFilter.outcome` of denied calls, which have no outcome row."""
RUNNING: Final = "running"
"""The :attr:`CallFilter.outcome` of allowed calls whose outcome is not recorded yet."""

SORT_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "time": ("d.id",),
    "client": ("d.client",),
    "server": ("d.server",),
    "tool": ("d.tool",),
    "risk": (
        "CASE d.risk_level WHEN 'low' THEN 1 WHEN 'medium' THEN 2 WHEN 'high' THEN 3 WHEN 'critical' THEN 4"
        " ELSE 0 END",
        "d.risk_class",
    ),
    "decision": ("d.decision",),
    "decided_by": ("d.decided_by",),
    "duration": ("o.duration_ms",),
    "outcome": (
        "coalesce(o.outcome, CASE d.decision WHEN 'allow' THEN 'no outcome yet' ELSE 'not forwarded' END)",
    ),
}
"""What :func:`sorted_ids` can sort by, as SQL over a decision row ``d`` and its outcome row ``o``."""

_ACTIVITY_PREFIX: Final = {"minute": 16, "hour": 13, "day": 10}
"""How many characters of a stored time (``2025-01-31T12:34``) name its bucket."""

# SQL in this module is assembled only from constant column names and fixed clauses; every
# value is a bound parameter (hence the S608 marks).
_CALL_SELECT: Final = ", ".join(
    [f"d.{name}" for name in HASHED_COLUMNS if name not in OUTCOME_COLUMNS]
    + [f"o.{name}" for name in OUTCOME_COLUMNS]
    + ["o.id AS outcome_id", "o.ts AS outcome_ts"]
)
_CALLS_FROM: Final = "FROM events d LEFT JOIN events o ON o.call_id = d.call_id AND o.kind = 'outcome'"
_SUMMARY_SELECT: Final = (
    "d.id, d.ts, d.client, d.server, d.tool, d.risk_class, d.risk_level, d.decision, d.decided_by,"
    " o.outcome, o.duration_ms"
)

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


@dataclass(frozen=True, slots=True)
class CallFilter:
    """Which calls :func:`query`, :func:`count` and :func:`export` (and so ``AuditLog``'s) cover."""

    decision: str | None = None
    risk_class: str | None = None
    server: str | None = None
    client: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    """Exclusive upper bound."""
    text: str | None = None
    """Case-insensitive substring of the tool name or the (redacted) arguments."""
    decided_by: str | None = None
    """Who decided: a ``decided_by`` value; ``user`` means a person asked about this very call and
    ``session-grant`` a call allowed by an earlier "approve for this session"."""
    outcome: str | None = None
    """How the call ended: ``ok``, ``error``, ``cancelled``, ``not-forwarded`` (denied) or
    ``running`` (allowed, no outcome recorded yet)."""
    risk_level: str | None = None
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
        clauses += self._slow_clauses(prefix, params)
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

    @property
    def slow(self) -> bool:
        """Whether no index narrows this filter: it reads every call (so apply it in the background)."""
        return bool(self.text or self.decided_by or self.outcome or self.risk_level)

    def _slow_clauses(self, prefix: str, params: dict[str, Any]) -> list[str]:
        """Conditions for the filters that no index covers (who decided, outcome, risk level)."""
        clauses = []
        if self.risk_level is not None:
            clauses.append(f"{prefix}risk_level = :risk_level")
            params["risk_level"] = self.risk_level
        if self.decided_by == SESSION_GRANT:
            clauses.append(f"{prefix}decided_by = 'user' AND {prefix}rule = '{SESSION_GRANT}'")
        elif self.decided_by is not None:
            clauses.append(f"{prefix}decided_by = :decided_by")
            params["decided_by"] = self.decided_by
            if self.decided_by == "user":
                clauses.append(f"{prefix}rule IS NOT '{SESSION_GRANT}'")
        if self.outcome is not None:
            # The outcome is on the call's other row; the unique (call_id, kind) index finds it.
            outer = prefix or "events."
            found = f"SELECT 1 FROM events o2 WHERE o2.call_id = {outer}call_id AND o2.kind = 'outcome'"  # noqa: S608
            if self.outcome == NOT_FORWARDED:
                clauses.append(f"{prefix}decision != 'allow'")
            elif self.outcome == RUNNING:
                clauses.append(f"{prefix}decision = 'allow' AND NOT EXISTS ({found})")
            else:
                clauses.append(f"EXISTS ({found} AND o2.outcome = :outcome)")
                params["outcome"] = self.outcome
        return clauses

    def time_clauses(self, prefix: str = "") -> tuple[list[str], dict[str, Any]]:
        """SQL conditions and parameters on ``ts`` for ``since`` and ``until``."""
        moments = {"since": self.since, "until": self.until}
        params = {name: format_ts(moment) for name, moment in moments.items() if moment is not None}
        return [f"{prefix}ts {_TIME_OPERATORS[name]} :{name}" for name in params], params


def _call_conditions(where: CallFilter) -> tuple[str, dict[str, Any]]:
    """The WHERE clause and parameters selecting decision rows that match ``where``."""
    narrowing = sum(getattr(where, name) is not None for name in _EQUAL_FILTERS)
    narrowing += where.since is not None or where.until is not None
    # A text search reads every candidate row anyway: then one index to narrow them is best.
    clauses, params = where.call_clauses(scan=narrowing > 1 and not where.text)
    time_clauses, time_params = where.time_clauses()
    return " AND ".join(["kind = 'decision'", *clauses, *time_clauses]), params | time_params


def head_id(db: Database) -> int:
    """The id of the newest row on disk now (0 if none), whoever wrote it."""
    row = db.execute("SELECT max(id) FROM events").fetchone()
    return int(row[0] or 0)


def summaries(
    db: Database,
    where: CallFilter | None = None,
    *,
    limit: int = 100,
    offset: int = 0,
    oldest_first: bool = False,
) -> list[CallSummary]:
    """The calls :func:`query` would return, as light :class:`CallSummary` rows (no arguments).

    Cheap at any offset: the page's ids come from a covering index before any row is read.
    """
    where = where or CallFilter()
    conditions, params = _call_conditions(where)
    order = "ASC" if oldest_first else "DESC"
    page = f"SELECT id FROM events WHERE {conditions} ORDER BY id {order} LIMIT :limit OFFSET :offset"  # noqa: S608
    sql = f"SELECT {_SUMMARY_SELECT} {_CALLS_FROM} WHERE d.id IN ({page}) ORDER BY d.id {order}"
    params |= {"limit": limit, "offset": offset}
    return [CallSummary(*row) for row in db.execute(sql, params).fetchall()]


def summaries_of(db: Database, ids: Sequence[int]) -> list[CallSummary]:
    """The calls whose decision rows have ``ids``, in the order of ``ids`` (missing ones left out)."""
    if not ids:
        return []
    found = {
        row[0]: CallSummary(*row)
        for row in db.execute(
            f"SELECT {_SUMMARY_SELECT} {_CALLS_FROM} WHERE d.id IN (SELECT value FROM json_each(?))",  # noqa: S608
            [json.dumps(list(ids))],
        ).fetchall()
    }
    return [found[row_id] for row_id in ids if row_id in found]


def sorted_ids(db: Database, where: CallFilter, key: str, *, descending: bool) -> array[int]:
    """The decision row ids of the calls matching ``where``, sorted by ``key`` (one of :data:`SORT_KEYS`).

    Calls with equal keys keep newest first. Reads every matching call once (about a second for
    a million): run it in the background, then page through the ids.
    """
    if key not in SORT_KEYS:
        raise ValueError(f"cannot sort by {key!r}: use one of {', '.join(SORT_KEYS)}")
    clauses, params = where.call_clauses("d.")
    time_clauses, time_params = where.time_clauses("d.")
    conditions = " AND ".join(["d.kind = 'decision'", *clauses, *time_clauses])
    direction = "DESC" if descending else "ASC"
    order = ", ".join(f"{expression} {direction}" for expression in SORT_KEYS[key])
    if key != "time":
        order += ", d.id DESC"
    outcome_join = "LEFT JOIN events o ON o.call_id = d.call_id AND o.kind = 'outcome'"
    join = outcome_join if key in ("duration", "outcome") else ""
    sql = f"SELECT d.id FROM events d {join} WHERE {conditions} ORDER BY {order}"  # noqa: S608
    ids: array[int] = array("q")
    cursor = db.execute(sql, params | time_params)
    while rows := cursor.fetchmany(10_000):
        ids.extend(row[0] for row in rows)
    return ids


def call(db: Database, row_id: int) -> dict[str, Any] | None:
    """The call whose decision row has ``row_id``, or None when there is no such decision row.

    Keys are every column of the decision row (``risk_reasons`` parsed into a list), the
    outcome columns as in :func:`query`, and ``outcome_id``, ``outcome_ts`` and
    ``outcome_hash`` (None while the call runs or when it was never forwarded). A call a person
    edited before approving has ``edit_id``, ``edit_arguments`` (the approved arguments, as
    stored), ``edit_args_size``, ``edit_args_sha256``, ``edit_args_truncated`` and
    ``edit_decided_by``; a reviewed result ``review_id``, ``review_decision``,
    ``review_decided_by``, ``review_reason`` and ``review_ts`` (all None otherwise).
    """
    decision_columns = [f"d.{name}" for name in COLUMNS if name not in OUTCOME_COLUMNS]
    outcome_columns = [f"o.{name}" for name in OUTCOME_COLUMNS]
    extra = ["o.id AS outcome_id", "o.ts AS outcome_ts", "o.hash AS outcome_hash"]
    select = ", ".join(decision_columns + outcome_columns + extra)
    sql = f"SELECT {select} {_CALLS_FROM} WHERE d.id = :id AND d.kind = 'decision'"
    rows = list(db.query(sql, {"id": row_id}))
    if not rows:
        return None
    row = rows[0]
    try:
        row["risk_reasons"] = json.loads(row["risk_reasons"] or "[]")
    except ValueError:
        row["risk_reasons"] = [str(row["risk_reasons"])]
    for kind, columns in _LATER_ROWS.items():
        found = list(
            db.query(
                f"SELECT id, {', '.join(columns)} FROM events WHERE call_id = :call AND kind = :kind",  # noqa: S608
                {"call": row["call_id"], "kind": kind},
            )
        )
        later = found[0] if found else {}
        row |= {f"{kind}_{name}": later.get(name) for name in ("id", *columns)}
    return row


_LATER_ROWS: Final = {
    "edit": ("arguments", "args_size", "args_sha256", "args_truncated", "decided_by"),
    "review": ("decision", "decided_by", "reason", "ts"),
}
"""Rows a call may have besides its decision and outcome, and the columns :func:`call` reads of each."""


def activity(
    db: Database, where: CallFilter | None = None, bucket: Literal["minute", "hour", "day"] = "hour"
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
    found = db.execute(sql, params).fetchall()
    suffix = {"minute": ":00", "hour": ":00:00", "day": "T00:00:00"}[bucket]
    return [
        ActivityCount(datetime.fromisoformat(start + suffix).replace(tzinfo=UTC), decision or "", count)
        for start, decision, count in found
    ]


def distinct(db: Database, column: str) -> list[str]:
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
    return [str(row[0]) for row in db.execute(sql).fetchall()]


REPLAY_COLUMNS: Final = (
    *("id", "ts", "client", "server", "tool", "upstream_tool", "risk_class", "risk_level"),
    *("arguments", "args_truncated", "decision", "decided_by", "rule"),
)
"""The columns of a decision row :func:`replay_page` returns, in order."""


def replay_page(
    db: Database,
    where: CallFilter | None = None,
    *,
    tool: str | None = None,
    after_id: int | None = None,
    before_id: int | None = None,
    newest_first: bool = False,
    limit: int = 10_000,
    arguments_of: Sequence[str] | None = None,
) -> list[tuple[Any, ...]]:
    """One page of decision rows (:data:`REPLAY_COLUMNS`), for replaying calls against a policy.

    Oldest first (after ``after_id``), or newest first (before ``before_id``). ``tool`` keeps one
    exposed tool name. ``arguments_of`` names the tools whose arguments are read (others come
    back as None, which saves reading them); None reads every call's.
    """
    where = where or CallFilter()
    conditions, params = _call_conditions(where)
    if tool is not None:
        conditions += " AND tool = :tool"
        params["tool"] = tool
    order = "DESC" if newest_first else "ASC"
    if before_id is not None:
        conditions += " AND id < :before_id"
        params["before_id"] = before_id
    if after_id is not None:
        conditions += " AND id > :after_id"
        params["after_id"] = after_id
    columns = list(REPLAY_COLUMNS)
    if arguments_of is not None:
        names = {f"arg_tool_{i}": name for i, name in enumerate(arguments_of)}
        listed = ", ".join(f":{name}" for name in names) or "NULL"
        columns[REPLAY_COLUMNS.index("arguments")] = f"CASE WHEN tool IN ({listed}) THEN arguments END"
        params |= names
    sql = f"SELECT {', '.join(columns)} FROM events WHERE {conditions} ORDER BY id {order} LIMIT :limit"  # noqa: S608
    return [tuple(row) for row in db.execute(sql, params | {"limit": limit}).fetchall()]


def replay_rows(db: Database, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """The decision rows (:data:`REPLAY_COLUMNS`) with these ids, oldest first."""
    listed = ", ".join("?" * len(ids))
    columns = ", ".join(REPLAY_COLUMNS)
    sql = f"SELECT {columns} FROM events WHERE kind = 'decision' AND id IN ({listed}) ORDER BY id"  # noqa: S608
    return [tuple(row) for row in db.execute(sql, list(ids)).fetchall()]


def rule_counts(db: Database, where: CallFilter | None = None) -> dict[str, int]:
    """How many matching calls each rule decided (the ``rule`` column of decision rows)."""
    conditions, params = _call_conditions(where or CallFilter())
    sql = f"SELECT rule, count(*) FROM events WHERE {conditions} GROUP BY rule"  # noqa: S608
    return {str(rule): int(found) for rule, found in db.execute(sql, params).fetchall() if rule is not None}


def tail(db: Database, after_id: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    """Up to ``limit`` rows with ``id > after_id``, oldest first (for following the log)."""
    return list(db.table("events").rows_where("id > ?", [after_id], order_by="id", limit=limit))


def query(
    db: Database, where: CallFilter | None = None, *, limit: int = 100, offset: int = 0
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
    page = {"limit": limit, "offset": offset}
    rows = list(db.query(f"{sql} LIMIT :limit OFFSET :offset", params | time_params | page))
    for row in rows:
        row["risk_reasons"] = json.loads(row["risk_reasons"] or "[]")
    return rows


def count(db: Database, where: CallFilter | None = None) -> int:
    """How many calls :func:`query` would return without a limit."""
    where = where or CallFilter()
    clauses, params = where.call_clauses()
    time_clauses, time_params = where.time_clauses()
    conditions = " AND ".join(["kind = 'decision'", *clauses, *time_clauses])
    return int(db.table("events").count_where(conditions, params | time_params))


def head_and_count(db: Database, where: CallFilter | None = None) -> tuple[int, int]:
    """:func:`head_id` and :func:`count`, read from one snapshot of the log (no row slips between).

    Cheaper than ``count`` with ``max_id`` set, which can steer SQLite away from a ``ts`` index.
    """
    where = where or CallFilter()
    conditions, params = _call_conditions(where)
    conn = db.conn
    conn.execute("BEGIN")  # a read transaction: both reads see the same commits
    try:
        head = conn.execute("SELECT max(id) FROM events").fetchone()[0] or 0
        sql = f"SELECT count(*) FROM events WHERE {conditions}"  # noqa: S608
        found = conn.execute(sql, params).fetchone()[0]
    finally:
        conn.execute("COMMIT")
    return int(head), int(found)
