"""The audit log window: table, filters, details, live rows, export, verify and the activity chart."""

from __future__ import annotations

import csv
import json
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEvent, QPoint
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QFileDialog, QPlainTextEdit, QToolTip
from pytestqt.qtbot import QtBot

from approver.audit.log import ActivityCount, AuditLog, CallFilter, OutcomeRecord, canonical_json
from approver.testing.auditgen import generate_audit_log
from approver.testing.records import decision_record as decision
from approver.ui.activity import ActivityView, bucket_counts, bucket_size, describe
from approver.ui.audit_details import call_details
from approver.ui.audit_filters import CUSTOM_RANGE
from approver.ui.audit_model import COLUMN_TITLES
from approver.ui.audit_window import AuditWindow, ExportResult

END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOOL = COLUMN_TITLES.index("Tool")
CLIENT = COLUMN_TITLES.index("Client")

Opener = Callable[[Path], AuditWindow]


@pytest.fixture
def open_window(qtbot: QtBot) -> Iterator[Opener]:
    """Opens an audit window on a log and, afterwards, waits for its background work to end."""
    windows: list[AuditWindow] = []

    def opener(path: Path) -> AuditWindow:
        window = AuditWindow(path)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield opener
    for window in windows:
        qtbot.waitUntil(lambda window=window: not window.busy, timeout=30_000)  # type: ignore[misc]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    generate_audit_log(path, 3_000, end=datetime.now(UTC), days=3)
    return path


def cell(window: AuditWindow, row: int, column: int) -> Any:
    return window.model.data(window.model.index(row, column))


def test_the_window_has_its_title_and_lists_the_newest_call_first(
    open_window: Opener, log_path: Path
) -> None:
    window = open_window(log_path)

    assert window.windowTitle() == "Audit log"
    with AuditLog(log_path, read_only=True) as log:
        newest = log.query(limit=1)[0]
        calls = log.count()
    assert window.model.call_id(0) == newest["id"]
    assert cell(window, 0, TOOL) == newest["tool"]
    assert window.status.text() == f"{calls:,} calls"


def test_hostile_strings_are_plain_revealed_text_in_table_and_details(
    open_window: Opener, tmp_path: Path, qtbot: QtBot
) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as writer:
        writer.record_decision(
            decision(
                "evil",
                client="<b>bold</b>",
                tool="files__read\u202etxt.exe",
                reason="fine\u200b\nDecision: allow",
                arguments=canonical_json({"note": "<script>alert(1)</script>\u202e", "x": "a\u200bb"}),
            )
        )
    window = open_window(path)

    assert cell(window, 0, CLIENT) == "<b>bold</b>"
    assert cell(window, 0, TOOL) == "files__read<U+202E>txt.exe"
    window.table.selectRow(0)

    assert isinstance(window.detail, QPlainTextEdit) and window.detail.isReadOnly()
    text = window.detail.toPlainText()
    assert "Client:       <b>bold</b>" in text
    assert "files__read<U+202E>txt.exe" in text
    assert "Reason:       fine<U+200B><U+000A>Decision: allow" in text  # no fake line
    assert '"note": "<script>alert(1)</script><U+202E>"' in text
    assert not {"\u202e", "\u200b"} & set(text)
    server_choices = [
        window.filters.combo("client").itemText(i) for i in range(window.filters.combo("client").count())
    ]
    assert "<b>bold</b>" in server_choices


def test_the_detail_pane_shows_arguments_outcome_rule_and_both_hashes(
    open_window: Opener, tmp_path: Path
) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as writer:
        row_id = writer.record_decision(
            decision(
                "c1", arguments=canonical_json({"path": "/x", "n": [1, 2]}), decided_by="user", reason="ok'd"
            )
        )
        outcome_id = writer.record_outcome(OutcomeRecord("c1", "error", 1234.5, 77, "ab" * 32, "disk full"))
        hashes = {row["id"]: row["hash"] for row in writer.tail()}
    window = open_window(path)

    window.table.selectRow(0)

    text = window.detail.toPlainText()
    assert f"Call c1 (row {row_id})" in text
    assert "Decision:     allow, decided by user" in text
    assert "Rule:         risk_defaults.read" in text
    assert "Reason:       ok'd" in text
    assert "Outcome:      error, the server took 1.2 s" in text
    assert f"77 bytes, sha256 {'ab' * 32}" in text
    assert "Error:        disk full" in text
    assert f"Row hash:     {hashes[row_id]}" in text
    assert f"Outcome row:  {outcome_id}, hash {hashes[outcome_id]}" in text
    assert text.endswith('{\n  "n": [\n    1,\n    2\n  ],\n  "path": "/x"\n}')


