"""The audit table model and the log queries behind it, over a generated million-row log."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from approver.audit.log import ActivityCount, AuditLog, CallFilter, OutcomeRecord
from approver.testing.auditgen import generate_audit_log
from approver.testing.records import decision_record as decision
from approver.ui.audit_model import COLUMN_TITLES, AuditTableModel, duration_text, local_time, prepare

END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# Whichever test runs first also generates the million-row log (about a minute on a slow machine).
pytestmark = pytest.mark.timeout(600)
TIME, CLIENT, TOOL, DECISION, OUTCOME = (
    COLUMN_TITLES.index(name) for name in ("Time", "Client", "Tool", "Decision", "Outcome")
)


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A realistic log of 1,000,000 rows (about half of them calls), generated once."""
    path = tmp_path_factory.mktemp("million") / "audit.db"
    generate_audit_log(path, 1_000_000, end=END)
    return path


def sql(path: Path, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """The truth, straight from SQLite."""
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture
def model(million: Path, qtbot: QtBot) -> Iterator[AuditTableModel]:
    table = AuditTableModel(million)
    yield table
    table.close()


# -- the model over a million rows -----------------------------------------------------------------


def test_the_model_counts_every_call_of_a_million_row_log(model: AuditTableModel, million: Path) -> None:
    [(calls,)] = sql(million, "SELECT count(*) FROM events WHERE kind = 'decision'")

    assert model.rowCount() == calls > 400_000
    assert model.columnCount() == len(COLUMN_TITLES)


def test_the_first_row_is_the_newest_call(model: AuditTableModel, million: Path) -> None:
    [(newest, ts, tool)] = sql(
        million, "SELECT id, ts, tool FROM events WHERE kind = 'decision' ORDER BY id DESC LIMIT 1"
    )

    assert model.call_id(0) == newest
    assert model.data(model.index(0, TOOL)) == tool
    assert model.data(model.index(0, TIME)) == local_time(ts)


def test_scrolling_to_the_end_loads_the_oldest_call_quickly(model: AuditTableModel, million: Path) -> None:
    [(oldest, tool)] = sql(million, "SELECT id, tool FROM events WHERE kind = 'decision' ORDER BY id LIMIT 1")
    last = model.rowCount() - 1

    started = time.perf_counter()
    assert model.data(model.index(last, TOOL)) == tool
    assert time.perf_counter() - started < 1.0  # generous: the benchmark wants far less
    assert model.call_id(last) == oldest
    assert model.data(model.index(last + 1, TOOL)) is None


def test_any_row_shows_the_call_at_that_position_however_it_was_reached(
    model: AuditTableModel, million: Path
) -> None:
    rng = random.Random(3)
    count = model.rowCount()
    jumps = [rng.randrange(count) for _ in range(12)]
    # Scrolling down and up from a jump uses the cached neighbour pages instead of offsets.
    rows = [row + step for row in jumps[:3] for step in (-450, -200, -1, 0, 1, 199, 200, 201, 650)]
    for row in [0, count - 1, *jumps, *rows]:
        if not 0 <= row < count:
            continue
        [(expected,)] = sql(
            million, "SELECT id FROM events WHERE kind = 'decision' ORDER BY id DESC LIMIT 1 OFFSET ?", row
        )
        assert model.call_id(row) == expected, row


def test_a_filter_changes_the_count_and_every_row_matches(model: AuditTableModel, million: Path) -> None:
    [(denied,)] = sql(million, "SELECT count(*) FROM events WHERE kind = 'decision' AND decision = 'deny'")
    [(shell_denied,)] = sql(
        million,
        "SELECT count(*) FROM events WHERE kind = 'decision' AND decision = 'deny' AND server = 'shell'",
    )

    model.set_filter(CallFilter(decision="deny"))
    assert model.rowCount() == denied
    assert {model.data(model.index(row, DECISION)) for row in range(0, denied, 997)} == {"deny"}
    assert {model.data(model.index(row, OUTCOME)) for row in range(0, denied, 997)} == {"not forwarded"}

    model.set_filter(CallFilter(decision="deny", server="shell"))
    assert model.rowCount() == shell_denied < denied

    model.set_filter(CallFilter())
    assert model.rowCount() > denied


def test_a_text_filter_matches_tools_and_arguments(model: AuditTableModel, million: Path) -> None:
    [(expected,)] = sql(
        million,
        "SELECT count(*) FROM events WHERE kind = 'decision'"
        " AND (tool LIKE '%budget%' OR upstream_tool LIKE '%budget%' OR arguments LIKE '%budget%')",
    )

    model.set_filter(CallFilter(text="budget"))

    assert model.rowCount() == expected > 0
    assert model.log is not None
    assert "budget" in model.log.call(model.call_id(model.rowCount() - 1) or 0)["arguments"]  # type: ignore[index]


def test_the_page_cache_stays_bounded_while_scrolling_through(million: Path, qtbot: QtBot) -> None:
    table = AuditTableModel(million, page_size=100, max_pages=8)
    try:
        for row in range(0, 100 * 50, 37):
            assert table.data(table.index(row, CLIENT))
        assert table.cached_pages == 8
    finally:
        table.close()


def test_the_log_has_indexes_that_keep_paging_and_counting_cheap(million: Path) -> None:
    def plan(query: str) -> str:
        return " ".join(str(row[-1]) for row in sql(million, f"EXPLAIN QUERY PLAN {query}"))

    assert "COVERING INDEX idx_calls_id" in plan(
        "SELECT id FROM events WHERE kind = 'decision' AND id <= 99999999"
        " ORDER BY id DESC LIMIT 10 OFFSET 400000"
    )
    assert "COVERING INDEX idx_calls_decision" in plan(
        "SELECT count(*) FROM events WHERE kind = 'decision' AND decision = 'deny'"
    )
    assert "COVERING INDEX idx_calls_ts" in plan(
        "SELECT count(*) FROM events WHERE kind = 'decision' AND ts >= '2026-02-28'"
    )


# -- queries the window relies on ------------------------------------------------------------------


def test_summaries_page_from_either_end_and_agree_with_query(million: Path) -> None:
    with AuditLog(million, read_only=True) as log:
        newest = log.summaries(limit=5, offset=10)
        oldest = log.summaries(limit=3, oldest_first=True)
        full = log.query(limit=5, offset=10)

    assert [call.id for call in newest] == [row["id"] for row in full]
    assert [(call.tool, call.decision, call.outcome) for call in newest] == [
        (row["tool"], row["decision"], row["outcome"]) for row in full
    ]
    assert [call.id for call in oldest] == sorted(call.id for call in oldest)
    assert oldest[0].id == sql(million, "SELECT min(id) FROM events WHERE kind = 'decision'")[0][0]


def test_distinct_lists_each_value_once_without_reading_every_row(million: Path) -> None:
    with AuditLog(million, read_only=True) as log:
        servers = log.distinct("server")
        decisions = log.distinct("decision")
        with pytest.raises(ValueError, match="cannot list"):
            log.distinct("arguments")

    assert servers == sorted(row[0] for row in sql(million, "SELECT DISTINCT server FROM events"))
    assert decisions == ["allow", "deny"]


def test_activity_counts_calls_per_hour_and_decision(million: Path) -> None:
    since = END - timedelta(hours=5)
    with AuditLog(million, read_only=True) as log:
        counts = log.activity(CallFilter(since=since), "hour")
        days = log.activity(CallFilter(server="git"), "day")

    expected = sql(
        million,
        "SELECT substr(ts, 1, 13), decision, count(*) FROM events WHERE kind = 'decision' AND ts >= ?"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        "2026-03-01T07:00:00.000Z",
    )
    assert [
        (count.start.strftime("%Y-%m-%dT%H"), count.decision, count.count) for count in counts
    ] == expected
    assert all(count.start.tzinfo is UTC and count.start >= since for count in counts)
    [(git_calls,)] = sql(million, "SELECT count(*) FROM events WHERE kind = 'decision' AND server = 'git'")
    assert sum(count.count for count in days) == git_calls
    assert len({count.start for count in days}) in (30, 31)


def test_head_and_count_read_one_snapshot(million: Path) -> None:
    with AuditLog(million, read_only=True) as log:
        assert log.head_and_count(CallFilter(decision="deny")) == (
            log.head_id(),
            log.count(CallFilter(decision="deny")),
        )


# -- live updates, small logs ---------------------------------------------------------------------


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    generate_audit_log(path, 450, end=END, days=1)
    return path


def test_new_calls_are_inserted_at_the_top_without_moving_the_others(small: Path, qtbot: QtBot) -> None:
    table = AuditTableModel(small, page_size=50)
    count, second = table.rowCount(), table.call_id(1)
    assert table.data(table.index(count - 1, TOOL))  # pages cached at both ends
    with AuditLog(small) as writer:
        first_new = writer.record_decision(decision("new-1", tool="files__new_one"))
        writer.record_decision(decision("new-2", decision="deny", decided_by="user"))

        with qtbot.waitSignal(table.rowsInserted) as inserted:
            assert table.refresh() == 2

    assert inserted.args[1:] == [0, 1]
    assert table.rowCount() == count + 2
    assert table.call_id(1) == first_new
    assert table.data(table.index(1, TOOL)) == "files__new_one"
    assert table.call_id(3) == second
    assert table.refresh() == 0
    table.close()


def test_a_running_call_shows_its_outcome_after_a_refresh(small: Path, qtbot: QtBot) -> None:
    table = AuditTableModel(small)
    with AuditLog(small) as writer:
        writer.record_decision(decision("slow"))
        table.refresh()
        assert table.data(table.index(0, OUTCOME)) == "no outcome yet"
        writer.record_outcome(OutcomeRecord("slow", "error", 2_500.0, error="boom"))

        with qtbot.waitSignal(table.dataChanged):
            assert table.refresh() == 0

    assert table.data(table.index(0, OUTCOME)) == "error"
    assert table.data(table.index(0, COLUMN_TITLES.index("Duration"))) == "2.5 s"
    table.close()


def test_a_filter_only_lets_matching_new_calls_in(small: Path, qtbot: QtBot) -> None:
    table = AuditTableModel(small)
    table.set_filter(CallFilter(decision="deny"))
    count = table.rowCount()
    with AuditLog(small) as writer:
        writer.record_decision(decision("allowed"))
        denied = writer.record_decision(decision("denied", decision="deny"))

        assert table.refresh() == 1

    assert (table.rowCount(), table.call_id(0)) == (count + 1, denied)
    table.close()


def test_a_missing_log_shows_nothing_until_it_appears(tmp_path: Path, qtbot: QtBot) -> None:
    path = tmp_path / "later" / "audit.db"
    table = AuditTableModel(path)
    assert (table.rowCount(), table.available, table.problem) == (0, False, None)
    assert table.refresh() == 0

    with AuditLog(path) as writer:
        writer.record_decision(decision("first"))
        with qtbot.waitSignal(table.modelReset):
            assert table.refresh() == 1

    assert table.available
    assert table.data(table.index(0, TOOL)) == "files__read_file"
    table.close()


def test_a_log_without_the_new_indexes_is_still_readable(small: Path, qtbot: QtBot) -> None:
    with sqlite3.connect(small) as conn:
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE name LIKE 'idx_calls_%'"
        ).fetchall():
            conn.execute(f"DROP INDEX {name}")
    [(calls,)] = sql(small, "SELECT count(*) FROM events WHERE kind = 'decision'")

    table = AuditTableModel(small)

    assert table.rowCount() == calls
    assert table.call_id(calls - 1) == sql(small, "SELECT min(id) FROM events WHERE kind = 'decision'")[0][0]
    assert table.log is not None and table.log.distinct("server")
    table.close()


