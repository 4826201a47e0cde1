"""The tamper-evident audit log: every decision and outcome, hash-chained, in SQLite.

One append-only table ``events`` holds every row in one chain: a ``decision`` row, committed
before a call is forwarded upstream (with an ``edit`` row in the same commit when a person edited
the call's arguments), an ``outcome`` row after the call returns, and a ``review`` row when a
person reviewed its result.
Each row's ``hash`` is ``sha256(prev_hash + canonical JSON of the row's other columns)``, so an
edited, deleted or inserted row breaks the chain and :meth:`AuditLog.verify` names it.
Triggers refuse UPDATE and DELETE; someone who can rewrite the whole file can still rebuild
the chain, so the chain proves consistency, not authorship.

This module writes and verifies; the records and their chain are in
:mod:`approver.audit.records`, the columns each record becomes in :mod:`approver.audit.rows`, the
table's shape in :mod:`approver.audit.table` and the read queries (filters, pages, counts,
activity, export) in :mod:`approver.audit.query`, which :class:`AuditLog` runs under its lock.
Their public names are importable from here too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, TextIO

from sqlite_utils import Database

from approver.audit import query as audit_query
from approver.audit.export import export as export_rows
from approver.audit.query import ActivityCount, CallFilter, CallSummary, parse_since
from approver.audit.records import (
    AGENT_RUNS,
    GENESIS_HASH,
    AuditError,
    AuditWriteError,
    DecisionRecord,
    OutcomeRecord,
    ReviewRecord,
    VerifyReport,
    canonical_json,
    check_chain,
    row_hash,
)
from approver.audit.redact import Redactor
from approver.audit.rows import ARGUMENTS_CAP, ERROR_CAP, RowMaker
from approver.audit.table import (
    APPEND_ONLY_TRIGGERS,
    CALL_INDEXES,
    COLUMN_TYPES,
    COLUMNS,
    HASHED_COLUMNS,
    SCHEMA_VERSION,
    format_ts,
)

__all__ = [
    "AGENT_RUNS",
    "ARGUMENTS_CAP",
    "COLUMNS",
    "ERROR_CAP",
    "GENESIS_HASH",
    "HASHED_COLUMNS",
    "SCHEMA_VERSION",
    "ActivityCount",
    "AuditError",
    "AuditLog",
    "AuditWriteError",
    "CallFilter",
    "CallSummary",
    "DecisionRecord",
    "OutcomeRecord",
    "ReviewRecord",
    "VerifyReport",
    "canonical_json",
    "check_chain",
    "format_ts",
    "parse_since",
    "row_hash",
]

# Assembled only from the constant column names; every value is a bound parameter.
_INSERT_SQL: Final = "INSERT INTO events ({}) VALUES ({})".format(  # noqa: S608
    ", ".join(COLUMNS), ", ".join(f":{name}" for name in COLUMNS)
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
        self._rows = RowMaker(redactor if redactor is not None else Redactor())
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
            hint = "" if read_only else "; it must be a file you can write (or choose another --data-dir)"
            raise AuditError(f"could not open the audit log {path}: {exc}{hint}") from exc
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
        self._synced_commits = True
        """Whether the connection's commits wait for the disk (``synchronous=FULL``) now."""
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
        events.create(COLUMN_TYPES, pk="id", not_null=not_null, if_not_exists=True, strict=True)
        db.executescript(APPEND_ONLY_TRIGGERS)
        for column in ("ts", "server", "client", "decision"):
            events.create_index([column], if_not_exists=True)
        events.create_index(["call_id", "kind"], "idx_events_call_id", unique=True, if_not_exists=True)
        # Existing logs gain these on their next writable open (seconds for a million rows, once).
        for name, columns in CALL_INDEXES.items():
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
        """Append and commit a decision row, on disk; returns its id. Raises :class:`AuditWriteError`."""
        return self.append([record])[0]

    def record_review(self, record: ReviewRecord) -> int:
        """Append and commit a review row, on disk; client, server and tool come from its decision row."""
        return self.append([record])[0]

    def record_outcome(self, record: OutcomeRecord) -> int:
        """Append and commit an outcome row, on disk; client, server and tool come from its decision row."""
        return self.append([record])[0]

    def append(
        self, records: Sequence[DecisionRecord | OutcomeRecord | ReviewRecord], *, sync: bool = True
    ) -> list[int]:
        """Append ``records`` in order in one transaction (all or none); returns the id of each one's
        first row (a decision with edited arguments is two rows: see :mod:`approver.audit.rows`).

        With ``sync`` the commit returns only once the rows are on disk (and so is every row
        committed before them). Without it the rows are committed, so they survive a crash of
        this process, but reach the disk only with the next synced commit or :meth:`sync`: an
        operating-system crash or power loss before then can lose them, always as a suffix of the
        log, so the chain stays intact. Raises :class:`AuditWriteError`.
        """
        groups = [self._rows.rows(record) for record in records]
        ids = self._append([row for group in groups for row in group], sync)
        firsts, at = [], 0
        for group in groups:
            firsts.append(ids[at])
            at += len(group)
        return firsts

    def sync(self) -> bool:
        """Put every committed row on disk (a WAL checkpoint); False if a reader kept some from it."""
        with self._lock:
            try:
                _, frames, done = self._db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                raise _write_error(self.path, exc) from exc
            return bool(frames == done)

    def _append(self, rows: list[tuple[dict[str, Any], bool]], sync: bool) -> list[int]:
        """Insert ``(fields, copy_from_decision)`` rows, chained, in one transaction."""
        with self._lock:
            conn = self._db.conn
            last_id, last_hash = self._last_id, self._last_hash
            ids = []
            try:
                if sync != self._synced_commits:
                    conn.execute(f"PRAGMA synchronous={'FULL' if sync else 'NORMAL'}")
                    self._synced_commits = sync
                conn.execute("BEGIN IMMEDIATE")
                for fields, copy_from_decision in rows:
                    row: dict[str, Any] = dict.fromkeys(COLUMNS) | fields
                    if copy_from_decision:  # an outcome or review row
                        found = conn.execute(
                            "SELECT client, server, tool FROM events WHERE call_id = ? AND kind = 'decision'",
                            (row["call_id"],),
                        ).fetchone()
                        row["client"], row["server"], row["tool"] = found or (None, None, None)
                    row |= {"id": last_id + 1, "ts": format_ts(self._clock()), "prev_hash": last_hash}
                    row["hash"] = row_hash(last_hash, row)
                    conn.execute(_INSERT_SQL, row)
                    last_id, last_hash = row["id"], row["hash"]
                    ids.append(last_id)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                raise _write_error(self.path, exc) from exc
            # Only now: advancing before the commit would chain the next row to a ghost.
            self._last_id, self._last_hash = last_id, last_hash
            return ids

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

    # -- reading: the queries are in audit_query; each runs here under the log's one lock --------

    def head_id(self) -> int:
        """The id of the newest row on disk now (0 if none); unlike :attr:`last_id` it sees other writers."""
        with self._lock:
            return audit_query.head_id(self._db)

    def summaries(
        self,
        where: CallFilter | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        oldest_first: bool = False,
    ) -> list[CallSummary]:
        """The calls :meth:`query` would return, as light rows: see :func:`audit_query.summaries`."""
        with self._lock:
            return audit_query.summaries(
                self._db, where, limit=limit, offset=offset, oldest_first=oldest_first
            )

    def summaries_of(self, ids: Sequence[int]) -> list[CallSummary]:
        """The calls with these decision row ids, in this order: see :func:`audit_query.summaries_of`."""
        with self._lock:
            return audit_query.summaries_of(self._db, ids)

    def sorted_ids(self, where: CallFilter, key: str, *, descending: bool) -> array[int]:
        """Matching call ids in a sorted order: see :func:`audit_query.sorted_ids`."""
        with self._lock:
            return audit_query.sorted_ids(self._db, where, key, descending=descending)

    def call(self, row_id: int) -> dict[str, Any] | None:
        """The call whose decision row has ``row_id``, or None: see :func:`audit_query.call`."""
        with self._lock:
            return audit_query.call(self._db, row_id)

    def activity(
        self, where: CallFilter | None = None, bucket: Literal["minute", "hour", "day"] = "hour"
    ) -> list[ActivityCount]:
        """How many matching calls got each decision per UTC minute, hour or day, oldest first."""
        with self._lock:
            return audit_query.activity(self._db, where, bucket)

    def distinct(self, column: str) -> list[str]:
        """The distinct values of a filter column over all calls: see :func:`audit_query.distinct`."""
        with self._lock:
            return audit_query.distinct(self._db, column)

    def replay(
        self,
        where: CallFilter | None = None,
        *,
        tool: str | None = None,
        newest: int | None = None,
        arguments_of: Sequence[str] | None = None,
        page: int = 10_000,
    ) -> Iterator[tuple[Any, ...]]:
        """Decision rows (:data:`audit_query.REPLAY_COLUMNS`) oldest first, or the ``newest`` N newest first.

        Read a page at a time, each under the lock, so a long replay never holds up the writer.
        See :func:`audit_query.replay_page` for ``tool`` and ``arguments_of``.
        """
        after: int | None = 0
        before: int | None = None
        left = newest
        while left is None or left > 0:
            size = page if left is None else min(page, left)
            with self._lock:
                rows = audit_query.replay_page(
                    self._db,
                    where,
                    tool=tool,
                    after_id=after if newest is None else None,
                    before_id=before,
                    newest_first=newest is not None,
                    limit=size,
                    arguments_of=arguments_of,
                )
            yield from rows
            if len(rows) < size:
                return
            if newest is None:
                after = rows[-1][0]
            else:
                before = rows[-1][0]
                left = (left or 0) - len(rows)

    def replay_ids(self, ids: Sequence[int]) -> list[tuple[Any, ...]]:
        """The decision rows with these ids (:func:`audit_query.replay_rows`)."""
        with self._lock:
            return audit_query.replay_rows(self._db, ids)

    def rule_counts(self, where: CallFilter | None = None) -> dict[str, int]:
        """How many matching calls each rule decided: see :func:`audit_query.rule_counts`."""
        with self._lock:
            return audit_query.rule_counts(self._db, where)

    def tail(self, after_id: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` rows with ``id > after_id``, oldest first (for following the log)."""
        with self._lock:
            return audit_query.tail(self._db, after_id, limit)

    def query(
        self, where: CallFilter | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Calls, newest first, each joined with its outcome: see :func:`audit_query.query`."""
        with self._lock:
            return audit_query.query(self._db, where, limit=limit, offset=offset)

    def count(self, where: CallFilter | None = None) -> int:
        """How many calls :meth:`query` would return without a limit."""
        with self._lock:
            return audit_query.count(self._db, where)

    def head_and_count(self, where: CallFilter | None = None) -> tuple[int, int]:
        """:meth:`head_id` and :meth:`count` from one snapshot: see :func:`audit_query.head_and_count`."""
        with self._lock:
            return audit_query.head_and_count(self._db, where)

    def export(
        self,
        out: TextIO,
        fmt: Literal["csv", "jsonl"] = "jsonl",
        since: datetime | None = None,
        where: CallFilter | None = None,
    ) -> int:
        """Write matching rows (both kinds, all columns, oldest first) to ``out``; returns how many.

        See :func:`approver.audit.export.export` for how ``since`` and ``where`` select rows. Open ``out``
        with ``newline=""`` for CSV.
        """
        with self._lock:
            return export_rows(self._db, out, fmt, since, where)