def test_call_details_of_shortened_arguments_show_them_as_stored() -> None:
    call = {
        **dict.fromkeys(
            ["client", "server", "tool", "upstream_tool", "rule", "reason", "hash", "prev_hash"], "x"
        ),
        **{"id": 1, "call_id": "c", "ts": "2026-01-01T00:00:00.000Z", "decision": "deny", "outcome_id": None},
        **{"risk_class": "read", "risk_level": "low", "risk_reasons": [], "decided_by": "policy"},
        **{"args_size": 70_000, "args_sha256": "s", "args_truncated": 1, "arguments": '{"content": "abc'},
    }

    text = call_details(call)

    assert "Outcome:      not forwarded (the call was denied)" in text
    assert "(70,000 bytes, sha256 s, stored shortened):" in text
    assert text.endswith('{"content": "abc')


def test_filters_map_onto_the_log_query(open_window: Opener, log_path: Path, qtbot: QtBot) -> None:
    window = open_window(log_path)
    combo = window.filters.combo("decision")

    combo.setCurrentIndex(combo.findData("deny"))

    with AuditLog(log_path, read_only=True) as log:
        assert window.model.rowCount() == log.count(CallFilter(decision="deny")) > 0
    assert window.model.where == CallFilter(decision="deny")
    assert window.status.text().endswith("calls match these filters")
    server = window.filters.combo("server")
    server.setCurrentIndex(server.findData("shell"))
    assert window.model.where == CallFilter(decision="deny", server="shell")


def test_the_search_applies_after_typing_stops(open_window: Opener, log_path: Path, qtbot: QtBot) -> None:
    window = open_window(log_path)
    resets: list[int] = []
    window.model.modelReset.connect(lambda: resets.append(1))

    qtbot.keyClicks(window.filters.search, "budget")

    qtbot.waitUntil(lambda: window.model.where.text == "budget")
    assert len(resets) == 1  # one query for six keystrokes
    with AuditLog(log_path, read_only=True) as log:
        assert window.model.rowCount() == log.count(CallFilter(text="budget")) > 0


def test_time_ranges_become_since_and_until(open_window: Opener, log_path: Path) -> None:
    window = open_window(log_path)
    ranges = window.filters.time_range

    before = datetime.now(UTC)
    ranges.setCurrentIndex(ranges.findText("Last hour"))
    since = window.model.where.since
    assert since is not None and abs(since - (before - timedelta(hours=1))) < timedelta(seconds=5)
    assert window.model.where.until is None

    ranges.setCurrentIndex(ranges.findText(CUSTOM_RANGE))
    assert window.filters.since_edit.isVisible() and window.filters.until_edit.isVisible()
    window.filters.since_edit.setDateTime(datetime(2026, 1, 2, 3, 4).astimezone())
    assert window.model.where.since == datetime(2026, 1, 2, 3, 4).astimezone().astimezone(UTC)

    ranges.setCurrentIndex(ranges.findText("All time"))
    assert (window.model.where.since, window.model.where.until) == (None, None)
    assert not window.filters.since_edit.isVisible()


def test_a_new_call_appears_at_the_top_after_notify_recorded(
    open_window: Opener, log_path: Path, qtbot: QtBot
) -> None:
    window = open_window(log_path)
    count = window.model.rowCount()
    inserted: list[tuple[int, int]] = []
    window.model.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))

    with AuditLog(log_path) as writer:
        for index in range(20):
            writer.record_decision(decision(f"live-{index}", tool=f"live__tool_{index}"))
            window.notify_recorded()

    qtbot.waitUntil(lambda: window.model.rowCount() == count + 20)
    assert cell(window, 0, TOOL) == "live__tool_19"
    assert inserted == [(0, 19)]  # the burst became one refresh
    assert window.status.text() == f"{count + 20:,} calls"


