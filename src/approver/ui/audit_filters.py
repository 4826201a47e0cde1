"""The audit window's filter bar: decision, risk, server, client, time range and search.

It turns its controls into a :class:`~approver.audit.query.CallFilter`; the window decides
when and how to apply it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from PySide6.QtCore import QDateTime, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QDateTimeEdit, QHBoxLayout, QLineEdit, QWidget

from approver.audit.query import CallFilter
from approver.ui.audit_model import shown

SEARCH_DELAY_MS: Final = 300
"""The search applies this long after the last keystroke."""

TIME_RANGES: Final[tuple[tuple[str, timedelta | None], ...]] = (
    ("All time", None),
    ("Last hour", timedelta(hours=1)),
    ("Last 24 hours", timedelta(days=1)),
    ("Last 7 days", timedelta(days=7)),
    ("Last 30 days", timedelta(days=30)),
)
"""The time range choices: a label and how far back from now (None: no limit)."""
CUSTOM_RANGE: Final = "Custom range…"
"""The time range choice that shows the From and To fields."""
FILTER_COLUMNS: Final = {
    "decision": "All decisions",
    "risk_class": "All risks",
    "server": "All servers",
    "client": "All clients",
}
"""The columns with a combo box, each with the label of its no-filter choice."""


class FilterBar(QWidget):
    """Decision, risk, server, client, time range and search: what :class:`CallFilter` can say."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._combos: dict[str, QComboBox] = {}
        for column, everything in FILTER_COLUMNS.items():
            combo = QComboBox(self)
            combo.addItem(everything, None)
            combo.setAccessibleName(everything)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.currentIndexChanged.connect(self.changed)
            layout.addWidget(combo)
            self._combos[column] = combo
        self.time_range = QComboBox(self)
        for label, span in TIME_RANGES:
            self.time_range.addItem(label, span)
        self.time_range.addItem(CUSTOM_RANGE, None)
        self.time_range.setAccessibleName("Time range")
        layout.addWidget(self.time_range)
        now = QDateTime.currentDateTime()
        self.since_edit = self._date_edit(now.addDays(-1), "From")
        self.until_edit = self._date_edit(now.addSecs(3600), "To")
        layout.addWidget(self.since_edit)
        layout.addWidget(self.until_edit)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search tools and arguments")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search tools and arguments")
        layout.addWidget(self.search, 1)
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.changed)
        self.search.textChanged.connect(self._search_timer.start)
        self.search.returnPressed.connect(self._search_now)
        self.time_range.currentIndexChanged.connect(self._time_range_changed)
        self._time_range_changed()

    def _date_edit(self, moment: QDateTime, name: str) -> QDateTimeEdit:
        edit = QDateTimeEdit(moment, self)
        edit.setCalendarPopup(True)
        edit.setDisplayFormat("yyyy-MM-dd HH:mm")
        edit.setAccessibleName(name)
        edit.setToolTip(f"{name} (local time)")
        edit.dateTimeChanged.connect(self.changed)
        return edit

    def _time_range_changed(self) -> None:
        custom = self.time_range.currentText() == CUSTOM_RANGE
        self.since_edit.setVisible(custom)
        self.until_edit.setVisible(custom)
        self.changed.emit()

    def _search_now(self) -> None:
        self._search_timer.stop()
        self.changed.emit()

    def combo(self, column: str) -> QComboBox:
        """The combo box filtering on ``column`` (``decision``, ``risk_class``, ``server``, ``client``)."""
        return self._combos[column]

    def set_choices(self, column: str, values: list[str]) -> None:
        """Offer ``values`` for ``column``, keeping the current choice."""
        combo = self._combos[column]
        known = {combo.itemData(i) for i in range(1, combo.count())}
        for value in values:
            if value not in known:
                combo.addItem(shown(value), value)

    def current(self, now: datetime) -> CallFilter:
        """The filter the controls describe; relative time ranges end at ``now``."""
        choices = {column: combo.currentData() for column, combo in self._combos.items()}
        since = until = None
        if self.time_range.currentText() == CUSTOM_RANGE:
            since = datetime.fromtimestamp(self.since_edit.dateTime().toSecsSinceEpoch(), UTC)
            until = datetime.fromtimestamp(self.until_edit.dateTime().toSecsSinceEpoch(), UTC)
        elif (span := self.time_range.currentData()) is not None:
            since = now - span
        return CallFilter(since=since, until=until, text=self.search.text().strip() or None, **choices)