def test_cells_are_plain_revealed_text(tmp_path: Path, qtbot: QtBot) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as writer:
        writer.record_decision(
            decision("evil", client="<b>bold</b>", tool="read\u202etxt.exe", server="a\u200bb")
        )
    table = AuditTableModel(path)

    cells = [table.data(table.index(0, column)) for column in range(table.columnCount())]

    assert cells[CLIENT] == "<b>bold</b>"
    assert cells[TOOL] == "read<U+202E>txt.exe"
    assert cells[COLUMN_TITLES.index("Server")] == "a<U+200B>b"
    assert all(isinstance(cell, str) for cell in cells)
    table.close()


def test_times_are_shown_in_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert local_time("2025-01-31T12:00:00.000Z") == "2025-01-31 17:30:00"
    finally:
        monkeypatch.undo()
        time.tzset()
    assert local_time("not a time\u202e") == "not a time<U+202E>"


def test_durations_read_naturally() -> None:
    assert [duration_text(value) for value in (None, 4.4, 999.0, 1_500.0, 125_000.0)] == [
        "",
        "4 ms",
        "999 ms",
        "1.5 s",
        "2 min 5 s",
    ]


def test_verify_reports_progress(small: Path) -> None:
    seen: list[int] = []
    with AuditLog(small, read_only=True) as log:
        assert log.verify(seen.append).ok
    assert seen == []  # fewer than 10,000 rows

    big: list[int] = []
    path = small.with_name("big.db")
    generate_audit_log(path, 25_000, end=END)
    with AuditLog(path, read_only=True) as log:
        assert log.verify(big.append).ok
    assert big == [10_000, 20_000]