def test_rows_arriving_do_not_move_the_selection_or_what_the_reader_sees(
    open_window: Opener, log_path: Path, qtbot: QtBot
) -> None:
    window = open_window(log_path)
    count = window.model.rowCount()
    window.table.selectRow(60)
    selected = window.model.call_id(60)
    window.table.verticalScrollBar().setValue(40 * window.table.verticalHeader().defaultSectionSize())
    top_call = window.model.call_id(window.table.rowAt(0))
    details = window.detail.toPlainText()

    with AuditLog(log_path) as writer:
        for index in range(3):
            writer.record_decision(decision(f"more-{index}"))
    window.notify_recorded()

    qtbot.waitUntil(lambda: window.model.rowCount() == count + 3)
    assert window.table.currentIndex().row() == 63
    assert window.model.call_id(63) == selected
    assert window.model.call_id(window.table.rowAt(0)) == top_call
    assert window.detail.toPlainText() == details


def test_the_outcome_of_a_selected_running_call_appears(
    open_window: Opener, tmp_path: Path, qtbot: QtBot
) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as writer:
        writer.record_decision(decision("slow"))
        window = open_window(path)
        window.table.selectRow(0)
        assert "none recorded yet" in window.detail.toPlainText()

        writer.record_outcome(OutcomeRecord("slow", "ok", 5.0, 3, "c" * 64))
        window.notify_recorded()

        qtbot.waitUntil(lambda: "Outcome:      ok, the server took 5 ms" in window.detail.toPlainText())
    assert cell(window, 0, COLUMN_TITLES.index("Outcome")) == "ok"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_writes_exactly_the_filtered_calls(
    open_window: Opener, log_path: Path, tmp_path: Path, qtbot: QtBot, fmt: str
) -> None:
    window = open_window(log_path)
    server = window.filters.combo("server")
    server.setCurrentIndex(server.findData("files"))
    target = tmp_path / "out" / f"calls.{fmt}"
    target.parent.mkdir()

    with qtbot.waitSignal(window.export_finished, timeout=30_000) as finished:
        window.export_to(target, fmt)  # type: ignore[arg-type]

    result = finished.args[0]
    assert isinstance(result, ExportResult) and result.error is None
    if fmt == "csv":
        with target.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    else:
        rows = [json.loads(line) for line in target.read_text("utf-8").splitlines()]
    assert len(rows) == result.rows
    with AuditLog(log_path, read_only=True) as log:
        expected = {row["call_id"] for row in log.query(CallFilter(server="files"), limit=10**6)}
    assert {row["call_id"] for row in rows if row["kind"] == "decision"} == expected
    assert {row["call_id"] for row in rows} == expected  # outcome rows only of those calls
    assert {row["server"] for row in rows} == {"files"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    calls = len(expected)
    assert window.message.text() == (
        f"Exported {calls:,} calls ({result.rows:,} log rows: a call is a decision row, plus an outcome "
        "row once it was forwarded, and an edit or review row when a person edited it or reviewed its "
        f"result) to {target}."
    )
    assert list(target.parent.iterdir()) == [target]


def test_export_to_an_impossible_place_says_what_went_wrong(
    open_window: Opener, log_path: Path, tmp_path: Path, qtbot: QtBot
) -> None:
    window = open_window(log_path)
    target = tmp_path / "missing-folder" / "calls.csv"

    with qtbot.waitSignal(window.export_finished, timeout=30_000) as finished:
        window.export_to(target, "csv")

    assert finished.args[0].error
    assert window.message.text().startswith(f"Could not export to {target}:")
    assert window.export_button.isEnabled()


def test_the_export_button_asks_where_without_blocking(
    open_window: Opener, log_path: Path, tmp_path: Path, qtbot: QtBot
) -> None:
    window = open_window(log_path)

    window.export_button.click()

    dialogs = window.findChildren(QFileDialog)
    assert len(dialogs) == 1 and dialogs[0].isVisible()
    with qtbot.waitSignal(window.export_finished, timeout=30_000) as finished:
        dialogs[0].fileSelected.emit(str(tmp_path / "chosen.jsonl"))
    assert finished.args[0].path == tmp_path / "chosen.jsonl"
    assert json.loads((tmp_path / "chosen.jsonl").read_text("utf-8").splitlines()[0])["kind"] in (
        "decision",
        "outcome",
    )
    dialogs[0].reject()


def test_verify_reports_an_intact_chain(open_window: Opener, log_path: Path, qtbot: QtBot) -> None:
    window = open_window(log_path)

    with qtbot.waitSignal(window.verify_finished, timeout=60_000) as finished:
        window.verify_button.click()

    report = finished.args[0]
    assert report.ok and report.rows == 3_000
    assert window.message.text().startswith("Verified: the hash chain of all 3,000 log rows is intact (")
    assert report.last_hash in window.message.text()
    assert window.verify_button.isEnabled()


def test_verify_names_the_row_that_was_tampered_with(
    open_window: Opener, log_path: Path, qtbot: QtBot
) -> None:
    with sqlite3.connect(log_path) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET decision = 'edited by hand' WHERE id = 1234")
    window = open_window(log_path)

    with qtbot.waitSignal(window.verify_finished, timeout=60_000) as finished:
        window.verify()

    report = finished.args[0]
    assert not report.ok and report.first_bad_id == 1234
    assert window.message.text().startswith(
        "Verification FAILED at row 1,234: row 1234 does not match its hash"
    )


def test_a_missing_log_shows_a_friendly_line_and_starts_working_once_it_exists(
    open_window: Opener, tmp_path: Path, qtbot: QtBot
) -> None:
    path = tmp_path / "data" / "audit.db"
    window = open_window(path)

    assert window.model.rowCount() == 0
    assert window.status.text().startswith("No calls recorded yet")
    with qtbot.waitSignal(window.verify_finished) as finished:
        window.verify()
    assert finished.args[0].ok and "Nothing to verify yet" in window.message.text()

    with AuditLog(path) as writer:
        writer.record_decision(decision("first", server="late"))
    window.notify_recorded()

    qtbot.waitUntil(lambda: window.model.rowCount() == 1)
    assert window.status.text() == "1 call"
    assert window.filters.combo("server").findData("late") > 0
    qtbot.waitUntil(lambda: sum(bucket.total for bucket in window.chart.buckets) == 1, timeout=30_000)


def test_the_chart_counts_the_calls_of_the_selected_range(
    open_window: Opener, log_path: Path, qtbot: QtBot
) -> None:
    window = open_window(log_path)
    ranges = window.filters.time_range

    with qtbot.waitSignal(window.activity_loaded, timeout=30_000):
        ranges.setCurrentIndex(ranges.findText("Last 24 hours"))

    buckets = window.chart.buckets
    assert 24 <= len(buckets) <= 200
    assert sum(bucket.total for bucket in buckets) == window.model.rowCount()
    denied = sum(bucket.counts.get("deny", 0) for bucket in buckets)
    with AuditLog(log_path, read_only=True) as log:
        assert denied == log.count(CallFilter(decision="deny", since=window.model.where.since))

    with AuditLog(log_path) as writer:
        writer.record_decision(decision("now", decision="deny"))
    window.notify_recorded()
    qtbot.waitUntil(
        lambda: sum(bucket.counts.get("deny", 0) for bucket in window.chart.buckets) == denied + 1
    )


def test_buckets_align_to_the_local_clock_and_keep_empty_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+05:30: local hours start at hh:30 UTC
    time.tzset()
    try:
        start = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
        counts = [
            ActivityCount(datetime(2026, 1, 1, 0, 40, tzinfo=UTC), "allow", 3),
            ActivityCount(datetime(2026, 1, 1, 1, 29, tzinfo=UTC), "deny", 2),
            ActivityCount(datetime(2026, 1, 1, 1, 30, tzinfo=UTC), "allow", 1),
            ActivityCount(datetime(2026, 1, 1, 3, 45, tzinfo=UTC), "allow", 4),
        ]
        buckets = bucket_counts(counts, start, start + timedelta(hours=4), timedelta(hours=1))
        first_start = buckets[0].start
    finally:
        monkeypatch.undo()
        time.tzset()

    assert [bucket.counts for bucket in buckets] == [{"allow": 3, "deny": 2}, {"allow": 1}, {}, {"allow": 4}]
    assert (first_start.hour, first_start.minute, first_start.utcoffset()) == (
        6,
        0,
        timedelta(hours=5, minutes=30),
    )
    assert [bucket.total for bucket in buckets] == [5, 1, 0, 4]


def test_bucket_sizes_cap_the_number_of_bars() -> None:
    assert bucket_size(timedelta(hours=1)) == timedelta(minutes=1)
    assert bucket_size(timedelta(days=7)) == timedelta(hours=1)
    assert bucket_size(timedelta(days=30)) == timedelta(hours=6)
    assert bucket_size(timedelta(days=365)) == timedelta(days=7)


def test_the_chart_tooltip_gives_the_exact_counts(qtbot: QtBot) -> None:
    view = ActivityView()
    qtbot.addWidget(view)
    view.resize(400, 80)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    counts = [
        ActivityCount(start, "allow", 1_200),
        ActivityCount(start, "deny", 3),
        ActivityCount(start, "<b>", 1),
    ]
    view.set_counts(counts, start, start + timedelta(hours=2))
    view.show()

    text = describe(view.buckets[0])
    assert text.endswith("1,204 calls: 1,200 allow, 3 deny, 1 <b>")
    assert view.grab().width() == 400  # paints without errors
    assert view.buckets[1].total == 0

    point = QPoint(400 // len(view.buckets) // 2, 40)  # over the middle of the first bar
    view.event(QHelpEvent(QEvent.Type.ToolTip, point, view.mapToGlobal(point)))

    assert "1,200 allow, 3 deny, 1 &lt;b&gt;" in QToolTip.text()
    QToolTip.hideText()


def test_closing_the_window_stops_a_running_verification(
    open_window: Opener, tmp_path: Path, qtbot: QtBot
) -> None:
    path = tmp_path / "audit.db"
    generate_audit_log(path, 40_000, end=END)
    window = open_window(path)
    reports: list[object] = []
    window.verify_finished.connect(reports.append)

    window.verify()
    window.close()

    qtbot.waitUntil(lambda: not window.busy, timeout=60_000)
    assert window.message.text() == "Verification stopped when the window closed."
    assert reports == []
    assert window.verify_button.isEnabled()


def test_open_call_selects_the_call_and_clears_filters_that_hide_it(
    open_window: Opener, log_path: Path, qtbot: QtBot
) -> None:
    with AuditLog(log_path, read_only=True) as log:
        target = log.query(CallFilter(decision="allow"), limit=1, offset=500)[0]
    window = open_window(log_path)
    combo = window.filters.combo("decision")
    combo.setCurrentIndex(combo.findData("deny"))

    assert window.open_call(target["id"])

    assert window.filters.is_clear() and window.model.where == CallFilter()
    assert window.model.call_id(window.table.currentIndex().row()) == target["id"]
    assert f"Call {target['call_id']} (row {target['id']})" in window.detail.toPlainText()


def test_open_call_finds_a_call_recorded_after_the_window_looked(
    open_window: Opener, log_path: Path, qtbot: QtBot
) -> None:
    window = open_window(log_path)
    with AuditLog(log_path) as writer:
        row_id = writer.record_decision(decision("just-now", tool="files__fresh"))

    assert window.open_call(row_id)

    assert window.table.currentIndex().row() == 0
    assert "files__fresh" in window.detail.toPlainText()
    assert not window.open_call(10**9)
    assert "not a recorded call" in window.message.text()


def test_open_call_in_a_sorted_table_finds_the_row_by_its_position(
    open_window: Opener, log_path: Path, qtbot: QtBot
) -> None:
    window = open_window(log_path)
    window.sorter.sort_by(TOOL, descending=False)
    qtbot.waitUntil(lambda: window.model.order.key == "tool", timeout=30_000)
    wanted = window.model.call_id(1234)
    assert wanted is not None

    assert window.open_call(wanted)

    assert window.table.currentIndex().row() == 1234
