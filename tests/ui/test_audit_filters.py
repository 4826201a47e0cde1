"""The audit window's filters: who decided, outcome, risk level, Clear filters, and the empty state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from approver.audit.log import AuditLog
from approver.audit.query import NOT_FORWARDED, SESSION_GRANT, CallFilter
from approver.testing.records import decision_record as decision
from approver.testing.records import outcome_record as outcome
from approver.ui.audit_window import AuditWindow


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    with AuditLog(path) as writer:
        writer.record_decision(decision("asked", decided_by="user", rule="default", server="files"))
        writer.record_outcome(outcome("asked"))
        writer.record_decision(decision("granted", decided_by="user", rule=SESSION_GRANT, server="files"))
        writer.record_outcome(outcome("granted", outcome="error", error="disk full"))
        writer.record_decision(decision("denied", decision="deny", server="shell", risk_level="critical"))
        writer.record_decision(decision("timeout", decision="deny", decided_by="timeout", server="files"))
    return path


@pytest.fixture
def window(qtbot: QtBot, log_path: Path) -> Iterator[AuditWindow]:
    opened = AuditWindow(log_path)
    qtbot.addWidget(opened)
    opened.show()
    yield opened
    qtbot.waitUntil(lambda: not opened.busy, timeout=30_000)


def choose(window: AuditWindow, column: str, value: str) -> None:
    combo = window.filters.combo(column)
    index = combo.findData(value)
    assert index > 0, (column, value)
    combo.setCurrentIndex(index)


def shown_calls(window: AuditWindow) -> set[str]:
    log = window.model.log
    assert log is not None
    found = set()
    for row in range(window.model.rowCount()):
        call = log.call(window.model.call_id(row) or 0)
        assert call is not None
        found.add(call["call_id"])
    return found


def test_who_decided_outcome_and_level_filter_in_the_background(window: AuditWindow, qtbot: QtBot) -> None:
    choose(window, "decided_by", SESSION_GRANT)
    qtbot.waitUntil(lambda: window.model.where == CallFilter(decided_by=SESSION_GRANT), timeout=10_000)
    assert shown_calls(window) == {"granted"}
    assert window.filters.combo("decided_by").currentText() == "session grant"

    choose(window, "decided_by", "user")
    qtbot.waitUntil(lambda: window.model.where.decided_by == "user", timeout=10_000)
    assert shown_calls(window) == {"asked"}

    window.filters.clear()
    choose(window, "outcome", NOT_FORWARDED)
    qtbot.waitUntil(lambda: window.model.where == CallFilter(outcome=NOT_FORWARDED), timeout=10_000)
    assert shown_calls(window) == {"denied", "timeout"}

    choose(window, "risk_level", "critical")
    qtbot.waitUntil(lambda: window.model.where.risk_level == "critical", timeout=10_000)
    assert shown_calls(window) == {"denied"}
    assert window.status.text() == "1 call matches these filters"


def test_clear_filters_shows_every_call_again_with_one_query(window: AuditWindow, qtbot: QtBot) -> None:
    choose(window, "server", "files")
    window.filters.search.setText("read")
    qtbot.waitUntil(lambda: window.model.where.text == "read", timeout=10_000)
    assert window.filters.clear_button.isEnabled()
    resets: list[int] = []
    window.model.modelReset.connect(lambda: resets.append(1))

    window.filters.clear_button.click()

    assert window.model.where == CallFilter() and window.model.rowCount() == 4
    assert resets == [1]
    assert not window.filters.clear_button.isEnabled()


def test_an_empty_table_names_the_filter_that_excludes_everything(window: AuditWindow, qtbot: QtBot) -> None:
    choose(window, "server", "shell")
    choose(window, "outcome", "ok")

    qtbot.waitUntil(lambda: "would show" in window.status.text(), timeout=10_000)
    text = window.status.text()
    assert window.model.rowCount() == 0
    assert "No calls in this time range" not in text
    assert "the outcome filter (ok)" in text and "the server filter (shell)" in text


def test_a_single_filter_leaving_nothing_is_named_with_what_would_show(
    qtbot: QtBot, tmp_path: Path, log_path: Path
) -> None:
    window = AuditWindow(log_path)
    qtbot.addWidget(window)
    window.show()
    choose(window, "outcome", "cancelled")
    qtbot.waitUntil(lambda: "would show" in window.status.text(), timeout=10_000)
    assert window.status.text() == (
        "No calls match: the outcome filter (cancelled) excludes every call; without it 4 calls would show."
    )
    qtbot.waitUntil(lambda: not window.busy, timeout=30_000)
    assert window.chart.message == "No calls match these filters"
