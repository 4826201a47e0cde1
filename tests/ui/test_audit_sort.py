"""Sorting the audit table by clicking a column title, on the lazy model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from pytestqt.qtbot import QtBot

from approver.audit.log import AuditLog
from approver.testing.auditgen import generate_audit_log
from approver.testing.records import decision_record as decision
from approver.ui.audit_model import COLUMN_TITLES, SortOrder
from approver.ui.audit_window import AuditWindow

TOOL = COLUMN_TITLES.index("Tool")
TIME = COLUMN_TITLES.index("Time")
DURATION = COLUMN_TITLES.index("Duration")


@pytest.fixture
def window(qtbot: QtBot, tmp_path: Path) -> Iterator[AuditWindow]:
    path = tmp_path / "audit.db"
    generate_audit_log(path, 2_000, end=datetime.now(UTC), days=2)
    opened = AuditWindow(path)
    qtbot.addWidget(opened)
    opened.resize(1200, 700)
    opened.show()
    yield opened
    qtbot.waitUntil(lambda: not opened.busy, timeout=30_000)


def click_title(qtbot: QtBot, window: AuditWindow, column: int) -> None:
    header = window.table.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))


def column(window: AuditWindow, index: int) -> list[str]:
    model = window.model
    return [model.data(model.index(row, index)) for row in range(model.rowCount())]


def test_clicking_a_column_title_sorts_by_it_and_again_reverses(window: AuditWindow, qtbot: QtBot) -> None:
    count = window.model.rowCount()

    click_title(qtbot, window, TOOL)
    qtbot.waitUntil(lambda: window.model.order == SortOrder("tool", descending=False), timeout=30_000)
    ascending = column(window, TOOL)
    assert ascending == sorted(ascending) and len(ascending) == count
    assert window.status.text() == f"{count:,} calls, sorted by Tool (ascending)"

    click_title(qtbot, window, TOOL)
    qtbot.waitUntil(lambda: window.model.order == SortOrder("tool", descending=True), timeout=30_000)
    assert column(window, TOOL) == sorted(ascending, reverse=True)


def test_sorting_by_duration_reads_the_outcome_rows(window: AuditWindow, qtbot: QtBot) -> None:
    window.sorter.sort_by(DURATION, descending=True)
    qtbot.waitUntil(lambda: window.model.order.key == "duration", timeout=30_000)
    with AuditLog(window.model.log.path if window.model.log else Path(), read_only=True) as log:
        slowest = max(call["duration_ms"] or 0 for call in log.query(limit=10**6))
        first = log.call(window.model.call_id(0) or 0)
    assert first is not None and first["duration_ms"] == slowest


def test_back_to_newest_first_the_table_pages_lazily_again(window: AuditWindow, qtbot: QtBot) -> None:
    newest = window.model.call_id(0)
    window.sorter.sort_by(TOOL, descending=False)
    qtbot.waitUntil(lambda: not window.model.order.default, timeout=30_000)

    window.sorter.sort_by(TIME, descending=True)

    qtbot.waitUntil(lambda: window.model.order.default, timeout=30_000)
    assert window.model.call_id(0) == newest


def test_a_filter_keeps_the_sort_and_new_calls_wait_for_f5(window: AuditWindow, qtbot: QtBot) -> None:
    window.sorter.sort_by(TOOL, descending=False)
    qtbot.waitUntil(lambda: window.model.order.key == "tool", timeout=30_000)
    combo = window.filters.combo("decision")
    combo.setCurrentIndex(combo.findData("deny"))
    qtbot.waitUntil(
        lambda: window.model.order.key == "tool" and window.model.where.decision == "deny", timeout=30_000
    )
    denied = window.model.rowCount()
    assert set(column(window, COLUMN_TITLES.index("Decision"))) == {"deny"}

    path = window.model.log.path if window.model.log else Path()
    with AuditLog(path) as writer:
        writer.record_decision(decision("late", decision="deny", tool="aaa__first"))
    window.refresh()
    assert window.model.rowCount() == denied and window.model.unsorted_new == 1
    assert "1 newer not in this order yet (F5 sorts again)" in window.status.text()

    window.refresh_now()
    qtbot.waitUntil(lambda: window.model.rowCount() == denied + 1, timeout=30_000)
    assert window.model.data(window.model.index(0, TOOL)) == "aaa__first"
