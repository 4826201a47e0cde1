"""The activity chart: the legend never covers a bar, and its swatches stay visible."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from approver.audit.query import ActivityCount
from approver.ui.activity import ActivityView

END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_the_legend_sits_above_the_bars_so_the_newest_bar_shows_in_full(qtbot: QtBot) -> None:
    view = ActivityView()
    qtbot.addWidget(view)
    view.resize(600, 96)
    # Ten one-minute bars; the newest is the busiest, all denied, so it reaches the top of the bars.
    counts = [
        ActivityCount(END - timedelta(minutes=1), "deny", 50),
        ActivityCount(END - timedelta(minutes=9), "allow", 5),
    ]
    view.set_counts(counts, END - timedelta(minutes=10), END)
    image = view.grab().toImage()
    label = view.fontMetrics().height()
    red = QColor("#e53935")
    # In the legend's row the only red is the deny swatch: no bar reaches up there.
    legend_row = label // 2 + 1
    reds = [x for x in range(view.width()) if image.pixelColor(x, legend_row) == red]
    assert reds and max(reds) - min(reds) <= label * 0.6 + 2
    # Below it, the newest bar is whole: nothing is drawn over it.
    newest = [x for x in range(view.width() - 50, view.width() - 10)]
    bar_rows = range(label + 6, view.height() - label - 6)
    assert all(image.pixelColor(x, y) == red for x in newest for y in bar_rows)


def test_a_swatch_has_an_outline(qtbot: QtBot) -> None:
    view = ActivityView()
    qtbot.addWidget(view)
    view.resize(600, 96)
    view.set_counts([ActivityCount(END - timedelta(minutes=1), "deny", 1)], END - timedelta(hours=1), END)
    image = view.grab().toImage()
    red = QColor("#e53935")
    row = int(view.fontMetrics().height() * 0.35 + view.fontMetrics().height() * 0.3)
    xs = [x for x in range(view.width()) if image.pixelColor(x, row) == red]
    assert xs, "the deny swatch is drawn"
    left = min(xs)
    assert image.pixelColor(left - 1, row) != red and image.pixelColor(left - 1, row) != image.pixelColor(
        2, 90
    )