def test_call_returns_both_rows_of_a_call_with_their_hashes(small: Path) -> None:
    with AuditLog(small) as writer:
        row_id = writer.record_decision(decision("detail", risk_reasons=["a", "b"]))
        outcome_id = writer.record_outcome(OutcomeRecord("detail", "ok", 3.0, 12, "f" * 64))
        found = writer.call(row_id)
        assert writer.call(outcome_id) is None

    assert found is not None
    assert (found["id"], found["outcome_id"], found["outcome"], found["result_size"]) == (
        row_id,
        outcome_id,
        "ok",
        12,
    )
    [(row_hash, outcome_hash)] = sql(
        small, "SELECT d.hash, o.hash FROM events d, events o WHERE d.id = ? AND o.id = ?", row_id, outcome_id
    )
    assert (found["hash"], found["outcome_hash"]) == (row_hash, outcome_hash)
    assert found["risk_reasons"] == ["a", "b"]


def test_activity_counts_are_dataclasses_with_utc_starts(small: Path) -> None:
    with AuditLog(small, read_only=True) as log:
        counts = log.activity(bucket="minute")
        with pytest.raises(ValueError, match="unknown bucket"):
            log.activity(bucket="week")  # type: ignore[arg-type]
    assert all(isinstance(count, ActivityCount) and count.start.second == 0 for count in counts)
    assert (
        sum(count.count for count in counts)
        == sql(small, "SELECT count(*) FROM events WHERE kind = 'decision'")[0][0]
    )


def test_a_prepared_filter_shows_the_same_rows_as_a_direct_one(million: Path, qtbot: QtBot) -> None:
    where = CallFilter(text="budget", client="cursor")
    direct = AuditTableModel(million)
    direct.set_filter(where)
    ahead = AuditTableModel(million)
    assert ahead.log is not None

    ahead.set_filter(where, prepare(ahead.log, where))

    assert ahead.rowCount() == direct.rowCount() > 300
    assert ahead.cached_pages == 2
    for row in [0, 1, 150, 199, 200, 250, 399, 400, ahead.rowCount() - 1]:
        assert ahead.call_id(row) == direct.call_id(row), row
    direct.close()
    ahead.close()
